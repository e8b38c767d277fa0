// Connection over a scripted socket (no network): the reply path (flat
// arrays read from the bytes, the general decoder from the first value that
// is not one) and the deadline sweep.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { ShuttingDownError, UnknownKeyError } from '../../../src/protocol/errors.ts';
import { OP_ACQUIRE, OP_STATUS } from '../../../src/protocol/opcodes.ts';
import { Connection, SWEEP_MS, type ConnectionOptions } from '../../../src/client/connection.ts';
import { CallTimeoutError, DisconnectedError } from '../../../src/client/errors.ts';
import type { WireSocket } from '../../../src/client/socket.ts';
import type { Permit } from '../../../src/client/types.ts';
import { writeStatus } from '../../../src/client/wire.ts';

/** A WireSocket that records what is sent and delivers what the test says. */
class ScriptedSocket implements WireSocket {
  binaryType = 'arraybuffer';
  readyState = 1;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: { message?: string; error?: unknown }) => void) | null = null;
  readonly sent: unknown[][] = [];
  closed = false;
  send(data: Uint8Array): void { this.sent.push(...(decodeAll(data) as unknown[][])); }
  close(): void { this.terminate(); }
  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.({ code: 1006, reason: '' });
  }
  /** Delivers one message made of these MessagePack bytes (as an ArrayBuffer, as a browser would). */
  deliver(bytes: Uint8Array): void {
    this.onmessage?.({ data: bytes.slice().buffer });
  }
  /** The ids of the requests sent so far with this op. */
  ids(op: number): number[] {
    return this.sent.filter((r) => r[0] === op).map((r) => r[1] as number);
  }
}

interface Setup { socket: ScriptedSocket; conn: Connection; closes: string[]; unreachable: unknown[][] }

function setup(extra: Partial<ConnectionOptions> = {}): Setup {
  const socket = new ScriptedSocket();
  const closes: string[] = [];
  const unreachable: unknown[][] = [];
  const conn = new Connection(socket, {
    maxOutstanding: 10_000,
    maxMessageBytes: 65536,
    onClose: (_c, reason) => closes.push(reason),
    onUnreachable: (key, tokens, waitMs, err) => {
      unreachable.push([key, tokens, waitMs, err.name]);
      return { granted: true, lease: 0, remaining: 0, retryAfterMs: 0, local: true };
    },
    ...extra,
  });
  return { socket, conn, closes, unreachable };
}

// The sweep timer is unref'd (a real socket keeps the process alive while
// calls wait); the scripted socket does not, so this does.
const hold = setInterval(() => {}, 1 << 30);
after(() => clearInterval(hold));

/** How late a busy machine may run a timer, beyond the sweep period. */
const SLACK_MS = 100;

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejection or resolution, as a value to compare. */
function outcome<T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> {
  return p.then((ok) => ({ ok }), (err: unknown) => ({ err }));
}

test('flat and map replies mixed in one message, in any order', async () => {
  const { socket, conn } = setup();
  const a = conn.acquire('pool/a', 1, 0, 1000);
  const status = conn.call(OP_STATUS, 1000, writeStatus);
  const b = conn.acquire('pool/b', 2, 0, 1000);
  const c = conn.acquire('pool/c', 1, 0, 1000);
  await tick();
  const [ia, ib, ic] = socket.ids(OP_ACQUIRE);
  const [is] = socket.ids(OP_STATUS);
  const w = new MsgWriter();
  w.array(5).uint(1).uint(ib).uint(0).uint(2 ** 40).uint(9); // flat, before the map
  w.value([3, is, 0, { keys: [{ key: 'pool/a' }], mode: 'static' }]); // a map: the rest is decoded the general way
  w.array(5).uint(1).uint(ia).uint(1).uint(0).uint(250); // flat, after the map
  w.array(5).uint(1).uint(ic).uint(0).uint(77).uint(3);
  socket.deliver(w.take());
  assert.deepEqual(await a, { granted: false, lease: 0, remaining: 0, retryAfterMs: 250 });
  assert.deepEqual(await b, { granted: true, lease: 2 ** 40, remaining: 9, retryAfterMs: 0 });
  assert.deepEqual(await c, { granted: true, lease: 77, remaining: 3, retryAfterMs: 0 });
  assert.deepEqual(await status, [3, is, 0, { keys: [{ key: 'pool/a' }], mode: 'static' }]);
  // Granted leases are tracked: their release goes out once.
  assert.equal(conn.release(77, 0, 5), true);
  assert.equal(conn.release(77, 0, 5), false);
  assert.equal(conn.release(2 ** 40, 1, 5), true);
  await tick();
  assert.deepEqual(socket.sent.filter((r) => r[0] === 2), [[2, 0, 77, 0, 5], [2, 0, 2 ** 40, 1, 5]]);
});

