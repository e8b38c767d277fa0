// RELEASE's sixth element (the upstream's rate-limit headers) and outcome 3:
// validation (io/release-hints.ts), and what the handler records for the
// controller (shm/hint-board.ts): only for the pool of the released lease's
// key, and only when the connection's token may use that key.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import type { Conn } from '../../../src/io/conn.ts';
import { readReleaseHints } from '../../../src/io/release-hints.ts';
import { RequestHandler } from '../../../src/io/request-handler.ts';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../../../src/shm/clock.ts';
import { HintBoard, hintedRateMilli, noHints } from '../../../src/shm/hint-board.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { C_HINTS_INDEX, C_RELEASED_TIMEOUT_INDEX, allocateShm, sumCounter, type ShmViews } from '../../../src/shm/layout.ts';

const POOLS = [
  { name: 'p', capacity_tps: 100, burst: 50, services: [{ name: 'a', priority: 'HIGH', burst: 20 }] },
  { name: 'q', capacity_tps: 100, burst: 50, services: [{ name: 'b', priority: 'LOW', burst: 20 }] },
];

function setup(auth?: unknown): { handler: RequestHandler; views: ShmViews; board: HintBoard; keys: KeyIndex } {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
    lease_ttl_ms: 3_600_000, pools: POOLS, ...(auth === undefined ? {} : { auth }),
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const epoch = hrtimeMs();
  BucketTable.initialize(views, keys, createClock(epoch).nowMs());
  const table = new BucketTable(views, createClock(epoch), 0);
  const board = new HintBoard(views);
  const handler = new RequestHandler({
    config, keys, table, thread: 0, auth: new Authenticator(config.auth), status: () => ({}), shuttingDown: () => false, hints: board,
  });
  return { handler, views, board, keys };
}

const conn = (): Conn => ({ connId: 1, token: null, authFailures: 0, outstanding: 0, closed: false, out: null });

function send(handler: RequestHandler, c: Conn, reqs: unknown[][]): unknown[][] {
  const w = new MsgWriter();
  for (const r of reqs) w.value(r);
  assert.equal(handler.handleMessage(c, w.take()), 0);
  return decodeAll(handler.out.take()) as unknown[][];
}

function lease(handler: RequestHandler, c: Conn, key: string): number {
  const [r] = send(handler, c, [[1, 7, key, 1, 0]]);
  assert.equal(r[2], 0, JSON.stringify(r));
  return r[3] as number;
}

const take = (board: HintBoard, pool: number) => board.take(pool, { lowTps: NaN, highTps: NaN });

