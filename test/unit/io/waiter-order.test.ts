// The order in which waiting ACQUIREs are served (PROTOCOL.md: "ordered by
// priority then arrival"), on the real RequestHandler and its WaiterDrain over
// a real BucketTable driven by a ManualClock: every bucket holds one token at
// most (burst 1), so each step of the clock frees exactly one token of the
// pool and exactly one waiter can be granted. The sequence of grants is then
// the serving order itself, with no timing involved.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import type { Conn } from '../../../src/io/conn.ts';
import { RequestHandler } from '../../../src/io/request-handler.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm } from '../../../src/shm/layout.ts';
import { HandlerDriver } from '../../fixtures/handler-driver.ts';

/** Long enough that no waiter reaches its deadline during a test (deadlines run on performance.now()). */
const WAIT_MS = 600_000;
/** One clock step refills every bucket (rates of 10/s or more) to its burst of 1 token. */
const STEP_MS = 1000;

// Two services of different classes under one pool; the pool holds the single token they compete for
// (a token-bucket gate of burst 1: a window gate would let the second's 10 through at once).
const POOLS = [
  { name: 'p', capacity_tps: 10, burst: 1, upstream: { window: 'token_bucket' }, services: [
    { name: 'hi', priority: 'HIGH', max_tps: 10, burst: 1 },
    { name: 'lo', priority: 'LOW', max_tps: 10, burst: 1, endpoints: [{ name: 'e', max_tps: 10, burst: 1 }] },
  ] },
];

class Harness {
  readonly clock = new ManualClock();
  readonly handler: RequestHandler;
  private readonly driver: HandlerDriver;

  constructor() {
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
      lease_ttl_ms: 3_600_000, pools: POOLS,
    }, {});
    const keys = KeyIndex.fromConfig(config);
    const views = allocateShm(keys.size, 1);
    BucketTable.initialize(views, keys, this.clock.nowMs());
    const table = new BucketTable(views, this.clock, 0);
    this.handler = new RequestHandler({
      config, keys, table, thread: 0, auth: new Authenticator(config.auth), status: () => ({}), shuttingDown: () => false,
    });
    this.driver = new HandlerDriver(this.handler);
  }

  conn(): Conn { return this.driver.conn(); }

  /** One message of requests from `conn`; returns the immediate replies. */
  send(conn: Conn, ...reqs: unknown[][]): unknown[][] { return this.driver.send(conn, ...reqs); }

  /** Advances the clock one step and runs one drain pass; returns the deferred replies as [connId, reply]. */
  step(): [number, unknown[]][] {
    this.clock.advance(STEP_MS);
    return this.driver.drain();
  }

  /** Steps until no waiter is left; each step must grant exactly one. Returns "connId:id" in grant order. */
  grantOrder(): string[] {
    const order: string[] = [];
    while (this.handler.waiters.size > 0) {
      const replies = this.step();
      assert.equal(replies.length, 1, `one token, one grant per step: ${JSON.stringify(replies)} after ${order.join(' ')}`);
      const [connId, r] = replies[0];
      assert.deepEqual(r.slice(0, 3), [1, r[1], 0], `granted: ${JSON.stringify(r)}`);
      order.push(`${connId}:${String(r[1])}`);
      assert.ok(order.length <= 100, 'the waiters drain');
    }
    return order;
  }
}

describe('waiters are served by priority, then arrival', () => {
  it('serves the waiters of one class oldest first, across messages and connections', () => {
    const h = new Harness();
    const a = h.conn(), b = h.conn();
    // Take the pool's only token: everything after this waits.
    assert.deepEqual(h.send(a, [1, 1, 'p/lo', 1, 0])[0].slice(0, 3), [1, 1, 0]);
    // Arrival order: a:10, b:20, a:11 (two in one message), b:21, a:12.
    assert.deepEqual(h.send(a, [1, 10, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 20, 'p/lo/e', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(a, [1, 11, 'p/lo', 1, WAIT_MS], [1, 12, 'p/lo/e', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 21, 'p/lo', 1, WAIT_MS]), []);
    assert.equal(h.handler.waiters.size, 5);
    assert.deepEqual(h.grantOrder(), ['1:10', '2:20', '1:11', '1:12', '2:21']);
  });

  it('serves a stronger class first whenever it arrived, then each class by arrival', () => {
    const h = new Harness();
    const a = h.conn(), b = h.conn();
    assert.deepEqual(h.send(a, [1, 1, 'p/lo', 1, 0])[0].slice(0, 3), [1, 1, 0]);
    // LOW waiters arrive first, HIGH ones interleaved after them.
    assert.deepEqual(h.send(a, [1, 10, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 20, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 21, 'p/hi', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(a, [1, 11, 'p/lo/e', 1, WAIT_MS], [1, 12, 'p/hi', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 22, 'p/hi', 1, WAIT_MS]), []);
    assert.equal(h.handler.waiters.size, 6);
    assert.deepEqual(h.grantOrder(), ['2:21', '1:12', '2:22', '1:10', '2:20', '1:11']);
  });

  it('keeps arrival order among the waiters left when another connection and its waiters go', () => {
    const h = new Harness();
    const a = h.conn(), b = h.conn();
    assert.deepEqual(h.send(a, [1, 1, 'p/lo', 1, 0])[0].slice(0, 3), [1, 1, 0]);
    assert.deepEqual(h.send(a, [1, 10, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 20, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(a, [1, 11, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(b, [1, 21, 'p/lo', 1, WAIT_MS]), []);
    assert.deepEqual(h.send(a, [1, 12, 'p/lo', 1, WAIT_MS]), []);
    h.handler.dropConnection(b);
    assert.equal(h.handler.waiters.size, 3);
    assert.deepEqual(h.grantOrder(), ['1:10', '1:11', '1:12']);
  });
});