test('error replies: a TpsdError, SHUTTING_DOWN to the failure mode, raw calls get the array', async () => {
  const { socket, conn, unreachable } = setup();
  const unknown = outcome(conn.acquire('nope', 1, 0, 1000));
  const bye = conn.acquire('pool/a', 3, 40, 1000);
  const odd = outcome(conn.acquire('pool/a', 1, 0, 1000));
  const status = conn.call(OP_STATUS, 1000, writeStatus);
  await tick();
  const [iu, ib, io] = socket.ids(OP_ACQUIRE);
  const [is] = socket.ids(OP_STATUS);
  const w = new MsgWriter();
  w.array(4).uint(1).uint(iu).uint(17).str('no bucket "nope"');
  w.array(4).uint(1).uint(ib).uint(21).str('shutting down');
  w.array(3).uint(1).uint(io).uint(99); // unknown code, no message
  w.array(4).uint(3).uint(is).uint(20).str('busy');
  w.array(4).uint(2).uint(0).uint(19).str('unknown lease'); // answers a RELEASE: nobody waits for it
  socket.deliver(w.take());
  const u = await unknown;
  assert.ok('err' in u && u.err instanceof UnknownKeyError && u.err.message === 'no bucket "nope"');
  assert.deepEqual(await bye, { granted: true, lease: 0, remaining: 0, retryAfterMs: 0, local: true });
  assert.equal(unreachable.length, 1);
  assert.deepEqual(unreachable[0].slice(0, 2), ['pool/a', 3]);
  assert.ok((unreachable[0][2] as number) <= 40);
  assert.equal(unreachable[0][3], 'ShuttingDownError');
  const o = await odd;
  assert.ok('err' in o && (o.err as { code?: number }).code === 99);
  assert.deepEqual(await status, [3, is, 20, 'busy']);
  assert.equal(conn.isOpen, true);
  // Without a failure mode, SHUTTING_DOWN rejects.
  const plain = setup({ onUnreachable: undefined });
  const p = outcome(plain.conn.acquire('pool/a', 1, 0, 1000));
  await tick();
  plain.socket.deliver(new MsgWriter().array(4).uint(1).uint(plain.socket.ids(OP_ACQUIRE)[0]).uint(21).str('bye').take());
  const r = await p;
  assert.ok('err' in r && r.err instanceof ShuttingDownError);
});

test('odd replies get the general decoder\'s answer', async () => {
  const { socket, conn } = setup();
  const floaty = conn.acquire('pool/a', 1, 0, 1000);
  const stringy = conn.acquire('pool/a', 1, 0, 1000);
  await tick();
  const [i1, i2] = socket.ids(OP_ACQUIRE);
  const w = new MsgWriter();
  w.value([1, i1, 0, 1.5, -3]); // not flat (float, negative): decoded; not uints, so 0
  w.array(5).uint(1).uint(i2).uint(0).str('x').uint(4); // flat, but the lease is a string
  w.value([1, 2 ** 33, 0, 1, 1]); // an id that is not a uint32: ignored
  w.value({ not: 'an array' });
  socket.deliver(w.take());
  assert.deepEqual(await floaty, { granted: true, lease: 0, remaining: 0, retryAfterMs: 0 });
  assert.deepEqual(await stringy, { granted: true, lease: 0, remaining: 4, retryAfterMs: 0 });
  assert.equal(conn.isOpen, true);
});

test('a truncated reply: what came before it is answered, then the connection is dropped', async () => {
  const { socket, conn, closes } = setup({ onUnreachable: undefined });
  const first = conn.acquire('pool/a', 1, 0, 1000);
  const second = outcome(conn.acquire('pool/a', 1, 0, 1000));
  await tick();
  const [i1, i2] = socket.ids(OP_ACQUIRE);
  const w = new MsgWriter();
  w.array(5).uint(1).uint(i1).uint(0).uint(5).uint(6);
  w.array(5).uint(1).uint(i2).uint(0).uint(7);
  const bytes = w.take();
  socket.deliver(bytes.subarray(0, bytes.length - 1)); // the second reply lacks its last field
  assert.deepEqual(await first, { granted: true, lease: 5, remaining: 6, retryAfterMs: 0 });
  const r = await second;
  assert.ok('err' in r && r.err instanceof DisconnectedError && /undecodable reply/.test(r.err.message), String((r as { err: unknown }).err));
  assert.equal(conn.isOpen, false);
  assert.equal(socket.closed, true);
  assert.equal(closes.length, 1);
});

