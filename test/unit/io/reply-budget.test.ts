// The replies of one message stay within the budget the I/O worker gives it
// (PROTOCOL.md "Memory per connection is bounded"), and a message stops
// being answered when the daemon starts stopping: RequestHandler's
// checkpoint after each request, on both ways of reading (flat and general).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import type { Conn } from '../../../src/io/conn.ts';
import { RequestHandler, STOP_CHECK_EVERY } from '../../../src/io/request-handler.ts';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION } from '../../../src/protocol/opcodes.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { C_ACQUIRES_INDEX, allocateShm, sumCounter } from '../../../src/shm/layout.ts';

const POOLS = [{ name: 'p', capacity_tps: 1000, burst: 1000, services: [{ name: 'a', priority: 'HIGH', max_tps: 1000, burst: 1000 }] }];
/** What the STATUS of this test answers: about 1 KB. */
const STATUS_BODY = { keys: Array.from({ length: 20 }, (_, i) => ({ key: `p/k${i}`, limit_tps: i, mode: 'static' })) };

function setup() {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' }, pools: POOLS,
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const epoch = hrtimeMs();
  BucketTable.initialize(views, keys, createClock(epoch).nowMs());
  const table = new BucketTable(views, createClock(epoch), 0);
  const stopping = { flag: false };
  let statusCalls = 0;
  const handler = new RequestHandler({
    config, keys, table, thread: 0, auth: new Authenticator(config.auth),
    status: () => { statusCalls++; return STATUS_BODY; }, shuttingDown: () => stopping.flag,
  });
  const conn: Conn = { connId: 1, token: null, authFailures: 0, outstanding: 0, closed: false, out: null };
  const acquires = () => sumCounter(views, keys.lookup('p/a'), C_ACQUIRES_INDEX);
  return { handler, conn, stopping, acquires, statusCalls: () => statusCalls };
}

/** Requests as one message; `flat` writes uints and strings by hand (the flat path takes ACQUIRE and RELEASE). */
function message(reqs: unknown[][]): Uint8Array {
  const w = new MsgWriter();
  for (const r of reqs) {
    w.array(r.length);
    for (const v of r) typeof v === 'string' ? w.str(v) : w.uint(v as number);
  }
  return w.take();
}

describe('reply budget of a message', () => {
  it('ends a STATUS storm once its replies pass the budget; the requests after it are not handled', () => {
    const { handler, conn, acquires, statusCalls } = setup();
    const storm = message([...Array.from({ length: 1000 }, (_, i) => [3, i + 1]), [1, 5000, 'p/a', 1, 0]]);
    const close = handler.handleMessage(conn, storm, 8 * 1024);
    assert.equal(close, CLOSE_POLICY_VIOLATION);
    assert.equal(handler.overBudget, true);
    assert.ok(handler.out.length <= 8 * 1024 + 2 * 1024, `out holds at most the budget and the reply that passed it (${handler.out.length})`);
    assert.ok(statusCalls() < 20, `stopped after the budget, not after 1000 STATUS (${statusCalls()})`);
    assert.ok(handler.fitBytes <= 8 * 1024 && handler.fitBytes < handler.out.length);
    const fit = decodeAll(handler.out.view().subarray(0, handler.fitBytes)) as unknown[][];
    assert.equal(fit.length, statusCalls() - 1, 'the replies that fit: every STATUS answered but the one that passed the budget');
    assert.deepEqual(fit.map((r) => r[1]), Array.from({ length: fit.length }, (_, i) => i + 1));
    assert.equal(acquires(), 0, 'the ACQUIRE after the storm was not handled');
    handler.out.reset();
  });

  it('ends a batch of flat ACQUIREs at the budget too, and answers a message that fits in full', () => {
    const { handler, conn, acquires } = setup();
    const batch = message(Array.from({ length: 500 }, (_, i) => [1, i + 1, 'p/a', 1, 0]));
    assert.equal(handler.handleMessage(conn, batch, 1024), CLOSE_POLICY_VIOLATION);
    const handled = acquires();
    assert.ok(handled > 0 && handled < 500, `stopped part way (${handled} of 500)`);
    assert.equal(decodeAll(handler.out.view().subarray(0, handler.fitBytes)).length, handled - 1, 'a reply for each handled but the last');
    handler.out.reset();
    assert.equal(handler.handleMessage(conn, message([[1, 1, 'p/a', 1, 0], [3, 2]]), 64 * 1024), 0);
    assert.equal(handler.overBudget, false);
    assert.equal(decodeAll(handler.out.view()).length, 2, 'both answered');
    handler.out.reset();
    assert.equal(handler.handleMessage(conn, message([[3, 3]])), 0, 'no budget given: no limit');
    handler.out.reset();
  });

  it('stops answering a message within STOP_CHECK_EVERY requests when the daemon starts stopping, on both ways of reading', () => {
    for (const first of [[1, 1, 'p/a', 1, 0], [3, 1]]) {
      const { handler, conn, stopping, acquires } = setup();
      stopping.flag = true;
      const close = handler.handleMessage(conn, message([first, ...Array.from({ length: 100 }, (_, i) => [1, i + 2, 'p/a', 1, 0])]), 1 << 20);
      assert.equal(close, CLOSE_GOING_AWAY, `stops (first request ${JSON.stringify(first)})`);
      assert.equal(handler.overBudget, false);
      assert.equal(decodeAll(handler.out.view()).length, STOP_CHECK_EVERY, 'the flag is read every STOP_CHECK_EVERY requests');
      assert.equal(acquires(), 0, 'nothing granted while stopping');
    }
  });
});
