import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { BadRequestError, ShuttingDownError, TpsdError, UnknownKeyError } from '../../../src/protocol/errors.ts';
import { FlatReader } from '../../../src/protocol/flat-reader.ts';
import {
  checkAcquire, flatToArray, readAcquireFlat, readAcquireReply, readHelloReply, readStatusReply, writeAcquire, writeHello, writeRelease, writeStatus,
} from '../../../src/client/wire.ts';

test('requests are encoded as the protocol says, several in one stream', () => {
  const w = new MsgWriter(16);
  writeHello(w, 1, 'secret', 'svc-a');
  writeHello(w, 2);
  writeAcquire(w, 3, 'pool/ü-service', 2, 250);
  writeRelease(w, 77, 2, 1234567);
  writeStatus(w, 4);
  assert.deepEqual(decodeAll(w.take()), [
    [0, 1, { v: 1, token: 'secret', name: 'svc-a' }],
    [0, 2, { v: 1 }],
    [1, 3, 'pool/ü-service', 2, 250],
    [2, 0, 77, 2, 1234567],
    [3, 4],
  ]);
});

test('acquire replies: granted, denied, and errors as TpsdError subclasses', () => {
  assert.deepEqual(readAcquireReply([1, 5, 0, 42, 3]), { granted: true, lease: 42, remaining: 3, retryAfterMs: 0 });
  assert.deepEqual(readAcquireReply([1, 5, 1, 0, 180]), { granted: false, lease: 0, remaining: 0, retryAfterMs: 180 });
  assert.throws(() => readAcquireReply([1, 5, 17, 'no bucket "x"']), (e: unknown) => e instanceof UnknownKeyError && e.code === 17 && /no bucket/.test(e.message));
  assert.throws(() => readAcquireReply([1, 5, 21, 'bye']), ShuttingDownError);
  assert.throws(() => readAcquireReply([1, 5, 99]), (e: unknown) => e instanceof TpsdError && e.code === 99);
});

test('hello and status replies', () => {
  assert.deepEqual(readHelloReply([0, 1, 0, { v: 1, server: 'tpsd/0.1', tick_ms: 100 }]), { v: 1, server: 'tpsd/0.1', tick_ms: 100 });
  assert.throws(() => readHelloReply([0, 1, 18, 'bad token']), /bad token/);
  assert.deepEqual(readStatusReply([3, 2, 0, { keys: [1] }]), { keys: [1] });
});

test('acquire arguments are checked before anything is sent', () => {
  assert.equal(checkAcquire('p/s', 1, 0), 0);
  assert.equal(checkAcquire('p/s', 1, 10.2), 11);
  assert.throws(() => checkAcquire('', 1, 0), BadRequestError);
  assert.throws(() => checkAcquire('x'.repeat(257), 1, 0), /256 bytes/);
  assert.throws(() => checkAcquire('é'.repeat(129), 1, 0), /256 bytes/);
  assert.throws(() => checkAcquire('p/s', 0, 0), /tokens/);
  assert.throws(() => checkAcquire('p/s', 1.5, 0), /tokens/);
  assert.throws(() => checkAcquire('p/s', 1, -1), /waitMs/);
  assert.throws(() => checkAcquire('p/s', 1, Number.NaN), /waitMs/);
});

/** A flat array as the daemon writes it (uints and strings). */
function flat(values: (number | string)[]): Uint8Array {
  const w = new MsgWriter().array(values.length);
  for (const v of values) if (typeof v === 'number') w.uint(v); else w.str(v);
  return w.take();
}

test('acquire replies read from the bytes agree with the general decoder', () => {
  const r = new FlatReader();
  for (const reply of [
    [1, 5, 0, 42, 3], [1, 5, 1, 0, 180], [1, 5, 0, 2 ** 53 - 1, 0], [1, 5, 0], [1, 5, 0, 'x', 4], [1, 5, 1, 0],
    [1, 5, 1, 7, 'soon'], [1, 5, 0, 1, 2, 3, 4],
  ]) {
    const bytes = flat(reply);
    assert.ok(r.read(bytes, 0));
    assert.deepEqual(flatToArray(r, bytes), decodeAll(bytes)[0]);
    assert.deepEqual(readAcquireFlat(r), readAcquireReply(reply), JSON.stringify(reply));
  }
  for (const reply of [[1, 5, 17, 'no bucket'], [1, 5, 99], [1, 5, 'x'], [1, 5]]) {
    const bytes = flat(reply);
    assert.ok(r.read(bytes, 0));
    assert.equal(readAcquireFlat(r), null, `${JSON.stringify(reply)}: left to readAcquireReply`);
  }
});
