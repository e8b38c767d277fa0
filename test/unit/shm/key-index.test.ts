// KeyIndex.lookupBytes finds a key from its UTF-8 bytes exactly as lookup()
// finds it from the string: every configured key, none of the others.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PoolConfig, ServiceConfig } from '../../../src/config/types.ts';
import { KeyIndex, hashBytes } from '../../../src/shm/key-index.ts';

const enc = new TextEncoder();

function service(name: string, endpoints: string[] = []): ServiceConfig {
  return {
    name, priority: 'MEDIUM', min_tps: 0, max_tps: 100, burst: 10, concurrency: 0,
    endpoints: endpoints.map((e) => ({ name: e, max_tps: 100, burst: 10, concurrency: 0 })),
  };
}

function pools(...p: [string, ServiceConfig[]][]): PoolConfig[] {
  return p.map(([name, services]) => ({
    name, capacity_tps: 1000, burst: 50, upstream: { window: 'sliding_1s', slo_ms: null, timeout_ms: null }, services,
  }));
}

/** Looks `key` up from its bytes placed inside a bigger buffer (the way a message holds it). */
function byBytes(idx: KeyIndex, key: string): number {
  const k = enc.encode(key);
  const buf = new Uint8Array(k.length + 7).fill(0x61);
  buf.set(k, 3);
  return idx.lookupBytes(buf, 3, 3 + k.length);
}

describe('KeyIndex.lookupBytes', () => {
  const idx = new KeyIndex(pools(
    ['payments', [service('charge', ['v1', 'v2']), service('refund')]],
    ['ünïcødé', [service('日本語', ['😀'])]],
    ['p', [service('s7pwu'), service('se5fa')]],
  ));

  it('finds every configured key, ASCII and multi-byte, at the index lookup() gives', () => {
    assert.ok(idx.size >= 11);
    for (const spec of idx.specs) {
      assert.equal(idx.lookup(spec.key), spec.index);
      assert.equal(byBytes(idx, spec.key), spec.index, spec.key);
    }
    assert.equal(byBytes(idx, 'ünïcødé/日本語/😀'), idx.lookup('ünïcødé/日本語/😀'));
  });

  it('refuses unknown keys, prefixes and extensions of known keys, and the empty key', () => {
    for (const k of ['', 'payment', 'payments/', 'payments/charg', 'payments/charge/', 'payments/charge/v3',
      'payments/charge/v1x', 'Payments', 'ünïcødé/日本', 'ünïcødé/日本語/😀😀', 'p/s', 'x'.repeat(300)]) {
      assert.equal(byBytes(idx, k), -1, k);
      assert.equal(idx.lookup(k), -1, k);
    }
    // A multi-byte key cut inside a character.
    const k = enc.encode('ünïcødé');
    assert.equal(idx.lookupBytes(k, 0, k.length - 1), -1);
  });

  it('tells apart keys whose hashes collide', () => {
    // Two keys with the same full 32-bit hash: found by comparing the bytes.
    assert.equal(hashBytes(enc.encode('p/s7pwu'), 0, 7), hashBytes(enc.encode('p/se5fa'), 0, 7));
    assert.notEqual(byBytes(idx, 'p/s7pwu'), byBytes(idx, 'p/se5fa'));
    assert.equal(byBytes(idx, 'p/s7pwu'), idx.lookup('p/s7pwu'));
    assert.equal(byBytes(idx, 'p/se5fa'), idx.lookup('p/se5fa'));
    // Many keys in a table at most half full: probe chains cross each other.
    const many = new KeyIndex(pools(['pool', Array.from({ length: 2000 }, (_, i) => service(`s${i}`, i % 7 === 0 ? ['e'] : []))]));
    for (const spec of many.specs) assert.equal(byBytes(many, spec.key), spec.index);
    for (let i = 2000; i < 4000; i++) assert.equal(byBytes(many, `pool/s${i}`), -1);
  });
});
