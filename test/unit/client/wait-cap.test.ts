// The longest wait: an ACQUIRE may wait up to 30 minutes (what the throttling
// agents tpsd replaces allow). The daemon keeps a waiter that long and cuts
// longer waits to it; the SDK sends the same cut, so its call deadline
// (wait + timeoutMs) follows the daemon's. Checked on a real RequestHandler
// (its waiter's deadline) and on the bytes the SDK sends.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../../src/client/client.ts';
import { validateConfig } from '../../../src/config/schema.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import type { Conn } from '../../../src/io/conn.ts';
import { RequestHandler } from '../../../src/io/request-handler.ts';
import { MsgWriter } from '../../../src/protocol/codec.ts';
import { MAX_WAIT_MS } from '../../../src/protocol/opcodes.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm } from '../../../src/shm/layout.ts';
import { startFakeDaemon, waitFor } from './fake-daemon.ts';

const MINUTE_MS = 60_000;

/** A handler whose key p/a holds 5 tokens refilled at 1 per second: 6 tokens must wait. */
function handler(): { h: RequestHandler; conn: Conn } {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
    pools: [{ name: 'p', capacity_tps: 1, burst: 10, services: [{ name: 'a', priority: 'HIGH', max_tps: 1, burst: 10 }] }],
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const epoch = hrtimeMs();
  BucketTable.initialize(views, keys, createClock(epoch).nowMs());
  const table = new BucketTable(views, createClock(epoch), 0);
  const h = new RequestHandler({
    config, keys, table, thread: 0, auth: new Authenticator(config.auth), status: () => ({}), shuttingDown: () => false,
  });
  return { h, conn: { connId: 1, token: null, authFailures: 0, outstanding: 0, closed: false, out: null } };
}

test('the daemon keeps a waiter up to 30 minutes and cuts longer waits to 30 minutes', () => {
  assert.equal(MAX_WAIT_MS, 30 * MINUTE_MS);
  const { h, conn } = handler();
  const w = new MsgWriter();
  w.value([1, 1, 'p/a', 10, 0]); // takes the burst
  for (const [id, waitMs] of [[2, 20 * MINUTE_MS], [3, 30 * MINUTE_MS], [4, 60 * MINUTE_MS]]) w.value([1, id, 'p/a', 6, waitMs]);
  assert.equal(h.handleMessage(conn, w.take()), 0);
  const waits = new Map(h.waiters.queues.flat().map((wt) => [wt.id, Math.round(wt.deadline - wt.enqueuedAt)]));
  assert.deepEqual([...waits], [[2, 20 * MINUTE_MS], [3, 30 * MINUTE_MS], [4, 30 * MINUTE_MS]]);
  h.dropConnection(conn);
});

test('the SDK sends waits up to 30 minutes as they are and longer ones cut to 30 minutes', async () => {
  const fake = await startFakeDaemon();
  fake.handler = (req) => (req[0] === 0 ? [[0, req[1], 0, { v: 1, server: 'fake', tick_ms: 100 }]] : []);
  const client = await connect(fake.url);
  const calls = [20 * MINUTE_MS, 30 * MINUTE_MS, 60 * MINUTE_MS, 2 ** 40].map((waitMs) => client.acquire('p/a', 1, { waitMs }));
  for (const p of calls) p.catch(() => {}); // rejected by close() below
  await waitFor(() => fake.messages.flat().filter((r) => r[0] === 1).length === calls.length);
  const sent = fake.messages.flat().filter((r) => r[0] === 1).map((r) => r[4]);
  assert.deepEqual(sent, [20 * MINUTE_MS, 30 * MINUTE_MS, 30 * MINUTE_MS, 30 * MINUTE_MS]);
  await client.close();
  await fake.close();
});
