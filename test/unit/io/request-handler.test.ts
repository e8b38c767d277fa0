// RequestHandler reads flat ACQUIRE/RELEASE requests straight from the bytes
// and everything else through the general decoder (request-reader.ts). These
// tests check that both ways answer alike: every request in order, the same
// replies and error messages, the same close codes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import type { Conn } from '../../../src/io/conn.ts';
import { RequestHandler } from '../../../src/io/request-handler.ts';
import { SERVER_NAME } from '../../../src/io/server-name.ts';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { CLOSE_PROTOCOL_ERROR } from '../../../src/protocol/opcodes.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm } from '../../../src/shm/layout.ts';

// Rates of a few tokens per second: within a test, `remaining` does not move by refill.
const POOLS = [
  { name: 'p', capacity_tps: 2, burst: 50, services: [
    { name: 'a', priority: 'HIGH', max_tps: 1, burst: 20 },
    { name: 'b', priority: 'LOW', max_tps: 1, burst: 20, endpoints: [{ name: 'e.1', max_tps: 1, burst: 10 }] },
  ] },
];

function setup(auth?: unknown): { handler: RequestHandler; conn: Conn } {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
    lease_ttl_ms: 3_600_000, pools: POOLS, ...(auth === undefined ? {} : { auth }),
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const epoch = hrtimeMs();
  BucketTable.initialize(views, keys, createClock(epoch).nowMs());
  const table = new BucketTable(views, createClock(epoch), 0);
  const handler = new RequestHandler({
    config, keys, table, thread: 0, auth: new Authenticator(config.auth), status: () => ({ ok: true }), shuttingDown: () => false,
  });
  return { handler, conn: { connId: 1, token: null, authFailures: 0, outstanding: 0, closed: false, out: null } };
}

/** Requests encoded the usual way (uints and strings: the flat path takes ACQUIRE and RELEASE). */
function flat(reqs: unknown[][]): Uint8Array {
  const w = new MsgWriter();
  for (const r of reqs) {
    w.array(r.length);
    for (const v of r) {
      if (typeof v === 'string') w.str(v);
      else if (typeof v === 'number' && Number.isInteger(v) && v >= 0) w.uint(v);
      else w.value(v);
    }
  }
  return w.take();
}

/**
 * The same requests with every number written as a float64: msgpackr reads
 * 1.0 as 1, the flat reader refuses floats, so all of it goes the general way.
 */
function general(reqs: unknown[][]): Uint8Array {
  const w = new MsgWriter();
  for (const r of reqs) {
    w.array(r.length);
    for (const v of r) {
      if (typeof v === 'number') {
        const b = new Uint8Array(9);
        b[0] = 0xcb;
        new DataView(b.buffer).setFloat64(1, v);
        w.raw(b);
      } else if (typeof v === 'string') w.str(v);
      else w.value(v);
    }
  }
  return w.take();
}

function run(bytes: Uint8Array, h = setup()): { replies: unknown[]; close: number } {
  const close = h.handler.handleMessage(h.conn, bytes);
  const replies = decodeAll(h.handler.out.take());
  return { replies, close };
}

/** Two handlers in the same state, one fed flat messages and one the same requests read the general way. */
class Pair {
  private readonly a = setup();
  private readonly b = setup();
  /** Sends the requests both ways: the replies and close codes must be equal. */
  send(reqs: unknown[][]): { replies: unknown[]; close: number } {
    const x = run(flat(reqs), this.a);
    const y = run(general(reqs), this.b);
    assert.deepEqual(x, y, JSON.stringify(reqs));
    return x;
  }
}

function bothWays(reqs: unknown[][]): { replies: unknown[]; close: number } {
  return new Pair().send(reqs);
}

const head = (r: unknown) => (r as unknown[]).slice(0, 3);