describe('RELEASE hints', () => {
  it('reads a map of numbers in place, ignores unknown fields, refuses anything else', () => {
    const out = noHints();
    const read = (v: unknown) => { const err = readReleaseHints(v, out); return err ?? { ...out }; };
    assert.deepEqual(read(undefined), noHints());
    assert.deepEqual(read(null), noHints());
    assert.deepEqual(read({ limit: 100, reset_ms: 250.5, 'x-vendor': 'yes', window: 'nonsense' }), { ...noHints(), limit: 100, resetMs: 250.5 });
    // The reused object forgets the last RELEASE's fields.
    assert.deepEqual(read({}), noHints());
    assert.match(read({ limit: '100' }) as string, /limit is string/);
    assert.match(read({ remaining: -1 }) as string, /remaining is -1/);
    assert.match(read({ window_ms: null }) as string, /window_ms is nil/);
    for (const bad of [[1, 2], 'limit=1', 5, true, new Uint8Array(2), new Map()]) assert.match(read(bad) as string, /hints are a map of numbers/);
  });

  it('turns limit per window into a rate: window_ms, else the seconds reset_ms covers, else one second', () => {
    const rate = (h: Partial<ReturnType<typeof noHints>>) => hintedRateMilli({ ...noHints(), ...h }) / 1000;
    assert.equal(rate({ limit: 6000, windowMs: 60_000 }), 100);
    assert.equal(rate({ limit: 50, resetMs: 250 }), 50);
    assert.equal(rate({ limit: 600, resetMs: 59_500 }), 10);
    assert.equal(rate({ limit: 42 }), 42);
    assert.equal(rate({ remaining: 3 }), -0.001, 'no limit: nothing to record');
    assert.equal(rate({ limit: 1e300 }), 2_000_000, 'clamped to the largest rate a bucket holds');
  });

  it('records the lowest and highest hinted rate on the lease\'s pool; outcome 3 counts as a timeout', () => {
    const { handler, views, board, keys } = setup();
    const c = conn();
    const ids = [lease(handler, c, 'p/a'), lease(handler, c, 'p/a'), lease(handler, c, 'p/a')];
    const replies = send(handler, c, [
      [2, 1, ids[0], 0, 10, { limit: 80, remaining: 5, reset_ms: 400 }],
      [2, 2, ids[1], 3, 2_000_000, { limit: 60, window_ms: 1000, 'x-other': [1] }],
      [2, 3, ids[2], 2, 10, null],
    ]);
    assert.deepEqual(replies, [[2, 1, 0], [2, 2, 0], [2, 3, 0]]);
    const p = keys.lookup('p');
    assert.deepEqual(take(board, p), { lowTps: 60, highTps: 80 });
    assert.deepEqual(take(board, p), { lowTps: NaN, highTps: NaN }, 'taken: the next tick starts empty');
    assert.deepEqual(take(board, keys.lookup('q')), { lowTps: NaN, highTps: NaN });
    assert.equal(sumCounter(views, p, C_HINTS_INDEX), 2);
    assert.equal(sumCounter(views, keys.lookup('p/a'), C_RELEASED_TIMEOUT_INDEX), 1);
  });

  it('a malformed hints element is BAD_REQUEST and releases nothing', () => {
    const { handler, board, keys } = setup();
    const c = conn();
    const id = lease(handler, c, 'p/a');
    const [bad] = send(handler, c, [[2, 1, id, 0, 10, { limit: 'lots' }]]);
    assert.deepEqual(bad, [2, 1, 16, 'RELEASE hints are a map of numbers >= 0: {limit, remaining, reset_ms, window_ms, retry_after_ms}; limit is string']);
    assert.deepEqual(send(handler, c, [[2, 2, id, 0, 10, [100]]])[0].slice(0, 3), [2, 2, 16]);
    assert.deepEqual(send(handler, c, [[2, 0, id, 0, 10, 'x']]), [], 'id 0: no reply, and still nothing done');
    assert.deepEqual(send(handler, c, [[2, 3, id, 0, 10]]), [[2, 3, 0]], 'the lease was still held');
    assert.deepEqual(take(board, keys.lookup('p')), { lowTps: NaN, highTps: NaN });
  });

  it('hints count only for a pool whose key the token may use, whoever\'s lease it is', () => {
    const { handler, board, keys } = setup({ tokens: [{ token: 'tok-p', keys: ['p/'] }, { token: 'tok-q', keys: ['q/'] }] });
    const cp = conn();
    const cq = { ...conn(), connId: 2 };
    assert.equal(send(handler, cp, [[0, 1, { v: 1, token: 'tok-p' }]])[0][2], 0);
    assert.equal(send(handler, cq, [[0, 1, { v: 1, token: 'tok-q' }]])[0][2], 0);
    const onP = lease(handler, cp, 'p/a');
    const onQ = lease(handler, cq, 'q/b');
    // q's client releases p's lease (a lease id it learnt somehow) with hints: p's pool hears nothing of it.
    send(handler, cq, [[2, 0, onP, 0, 10, { limit: 1 }]]);
    assert.deepEqual(take(board, keys.lookup('p')), { lowTps: NaN, highTps: NaN });
    send(handler, cq, [[2, 0, onQ, 0, 10, { limit: 7 }]]);
    assert.deepEqual(take(board, keys.lookup('q')), { lowTps: 7, highTps: 7 });
  });
});
