// Every error code and close code of PROTOCOL.md v1, and malformed input of
// each kind, with the daemon still serving afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pack } from 'msgpackr';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { Rng } from '../fuzz/frame-fuzzer.ts';

/** Seed of the random bytes below (printed; set TPSD_FUZZ_SEED to replay a run), as the fuzzers do. */
const SEED = Number(process.env.TPSD_FUZZ_SEED ?? 20_261_201);

/** Random bytes (30 %) or a valid request with 1-3 bytes changed and maybe cut short. */
function fuzzFrame(rng: Rng, valid: readonly Uint8Array[]): Buffer {
  if (rng.chance(0.3)) return Buffer.from(rng.bytes(1 + rng.int(64)));
  let bytes = Buffer.from(rng.pick(valid));
  const flips = 1 + rng.int(3);
  for (let f = 0; f < flips; f++) bytes[rng.int(bytes.length)] = rng.int(256);
  if (rng.chance(0.2)) bytes = bytes.subarray(0, rng.int(bytes.length));
  return bytes;
}

async function stillServing(port: number): Promise<void> {
  const c = await RawClient.open(port);
  const r = await c.call([1, 42, 'api/low', 1, 0]);
  assert.equal(r[2], 0, 'daemon still grants after the bad input');
  c.close();
}