describe('RequestHandler: flat and general reading', () => {
  it('answers a flat ACQUIRE and RELEASE as the general path does', () => {
    const pair = new Pair();
    const first = pair.send([[1, 7, 'p/a', 1, 0], [1, 8, 'p/b/e.1', 2, 0]]);
    assert.equal(first.close, 0);
    assert.deepEqual(first.replies.map(head), [[1, 7, 0], [1, 8, 0]]);
    assert.deepEqual(first.replies.map((r) => (r as number[])[4]), [19, 8]);
    const [l1, l2] = first.replies.map((r) => (r as number[])[3]);
    const { replies, close } = pair.send([[2, 9, l1, 0, 1500], [2, 0, l2, 2, 10], [2, 10, l2, 0, 0], [2, 11, l1, 1, 0]]);
    assert.equal(close, 0);
    assert.deepEqual(replies, [[2, 9, 0], [2, 10, 19, `no lease ${l2} (released, expired or never granted)`],
      [2, 11, 19, `no lease ${l1} (released, expired or never granted)`]]);
  });

  it('gives malformed ACQUIREs and RELEASEs the same errors both ways', () => {
    const cases: unknown[][] = [
      [1, 1, 'p/a', 1], [1, 1, 'p/a', 1, 0, 0], [1, 1, 'p/a', 0, 0], [1, 1, 'p/a', -1, 0], [1, 1, 'p/a', 1.5, 0],
      [1, 1, 'p/a', 1, -3], [1, 1, 'p/a', null, 0], [1, 1, null, 1, 0], [1, 1, 5, 1, 0], [1, 1, 'p/zz', 1, 0],
      [1, 1, 'p/b/ü日本', 1, 0], [1, 1, 'k'.repeat(257), 1, 0], [1, 1, 'é'.repeat(129), 1, 0], [1, 1, 'p/a', 2 ** 40, 0],
      [1, 1, 'p/a', 51, 0], [2, 1, 1, 4, 0], [2, 1, 1, 0], [2, 1, -1, 0, 0], [2, 1, 1, 0, null], [2, 0, 1, 4, 0], [2, 1, 99, 0, 0],
    ];
    for (const c of cases) {
      const { replies, close } = bothWays([c]);
      assert.equal(close, 0, JSON.stringify(c));
      assert.ok(replies.length <= 1);
    }
    assert.deepEqual(bothWays([[1, 1, 'p/a', 1]]).replies, [[1, 1, 16, 'ACQUIRE is [1, id, key, tokens, wait_ms]']]);
    assert.deepEqual(bothWays([[1, 1, 'p/a', -1, 0]]).replies, [[1, 1, 16, 'tokens must be an integer >= 1']]);
    assert.deepEqual(bothWays([[1, 1, 'p/a', 1.5, 0]]).replies, [[1, 1, 16, 'tokens must be an integer >= 1']]);
    assert.deepEqual(bothWays([[1, 1, 'p/a', 1, null]]).replies, [[1, 1, 16, 'wait_ms must be an unsigned integer']]);
    assert.deepEqual(bothWays([[1, 1, 5, 1, 0]]).replies, [[1, 1, 16, 'key must be a string']]);
    assert.deepEqual(bothWays([[1, 1, 'p/zz', 1, 0]]).replies, [[1, 1, 17, 'no bucket with key "p/zz"']]);
    assert.deepEqual(bothWays([[1, 1, 'p/b/ü日本', 1, 0]]).replies, [[1, 1, 17, 'no bucket with key "p/b/ü日本"']]);
    // The protocol counts bytes: 129 two-byte characters are 258 bytes.
    assert.deepEqual(bothWays([[1, 1, 'é'.repeat(129), 1, 0]]).replies, [[1, 1, 16, 'key longer than 256 bytes']]);
    assert.deepEqual(bothWays([[1, 1, 'é'.repeat(128), 1, 0]]).replies[0], [1, 1, 17, `no bucket with key "${'é'.repeat(128)}"`]);
    assert.deepEqual(bothWays([[1, 1, 'p/a', 21, 0]]).replies, [[1, 1, 22, '21 tokens is more than a bucket on the way to "p/a" can ever hold']]);
    assert.deepEqual(bothWays([[2, 1, 1, 4, 0]]).replies[0],
      [2, 1, 16, 'RELEASE is [2, id, lease: uint, outcome: 0 ok | 1 failed | 2 throttled | 3 timed out, latency_us: uint, hints?: map]']);
    assert.deepEqual(bothWays([[2, 1, 1, 0]]).replies, bothWays([[2, 1, 1, 4, 0]]).replies);
    assert.deepEqual(bothWays([[2, 0, 1, 4, 0]]).replies, []);
  });

  it('answers flat ACQUIREs, a HELLO, then more ACQUIREs in one message, in order', () => {
    const bytes = flat([[1, 1, 'p/a', 1, 0], [1, 2, 'p/a', 1, 0], [0, 3, { v: 1, name: 'svc' }], [1, 4, 'p/a', 1, 0], [3, 5], [1, 6, 'p/zz', 1, 0], [1, 7, 'p/a', 1, 0]]);
    const h = setup();
    const { replies, close } = run(bytes, h);
    assert.equal(close, 0);
    assert.deepEqual(replies.map(head), [[1, 1, 0], [1, 2, 0], [0, 3, 0], [1, 4, 0], [3, 5, 0], [1, 6, 17], [1, 7, 0]]);
    assert.deepEqual(replies.filter((r) => (r as number[])[0] === 1 && (r as number[])[2] === 0).map((r) => (r as number[])[4]), [19, 18, 17, 16]);
    assert.equal(h.conn.name, 'svc');
  });

  it('closes with 1002 after answering the values before a cut-short or malformed one', () => {
    const good = flat([[1, 1, 'p/a', 1, 0], [2, 2, 1, 0, 5]]);
    const last = flat([[1, 3, 'p/a', 1, 0]]);
    for (let cut = 1; cut < last.length; cut++) {
      const bytes = new Uint8Array(good.length + cut);
      bytes.set(good);
      bytes.set(last.subarray(0, cut), good.length);
      const { replies, close } = run(bytes);
      assert.equal(close, CLOSE_PROTOCOL_ERROR, `cut at ${cut}`);
      assert.deepEqual(replies.map(head), [[1, 1, 0], [2, 2, 19]]);
    }
    // Not a request: answered when the id can be read, then closed.
    const { replies, close } = run(flat([[1, 1, 'p/a', 1, 0], ['x', 9], [1, 2, 'p/a', 1, 0]]));
    assert.equal(close, CLOSE_PROTOCOL_ERROR);
    assert.deepEqual(replies.map(head), [[1, 1, 0], [0, 9, 16]]);
    assert.equal((replies[1] as unknown[])[3], 'a request is an array [op: uint, id: uint32, ...]');
    // An id over uint32 on an otherwise flat ACQUIRE.
    assert.equal(run(flat([[1, 2 ** 32, 'p/a', 1, 0]])).close, CLOSE_PROTOCOL_ERROR);
  });

  it('reads an unknown key with invalid UTF-8 the general way', () => {
    const w = new MsgWriter().array(5).uint(1).uint(4);
    w.raw(new Uint8Array([0xa4, 0x70, 0x2f, 0xc0, 0xaf])).uint(1).uint(0);
    const { replies, close } = run(w.take());
    assert.equal(close, 0);
    const r = replies[0] as unknown[];
    assert.deepEqual(r.slice(0, 3), [1, 4, 17]);
    const viaDecoder = (decodeAll(new Uint8Array([0xa4, 0x70, 0x2f, 0xc0, 0xaf]))[0]) as string;
    assert.equal(r[3], `no bucket with key "${viaDecoder}"`);
  });

  it('checks auth key patterns on flat requests with the key as a string', () => {
    const auth = { tokens: [{ token: 'secret-token-1', keys: ['p/b'] }] };
    const h = setup(auth);
    const { replies } = run(flat([[1, 1, 'p/a', 1, 0], [0, 2, { v: 1, token: 'secret-token-1' }], [1, 3, 'p/a', 1, 0], [1, 4, 'p/b/e.1', 1, 0]]), h);
    assert.deepEqual(replies.map(head), [[1, 1, 18], [0, 2, 0], [1, 3, 18], [1, 4, 0]]);
    assert.equal((replies[2] as unknown[])[3], 'this token may not use key "p/a"');
  });

  it('answers HELLO with the protocol version, the server name and the tick', () => {
    const { replies, close } = bothWays([[0, 5, { v: 1, name: 'svc' }]]);
    assert.equal(close, 0);
    assert.deepEqual(replies, [[0, 5, 0, { v: 1, server: SERVER_NAME, tick_ms: 1000 }]]);
    assert.match(SERVER_NAME, /^tpsd\/\d+\.\d+\.\d+/);
  });
});
