// Waiting tenant acquires on the real RequestHandler, WaiterDrain and tenant
// table over real shared memory, driven by a ManualClock (no timing): a
// tenant's waiters are served in arrival order even when a later one asks
// fewer tokens, a new acquire of the tenant queues behind them, a waiting
// tenant does not hold up another tenant of its tier, and a waiter whose
// tenant is forgotten (the main thread's sweep) is answered and leaves
// nothing behind (queue gauge, shared waiter marks, the connection's count).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { tenantSlotsWanted } from '../../../src/config/tenants-schema.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import type { Conn } from '../../../src/io/conn.ts';
import { RequestHandler } from '../../../src/io/request-handler.ts';
import { TenantKeys } from '../../../src/io/tenant-keys.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { BUCKET_FIELDS, WAITERS_ANY_INDEX, allocateShm, tenantSlotsFor, type ShmViews } from '../../../src/shm/layout.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';
import {
  TC_DENIED, TC_GRANTED, TC_OWN_DENIED, TC_REQUESTED, TenantCounterReader, TenantCounters, allocateTenantCounters, tenantCounterViews,
} from '../../../src/shm/tenant-counters.ts';
import { HandlerDriver } from '../../fixtures/handler-driver.ts';

const WAIT_MS = 600_000;
/** One clock step: one token back in each tenant's bucket (tps 1). */
const STEP_MS = 1000;
const IDLE_S = 60;

const POOLS = [{ name: 'p', capacity_tps: 1000, burst: 100, services: [
  { name: 's', priority: 'HIGH', max_tps: 1000, burst: 100, tenants: {
    tiers: [{ name: 't', priority: 'HIGH', tps: 1, burst: 2 }], max: 10, idle_s: IDLE_S } },
] }];

class Harness {
  readonly clock = new ManualClock();
  readonly handler: RequestHandler;
  readonly keys: KeyIndex;
  readonly views: ShmViews;
  readonly table: BucketTable;
  /** The main thread's view of the tenants (its sweep forgets idle ones). */
  readonly main: TenantTable;
  /** The main thread's reader of the per-tenant counters the handler writes. */
  readonly counts: TenantCounterReader;
  private readonly driver: HandlerDriver;

  constructor() {
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
      lease_ttl_ms: 3_600_000, limits: { max_queue_per_key: 3 }, pools: POOLS,
    }, {});
    this.keys = KeyIndex.fromConfig(config);
    this.views = allocateShm(this.keys.size, 1, tenantSlotsFor(tenantSlotsWanted(config.pools[0].services)));
    this.clock.set(1000);
    BucketTable.initialize(this.views, this.keys, this.clock.nowMs());
    this.table = new BucketTable(this.views, this.clock, 0);
    this.main = new TenantTable(this.views);
    const slots = this.views.layout.tenantSlots;
    const cv = tenantCounterViews(allocateTenantCounters(slots, 1), slots, 1);
    this.counts = new TenantCounterReader(cv);
    this.handler = new RequestHandler({
      config, keys: this.keys, table: this.table, thread: 0, auth: new Authenticator(config.auth), status: () => ({}),
      shuttingDown: () => false, tenants: new TenantKeys(this.keys, new TenantTable(this.views), new TenantCounters(cv, 0)),
    });
    this.driver = new HandlerDriver(this.handler);
  }

  conn(): Conn { return this.driver.conn(); }

  send(conn: Conn, ...reqs: unknown[][]): unknown[][] { return this.driver.send(conn, ...reqs); }

  /** Advances the clock by `ms` and runs one drain pass; the deferred replies. */
  step(ms = STEP_MS): unknown[][] {
    this.clock.advance(ms);
    return this.driver.drain().map(([, r]) => r);
  }

  /** Tenant `name`'s counts: [requested, granted, denied, own bucket denied]. */
  counted(name: string): number[] {
    let slot = -1;
    this.main.forEachLive(this.keys.find('p/s'), (s, n) => { if (n === name) slot = s; });
    return [TC_REQUESTED, TC_GRANTED, TC_DENIED, TC_OWN_DENIED].map((f) => this.counts.total(slot, f));
  }

  queue(key: string): number { return this.table.queue(this.keys.find(key)); }

  /** Shared waiter registrations on every bucket (all 0 once no request waits). */
  marks(): number {
    let n = 0;
    for (let b = 0; b < this.keys.size; b++) n += this.views.state[b * BUCKET_FIELDS + WAITERS_ANY_INDEX];
    return n;
  }
}

const granted = (r: unknown[] | undefined, id: number) => r !== undefined && r[0] === 1 && r[1] === id && r[2] === 0;