describe('protocol v1 errors', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startTestDaemon({
      max_message_bytes: 4096,
      limits: { max_queue_per_key: 3, max_outstanding_per_connection: 5 },
    });
  });
  after(async () => { await daemon.stop(); });

  it('answers BAD_REQUEST (16) for wrong arity, types, tokens 0, long keys and unknown ops', async () => {
    const c = await RawClient.open(daemon.port);
    const cases: unknown[][] = [
      [1, 1, 'api/low', 1],
      [1, 2, 'api/low', 1, 0, 'extra'],
      [1, 3, 42, 1, 0],
      [1, 4, 'api/low', 0, 0],
      [1, 5, 'api/low', -1, 0],
      [1, 6, 'api/low', 1.5, 0],
      [1, 7, 'api/low', 1, -5],
      [1, 8, 'k'.repeat(257), 1, 0],
      [2, 9, 'lease', 0, 0],
      [2, 10, 1, 4, 0],
      [2, 14, 1, 0, 0, { limit: 'many' }],
      [3, 11, 'extra'],
      [0, 12],
      [99, 13],
    ];
    c.send(...cases);
    for (const req of cases) {
      const r = await c.reply(req[1] as number);
      assert.equal(r[2], 16, `request ${JSON.stringify(req).slice(0, 60)} -> ${JSON.stringify(r)}`);
      assert.equal(r[0], req[0]);
      assert.equal(typeof r[3], 'string');
      assert.ok((r[3] as string).length > 5, 'the message says what was wrong');
    }
    c.close();
    await stillServing(daemon.port);
  });

  it('answers UNKNOWN_KEY (17) and TOKENS_EXCEED_BURST (22)', async () => {
    const c = await RawClient.open(daemon.port);
    assert.deepEqual((await c.call([1, 1, 'api/nope', 1, 0])).slice(0, 3), [1, 1, 17]);
    assert.deepEqual((await c.call([1, 2, 'api', 101, 0])).slice(0, 3), [1, 2, 22]);
    // Endpoint burst is 2: 3 tokens can never fit.
    assert.deepEqual((await c.call([1, 3, 'api/crit/slow', 3, 1000])).slice(0, 3), [1, 3, 22]);
    assert.deepEqual((await c.call([1, 4, 'api/low', 2 ** 40, 0])).slice(0, 3), [1, 4, 22]);
    c.close();
  });

  it('answers OVERLOADED (20) when a key queue or a connection is full', async () => {
    const c = await RawClient.open(daemon.port);
    await c.call([1, 1, 'api/crit/slow', 2, 0]); // empty the endpoint bucket
    c.send([1, 2, 'api/crit/slow', 2, 3000], [1, 3, 'api/crit/slow', 2, 3000], [1, 4, 'api/crit/slow', 2, 3000],
      [1, 5, 'api/crit/slow', 2, 3000]);
    const r = await c.reply(5);
    assert.deepEqual(r.slice(0, 3), [1, 5, 20], 'fourth waiter on a queue of 3');
    c.close();
    // The closed connection's waiters leave the queue at once.
    const c2 = await RawClient.open(daemon.port);
    await new Promise((res) => setTimeout(res, 50));
    const snap = (await c2.call([3, 1]))[3] as { keys: { key: string; queue: number }[] };
    assert.equal(snap.keys.find((k) => k.key === 'api/crit/slow')!.queue, 0);
    // Outstanding per connection: 5. Empty both buckets, then queue 3 + 3 waiters.
    await c2.call([1, 2, 'api/crit/slow', 2, 0]);
    await c2.call([1, 3, 'api/crit', 100, 0]);
    for (let i = 0; i < 3; i++) c2.send([1, 10 + i, 'api/crit/slow', 2, 3000]);
    for (let i = 0; i < 3; i++) c2.send([1, 20 + i, 'api/crit', 100, 3000]);
    const over = await c2.reply(22);
    assert.deepEqual(over.slice(0, 3), [1, 22, 20], 'sixth waiting request on a connection limited to 5');
    assert.match(over[3] as string, /connection/);
    c2.close();
  });

  it('closes with 1003 on a text message', async () => {
    const c = await RawClient.open(daemon.port);
    c.ws.send('hello');
    assert.equal(await c.closed(), 1003);
    await stillServing(daemon.port);
  });

  it('closes with 1009 on a message over max_message_bytes', async () => {
    const c = await RawClient.open(daemon.port);
    c.sendBytes(pack([1, 1, 'x'.repeat(5000), 1, 0]));
    assert.equal(await c.closed(), 1009);
    const c2 = await RawClient.open(daemon.port);
    c2.sendBytes(new Rng(SEED).bytes(2 * 1024 * 1024));
    assert.equal(await c2.closed(), 1009);
    await stillServing(daemon.port);
  });

  it('closes with 1002 on invalid MessagePack, after answering the requests before it', async () => {
    const c = await RawClient.open(daemon.port);
    const good = pack([3, 1]);
    const truncated = pack([1, 2, 'api/low', 1, 0]).subarray(0, 5);
    c.sendBytes(Buffer.concat([good, truncated]));
    assert.equal(await c.closed(), 1002);
    assert.equal(c.replies.find((r) => r[1] === 1)?.[2], 0);
    const c2 = await RawClient.open(daemon.port);
    c2.sendBytes(Buffer.from([0xc1]));
    assert.equal(await c2.closed(), 1002);
    await stillServing(daemon.port);
  });

  it('closes with 1002 on a request that is not [uint, uint, ...], with an error reply when the id is readable', async () => {
    const c = await RawClient.open(daemon.port);
    c.sendBytes(pack(['ACQUIRE', 5, 'api/low', 1, 0]));
    assert.equal(await c.closed(), 1002);
    const r = c.replies.find((x) => x[1] === 5);
    assert.ok(r, 'error reply for id 5');
    assert.equal(r![2], 16);
    for (const bad of [pack({ op: 1 }), pack(17), pack([1]), pack([1, -3, 'api/low', 1, 0]), pack([1, 2 ** 33, 'x', 1, 0])]) {
      const cx = await RawClient.open(daemon.port);
      cx.sendBytes(bad);
      assert.equal(await cx.closed(), 1002);
    }
    await stillServing(daemon.port);
  });

  it('survives random bytes and mutated frames', async (t) => {
    t.diagnostic(`seed ${SEED} (again: TPSD_FUZZ_SEED=${SEED})`);
    const rng = new Rng(SEED);
    const valid = [pack([1, 1, 'api/low', 1, 0]), pack([2, 2, 12345, 0, 10]), pack([3, 3]), pack([0, 4, { v: 1 }])];
    try {
      for (let round = 0; round < 40; round++) {
        const c = await RawClient.open(daemon.port);
        // The slow key (5/s, burst 2) runs dry: each connection gets the junk below with waiters queued.
        c.send(...[1, 2, 3, 4].map((k) => [1, 1000 + k, 'api/crit/slow', 1, 60_000]));
        // Drawn before sending, so the seed alone decides the bytes (not when a close arrives).
        const frames = Array.from({ length: 25 }, () => fuzzFrame(rng, valid));
        for (const bytes of frames) {
          if (bytes.length === 0 || c.closeCode !== null) break;
          c.sendBytes(bytes);
        }
        c.close();
      }
      await stillServing(daemon.port);
      // Once the fuzzed connections are closed, none of their waiters is left.
      const c = await RawClient.open(daemon.port);
      let id = 0;
      const queued = async () => ((await c.call([3, ++id]))[3] as { keys: { key: string; queue: number }[] }).keys.filter((k) => k.queue !== 0);
      const deadline = Date.now() + 10_000;
      for (let left = await queued(); left.length > 0; left = await queued()) {
        assert.ok(Date.now() < deadline, `waiters left: ${JSON.stringify(left)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      c.close();
    } catch (err) {
      throw new Error(`seed ${SEED} (again: TPSD_FUZZ_SEED=${SEED} node --import tsx --test test/integration/protocol-errors.test.ts): ${(err as Error).message}`, { cause: err });
    }
  });
});

describe('protocol v1 auth and shutdown', () => {
  it('answers UNAUTHORIZED (18) without a valid token or outside the token\'s keys', async () => {
    const daemon = await startTestDaemon({
      auth: { tokens: [{ token: 's3cret', keys: ['api/low'] }, { token: 'admin', keys: [], admin: true }] },
    });
    try {
      const c = await RawClient.open(daemon.port);
      assert.deepEqual((await c.call([1, 1, 'api/low', 1, 0])).slice(0, 3), [1, 1, 18]);
      assert.deepEqual((await c.call([3, 2])).slice(0, 3), [3, 2, 18]);
      assert.deepEqual((await c.call([0, 3, { v: 1, token: 'wrong' }])).slice(0, 3), [0, 3, 18]);
      assert.deepEqual((await c.call([0, 4, { v: 1, token: 's3cret' }])).slice(0, 3), [0, 4, 0]);
      assert.deepEqual((await c.call([1, 5, 'api/low', 1, 0])).slice(0, 3), [1, 5, 0]);
      assert.deepEqual((await c.call([1, 6, 'api/crit', 1, 0])).slice(0, 3), [1, 6, 18]);
      c.close();
      // Repeated failures close the connection.
      const c2 = await RawClient.open(daemon.port);
      for (let i = 0; i < 6; i++) c2.send([0, 10 + i, { v: 1, token: `guess${i}` }]);
      assert.equal(await c2.closed(), 1008);
    } finally {
      await daemon.stop();
    }
  });

  it('answers waiters SHUTTING_DOWN (21) when the daemon stops', async () => {
    const daemon = await startTestDaemon();
    const c = await RawClient.open(daemon.port);
    await c.call([1, 1, 'api/crit/slow', 2, 0]);
    c.send([1, 2, 'api/crit/slow', 2, 5000]);
    await new Promise((r) => setTimeout(r, 50));
    await daemon.stop();
    const r = await c.reply(2);
    assert.deepEqual(r.slice(0, 3), [1, 2, 21]);
    assert.equal(await c.closed(), 1001);
  });
});
