// The codec: the hand encoder writes MessagePack that msgpackr reads back,
// picking the smallest form; decoding tells incomplete from corrupt data.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pack, unpack } from 'msgpackr';
import { DecodeError, MsgWriter, WRITER_SHRINK_ABOVE_BYTES, decodeAll, utf8Length } from '../../../src/protocol/codec.ts';

describe('codec', () => {
  it('encodes uints in every width and strings of every length', () => {
    const values = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    const strings = ['', 'a', 'é'.repeat(20), 'x'.repeat(300), '😀'.repeat(20000)];
    const w = new MsgWriter(4);
    w.array(values.length);
    for (const v of values) w.uint(v);
    w.array(strings.length);
    for (const s of strings) w.str(s);
    const [a, b] = decodeAll(w.take());
    assert.deepEqual(a, values);
    assert.deepEqual(b, strings);
    assert.deepEqual(new MsgWriter().uint(5).take(), new Uint8Array(pack(5)));
    assert.equal(new MsgWriter().array(20).view().length, 3);
  });

  it('a writer with cached views shows the current bytes after reset and after growing', () => {
    const w = new MsgWriter(8, true);
    w.array(2).uint(1).uint(2);
    const first = w.view();
    assert.deepEqual([...first], [0x92, 1, 2]);
    w.reset();
    w.array(2).uint(3).uint(4);
    assert.equal(w.view(), first, 'same length: the same view object');
    assert.deepEqual([...w.view()], [0x92, 3, 4]);
    w.reset();
    w.str('x'.repeat(40)); // grows the buffer
    w.reset();
    w.array(2).uint(5).uint(6);
    assert.deepEqual([...w.view()], [0x92, 5, 6]);
  });

  it('gives back a buffer that grew past the shrink threshold, at reset() and take(), and keeps a smaller one', () => {
    const big = { keys: Array.from({ length: 8000 }, (_, i) => ({ key: `pool/service-${i}`, limit_tps: i, mode: 'fair' })) };
    for (const end of ['reset', 'take'] as const) {
      const w = new MsgWriter(1024, true);
      w.array(2).uint(1).value(big);
      assert.ok(w.length > WRITER_SHRINK_ABOVE_BYTES && w.capacity > WRITER_SHRINK_ABOVE_BYTES);
      if (end === 'take') assert.deepEqual((decodeAll(w.take())[0] as unknown[])[1], big);
      else w.reset();
      assert.equal(w.capacity, 1024, `the buffer went back to its first size at ${end}()`);
      w.array(1).uint(7);
      assert.deepEqual(decodeAll(w.view()), [[7]], 'the writer still works');
      w.reset();
      w.str('x'.repeat(30_000));
      const grown = w.capacity;
      w.reset();
      assert.equal(w.capacity, grown, 'a buffer under the threshold stays');
    }
    // A value encoded right after a big one is still correct (msgpackr started over in a small buffer).
    const w = new MsgWriter();
    w.value(big).value({ a: 1 });
    assert.deepEqual(decodeAll(w.take()), [big, { a: 1 }]);
  });

  it('decodes a stream of values and writes several into one buffer', () => {
    const w = new MsgWriter();
    w.array(3).uint(1).uint(2).str('k');
    w.value({ v: 1, token: 't' });
    assert.deepEqual(decodeAll(w.view()), [[1, 2, 'k'], { v: 1, token: 't' }]);
    assert.deepEqual(unpack(Buffer.from(w.take()).subarray(0, 5)), [1, 2, 'k']);
  });

  it('tells incomplete from corrupt, keeping the values before', () => {
    const good = pack([3, 1]);
    const trunc = Buffer.concat([good, pack([1, 2, 'abc', 1, 0]).subarray(0, 4)]);
    assert.throws(() => decodeAll(trunc), (e: unknown) => e instanceof DecodeError && e.kind === 'incomplete' && e.values.length === 1);
    assert.throws(() => decodeAll(Buffer.concat([good, Buffer.from([0xd4, 0x05, 0x00])])),
      (e: unknown) => e instanceof DecodeError && e.kind === 'corrupt' && e.values.length === 1);
  });

  it('measures UTF-8 length without encoding', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a😀é€'.repeat(10)]) assert.equal(utf8Length(s), Buffer.byteLength(s));
  });
});
