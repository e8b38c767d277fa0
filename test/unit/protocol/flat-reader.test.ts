// The flat-array reader agrees with the codec's decoder (msgpackr) on every flat array it accepts,
// refuses (returns false on) every other shape and every cut-short value, and
// never reads past the bytes it was given.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { FLAT_MAX, FLAT_STR, FlatReader } from '../../../src/protocol/flat-reader.ts';

function elements(r: FlatReader, bytes: Uint8Array): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < r.length; i++) out.push(r.kinds[i] === FLAT_STR ? r.str(bytes, i) : r.nums[i]);
  return out;
}

/** Seeded xorshift, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

describe('FlatReader', () => {
  it('reads every uint width and string form the way msgpackr does', () => {
    const uints = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    const strings = ['', 'k', 'svc.endpoint', 'é', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(300), 'ü'.repeat(40000), '😀x'];
    const r = new FlatReader();
    for (const v of uints) {
      const bytes = new MsgWriter().array(2).uint(1).uint(v).take();
      assert.ok(r.read(bytes, 0));
      assert.deepEqual(elements(r, bytes), decodeAll(bytes)[0]);
      assert.equal(r.end, bytes.length);
    }
    for (const s of strings) {
      const bytes = new MsgWriter().array(3).uint(1).uint(9).str(s).take();
      assert.ok(r.read(bytes, 0), s.slice(0, 10));
      assert.deepEqual(elements(r, bytes), decodeAll(bytes)[0]);
    }
    // msgpackr's own encoder (str 8 headers for short strings, array 16 for > 15 elements is refused by size).
    const packr = new Packr({ useRecords: false });
    const own = packr.pack([1, 4294967295, 'payments.charge', 0]);
    assert.ok(r.read(own, 0));
    assert.deepEqual(elements(r, own), [1, 4294967295, 'payments.charge', 0]);
  });

  it('reads a stream of values one after another, from any offset', () => {
    const w = new MsgWriter();
    w.array(5).uint(1).uint(7).str('a').uint(1).uint(0);
    w.array(5).uint(2).uint(0).uint(99).uint(2).uint(1234);
    const bytes = w.take();
    const r = new FlatReader();
    assert.ok(r.read(bytes, 0));
    assert.deepEqual(elements(r, bytes), [1, 7, 'a', 1, 0]);
    assert.ok(r.read(bytes, r.end));
    assert.deepEqual(elements(r, bytes), [2, 0, 99, 2, 1234]);
    assert.equal(r.end, bytes.length);
    assert.equal(r.read(bytes, r.end), false);
  });

  it('refuses other shapes', () => {
    const packr = new Packr({ useRecords: false });
    const r = new FlatReader();
    for (const v of [
      { v: 1 }, [0, 1, { v: 1 }], [1, -1], [1, 1.5], [1, null], [1, true], [[1]], 5, 'str',
      new Array(FLAT_MAX + 1).fill(1), [1, 2 ** 53], [1, new Uint8Array(2)],
    ]) {
      assert.equal(r.read(packr.pack(v), 0), false, JSON.stringify(v));
    }
  });

  it('refuses every value cut short, and random bytes never throw or overrun', () => {
    const r = new FlatReader();
    const full = new MsgWriter().array(5).uint(1).uint(70000).str('key.with.a.longer.name.over.32.bytes').uint(2 ** 40).uint(300).take();
    for (let cut = 0; cut < full.length; cut++) assert.equal(r.read(full.subarray(0, cut), 0), false, `cut at ${cut}`);
    assert.ok(r.read(full, 0));
    const rand = rng(42);
    for (let trial = 0; trial < 20000; trial++) {
      const len = 1 + Math.floor(rand() * 24);
      const bytes = new Uint8Array(len);
      for (let i = 0; i < len; i++) bytes[i] = rand() < 0.5 ? Math.floor(rand() * 256) : [0x95, 0xa3, 0xcc, 0xcd, 0xce, 0xcf, 0xd9, 0x01][Math.floor(rand() * 8)];
      if (r.read(bytes, 0)) {
        assert.ok(r.end <= len);
        // Whatever it accepts, msgpackr reads the same way.
        assert.deepEqual(elements(r, bytes), decodeAll(bytes.subarray(0, r.end))[0]);
      }
    }
  });
});