describe('tenant acquires that wait', () => {
  it('serves one tenant\'s waiters in arrival order; a new acquire of it queues behind them', () => {
    const h = new Harness();
    const a = h.conn();
    assert.ok(granted(h.send(a, [1, 1, 'p/s/acme', 2, 0])[0], 1), 'acme made, both its tokens taken');
    assert.deepEqual(h.send(a, [1, 10, 'p/s/acme', 2, WAIT_MS], [1, 11, 'p/s/acme', 1, WAIT_MS]), [], 'both wait');
    assert.equal(h.queue('p/s/~t'), 2);
    assert.deepEqual(h.step(), [], 'one token back: 11 (1 token) stays behind 10 (2 tokens)');
    const now = h.send(a, [1, 12, 'p/s/acme', 1, 0]);
    assert.equal(now[0]?.[2], 1, `a new acquire with wait_ms 0 does not pass the waiters: DENIED (${JSON.stringify(now)})`);
    const second = h.step();
    assert.equal(second.length, 1);
    assert.ok(granted(second[0], 10), `10 first (${JSON.stringify(second)})`);
    const third = h.step();
    assert.ok(granted(third[0], 11), `then 11 (${JSON.stringify(third)})`);
    assert.equal(h.queue('p/s/~t'), 0);
    assert.equal(a.outstanding, 0);
    assert.equal(h.marks(), 0);
    assert.deepEqual(h.counted('acme'), [6, 5, 1, 1], 'per-tenant counts: each waiter\'s grant when the drain answered it, 12 denied at once');
  });

  it('a waiter denied at its deadline counts for its tenant as denied by its own bucket', () => {
    const h = new Harness();
    const a = h.conn();
    assert.ok(granted(h.send(a, [1, 1, 'p/s/acme', 2, 0])[0], 1));
    assert.deepEqual(h.send(a, [1, 2, 'p/s/acme', 2, 1]), []);
    // Deadlines are in performance.now() time, not the manual clock's: let 1 ms really pass; the clock gives no token back.
    for (const until = performance.now() + 5; performance.now() < until;);
    const late = h.step(1);
    assert.equal(late[0]?.[2], 1, `DENIED at its deadline (${JSON.stringify(late)})`);
    assert.deepEqual(h.counted('acme'), [4, 2, 2, 2]);
  });

  it('a tenant waiting for its own tokens does not hold up another tenant of its tier; its queue is bounded', () => {
    const h = new Harness();
    const a = h.conn(), b = h.conn();
    assert.ok(granted(h.send(a, [1, 1, 'p/s/one', 2, 0])[0], 1));
    assert.deepEqual(h.send(a, [1, 2, 'p/s/one', 2, WAIT_MS], [1, 3, 'p/s/one', 2, WAIT_MS], [1, 4, 'p/s/one', 2, WAIT_MS]), []);
    const over = h.send(a, [1, 5, 'p/s/one', 2, WAIT_MS]);
    assert.equal(over[0]?.[2], 20, `the fourth waiter: OVERLOADED (${JSON.stringify(over)})`);
    assert.equal(h.marks(), 0, 'blocked at its own bucket: no shared registration');
    assert.ok(granted(h.send(b, [1, 1, 'p/s/two', 1, 0])[0], 1), 'another tenant of the tier is served at once');
    h.handler.dropConnection(a);
    assert.equal(h.queue('p/s/~t'), 0);
    assert.equal(h.handler.waiters.size, 0);
  });

  it('a waiter whose tenant is forgotten is answered, and leaves no waiter, mark or count behind', () => {
    const h = new Harness();
    const a = h.conn();
    assert.ok(granted(h.send(a, [1, 1, 'p/s/gone', 2, 0])[0], 1));
    assert.deepEqual(h.send(a, [1, 2, 'p/s/gone', 2, WAIT_MS]), []);
    assert.deepEqual(h.step(1), [], 'still waiting');
    // The main thread forgets it (two sweeps: LIVE -> RETIRED -> EMPTY), as if idle_s had passed.
    const later = h.clock.nowMs() + IDLE_S * 1000 + 1;
    assert.equal(h.main.sweep(later, () => IDLE_S * 1000), 1);
    h.main.sweep(later, () => IDLE_S * 1000);
    const replies = h.step(1);
    assert.equal(replies.length, 1, JSON.stringify(replies));
    assert.deepEqual(replies[0], [1, 2, 1, 0, 1], 'DENIED, retry at once (the tenant will be made anew)');
    assert.equal(h.handler.waiters.size, 0);
    assert.equal(h.queue('p/s/~t'), 0);
    assert.equal(a.outstanding, 0);
    assert.equal(h.marks(), 0);
    // Made anew on the next acquire, full.
    assert.ok(granted(h.send(a, [1, 3, 'p/s/gone', 2, 0])[0], 3));
  });

  it('a waiter keeps its tenant from being forgotten as idle', () => {
    const h = new Harness();
    const a = h.conn();
    assert.ok(granted(h.send(a, [1, 1, 'p/s/busy', 2, 0])[0], 1));
    // Asks more than the tier ever refills in time: it waits through idle_s, retried each step.
    assert.deepEqual(h.send(a, [1, 2, 'p/s/busy', 2, WAIT_MS], [1, 3, 'p/s/busy', 2, WAIT_MS]), []);
    for (let i = 0; i < 4; i++) h.step(IDLE_S * 250);
    assert.equal(h.main.sweep(h.clock.nowMs(), () => IDLE_S * 1000), 0, 'not idle: its waiters retried it');
  });
});