test('a call times out no earlier than its deadline and at most a sweep later', async () => {
  const { socket, conn } = setup();
  const t0 = performance.now();
  const slow = conn.call(OP_STATUS, 60, writeStatus).then(() => -1, (err: unknown) => {
    assert.ok(err instanceof CallTimeoutError, String(err));
    return performance.now() - t0;
  });
  // Keep the daemon "alive": something arrives after the call (a reply nobody waits for).
  await sleep(10);
  socket.deliver(new MsgWriter().array(3).uint(2).uint(0).uint(0).take());
  const elapsed = await slow;
  assert.ok(elapsed >= 60, `fired after ${elapsed} ms`);
  assert.ok(elapsed < 60 + SWEEP_MS + SLACK_MS, `fired after ${elapsed} ms (bound ${SWEEP_MS} ms + event loop slack)`);
  assert.equal(conn.isOpen, true);
  // Its late reply is dropped quietly.
  socket.deliver(new MsgWriter().array(3).uint(3).uint(socket.ids(OP_STATUS)[0]).uint(0).take());
  assert.equal(conn.isOpen, true);
});

test('a call answered in time does not time out, and the sweep stops when nothing waits', async () => {
  const { socket, conn } = setup();
  const p = outcome(conn.acquire('pool/a', 1, 0, 40));
  await tick();
  socket.deliver(new MsgWriter().array(5).uint(1).uint(socket.ids(OP_ACQUIRE)[0]).uint(0).uint(3).uint(1).take());
  await sleep(40 + 3 * SWEEP_MS);
  assert.deepEqual(await p, { ok: { granted: true, lease: 3, remaining: 1, retryAfterMs: 0 } });
  assert.equal(conn.isOpen, true);
  assert.equal(conn.outstanding, 0);
  assert.equal((conn as unknown as { sweepTimer: unknown }).sweepTimer, null);
});

test('many calls with different timeouts fail in deadline order, each on time', async () => {
  const { socket, conn } = setup();
  const timeouts = [90, 30, 150, 60, 30, 120, 10, 200, 75, 45];
  const t0 = performance.now();
  const fired: { timeout: number; at: number }[] = [];
  const all = timeouts.map((timeout, i) => conn.call(OP_STATUS, timeout, writeStatus).then(
    () => assert.fail(`call ${i} answered`),
    (err: unknown) => {
      assert.ok(err instanceof CallTimeoutError && err.timeoutMs === timeout, String(err));
      fired.push({ timeout, at: performance.now() - t0 });
    },
  ));
  // One answered call among them, and messages arriving all along (the daemon is alive).
  const answered = conn.call(OP_STATUS, 100, writeStatus);
  await tick();
  const lastId = socket.ids(OP_STATUS).at(-1)!;
  socket.deliver(new MsgWriter().array(3).uint(3).uint(lastId).uint(0).take());
  assert.deepEqual(await answered, [3, lastId, 0]);
  const alive = setInterval(() => socket.deliver(new MsgWriter().array(3).uint(2).uint(0).uint(0).take()), 5);
  await Promise.all(all);
  clearInterval(alive);
  assert.deepEqual(fired.map((f) => f.timeout), [...timeouts].sort((a, b) => a - b));
  for (const f of fired) {
    assert.ok(f.at >= f.timeout, `timeout ${f.timeout} fired at ${f.at}`);
    assert.ok(f.at < f.timeout + SWEEP_MS + SLACK_MS, `timeout ${f.timeout} fired at ${f.at}`);
  }
  assert.equal(conn.isOpen, true);
});

test('nothing received since the call was made: the connection is declared dead at its deadline', async () => {
  const { conn, closes, unreachable } = setup();
  const a = conn.acquire('pool/a', 1, 500, 50);
  const b = outcome(conn.call(OP_STATUS, 5000, writeStatus));
  const permit: Permit = await a;
  assert.equal(permit.local, true);
  assert.equal(unreachable.length, 1);
  assert.equal(unreachable[0][3], 'DisconnectedError');
  const r = await b;
  assert.ok('err' in r && r.err instanceof DisconnectedError && /no reply from the daemon within 50 ms/.test(r.err.message));
  assert.equal(conn.isOpen, false);
  assert.deepEqual(closes, ['no reply from the daemon within 50 ms']);
});

test('ids stay unique as the call table grows; replies still match', async () => {
  const { socket, conn } = setup();
  const n = 3000; // grows the table several times
  const calls = Array.from({ length: n }, (_, i) => conn.acquire(`pool/k${i}`, 1, 0, 5000));
  await tick();
  const sent = socket.sent.filter((r) => r[0] === OP_ACQUIRE);
  assert.equal(new Set(sent.map((r) => r[1])).size, n);
  const w = new MsgWriter();
  for (const r of [...sent].reverse()) w.array(5).uint(1).uint(r[1] as number).uint(0).uint(Number((r[2] as string).slice(6)) + 1).uint(0);
  socket.deliver(w.take());
  const permits = await Promise.all(calls);
  assert.deepEqual(permits.map((p) => p.lease), Array.from({ length: n }, (_, i) => i + 1));
  assert.equal(conn.outstanding, 0);
});
