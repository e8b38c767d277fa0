// The key table in shared memory (src/shm/key-table.ts): a KeyIndex another
// thread makes from it (fromShared) answers every question as the one built
// from the config does (names, specs, lookups by string and by bytes, tiers
// found only by find()), views the same buffer rather than copying it, and
// the config threads are given (configForThreads) keeps all but the services.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { KeyIndex, configForThreads } from '../../../src/shm/key-index.ts';

const enc = new TextEncoder();

function config() {
  return validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' },
    pools: [
      { name: 'payments', capacity_tps: 1000, upstream: { window: 'token_bucket' }, services: [
        { name: 'charge', priority: 'CRITICAL', min_tps: 10, max_tps: 500, endpoints: [{ name: 'v1', max_tps: 50, concurrency: 3 }, { name: 'v2', max_tps: 60, enforce: false }] },
        { name: 'api', priority: 'MEDIUM', tenants: { tiers: [{ name: 'free', priority: 'LOW', tps: 2 }, { name: 'pro', priority: 'HIGH', tps: 20 }], default_tier: 'free', max: 100 } },
      ] },
      { name: 'batch.q-1', capacity_tps: 77, enforce: false, services: [{ name: 'x_y', priority: 'LOW', endpoints: [{ name: 'e:1', max_tps: 9 }] }] },
    ],
  }, {});
}

describe('KeyTable (shared key index)', () => {
  const main = KeyIndex.fromConfig(config());
  const other = KeyIndex.fromShared(structuredClone(main.shared()));

  it('answers as the index built from the config: specs, names, flags, tier and tenants sections', () => {
    assert.equal(other.size, main.size);
    assert.deepEqual(other.specs, main.specs);
    for (let b = 0; b < main.size; b++) {
      assert.deepEqual(other.spec(b), main.specs[b]);
      assert.equal(other.key(b), main.specs[b].key);
      assert.equal(other.enforce(b), main.specs[b].enforce);
      assert.equal(other.poolOf(b), main.specs[b].pool);
      assert.deepEqual(other.tierOf(b), main.specs[b].tier);
      assert.deepEqual(other.tenantsOf(b), main.specs[b].tenants);
    }
    assert.equal(other.hasTenants, true);
    assert.equal(main.specs.filter((s) => s.tier !== null).length, 2);
    assert.equal(main.specs.find((s) => s.key === 'payments/charge/v2')?.enforce, false);
  });

  it('finds every key by string and by bytes; tiers only by find(); nothing else', () => {
    for (const idx of [main, other]) {
      for (const s of main.specs) {
        const k = enc.encode(s.key);
        const buf = new Uint8Array(k.length + 5).fill(0x2f);
        buf.set(k, 2);
        const acquirable = s.tier === null ? s.index : -1;
        assert.equal(idx.find(s.key), s.index, s.key);
        assert.equal(idx.lookup(s.key), acquirable, s.key);
        assert.equal(idx.lookupBytes(buf, 2, 2 + k.length), acquirable, s.key);
      }
      for (const k of ['', 'payments/', 'payments/charge/v3', 'payments/api/~gold', 'batch.q-1/x', 'x'.repeat(5000)]) {
        assert.equal(idx.find(k), -1, k);
        assert.equal(idx.lookup(k), -1, k);
      }
    }
  });

  it('keeps multi-byte names whole (names given to the constructor unvalidated)', () => {
    const raw = config().pools.map((p, i) => (i === 1 ? { ...p, name: 'ünïcødé', services: p.services.map((s) => ({ ...s, name: '日本語😀' })) } : p));
    const built = new KeyIndex(raw);
    const viewed = KeyIndex.fromShared(built.shared());
    for (const key of ['ünïcødé', 'ünïcødé/日本語😀', 'ünïcødé/日本語😀/e:1']) {
      const b = built.find(key);
      assert.ok(b > 0, key);
      assert.equal(viewed.key(b), key);
      assert.equal(viewed.lookup(key), b);
      const bytes = enc.encode(key);
      assert.equal(viewed.lookupBytes(bytes, 0, bytes.length), b);
    }
  });

  it('views the same shared buffer: nothing per key is copied', () => {
    const shared = main.shared();
    assert.equal(KeyIndex.fromShared(shared).table.sab, main.table.sab);
    assert.ok(shared.sections.tiers.length === 2 && shared.sections.tenants.length === 1, 'only the tier and tenants sections travel');
  });

  it('configForThreads keeps every field but the pools\' services', () => {
    const c = config();
    const t = configForThreads(c);
    assert.deepEqual(t.pools.map((p) => p.services), [[], []]);
    assert.deepEqual(t.pools.map(({ services: _, ...p }) => p), c.pools.map(({ services: _, ...p }) => p));
    assert.deepEqual({ ...t, pools: null }, { ...c, pools: null });
  });
});
