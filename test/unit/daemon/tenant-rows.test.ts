// The busiest tenants' telemetry rows (src/daemon/tenant-rows.ts) over real
// shared memory: tenants made in a TenantTable, counted by two threads'
// TenantCounters (shm/tenant-counters.ts), read by the main thread's
// TenantRows. Each tick writes exactly the top tenants of each service by
// tokens asked for, with their own granted, denied and would_deny; nothing
// for a tick without traffic; a count written after its TOUCHED byte was
// cleared shows the next tick; counts that wrap past 2^31 still give the
// right deltas. Seeded randomness.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { TOP_TENANTS_PER_SERVICE, TenantRows } from '../../../src/daemon/tenant-rows.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm, tenantSlotsFor } from '../../../src/shm/layout.ts';
import {
  TC_DENIED, TC_FIELDS, TC_GRANTED, TC_REQUESTED, TC_WOULD_DENY, TenantCounterReader, TenantCounters, allocateTenantCounters, tenantCounterViews,
} from '../../../src/shm/tenant-counters.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';
import { ROW, ROW_FIELDS } from '../../../src/storage/telemetry-store.ts';

const tenants = (max: number) => ({ tiers: [{ name: 'free', priority: 'LOW', tps: 10, burst: 10 }], max, idle_s: 60 });

function setup(threads = 2) {
  const config = validateConfig({
    log: { level: 'silent' },
    pools: [{ name: 'api', capacity_tps: 1000, services: [
      { name: 'a', priority: 'HIGH', max_tps: 1000, tenants: tenants(500) },
      { name: 'b', priority: 'LOW', max_tps: 1000, tenants: tenants(500) },
    ] }],
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, threads, tenantSlotsFor(1000));
  const table = new TenantTable(views);
  const cv = tenantCounterViews(allocateTenantCounters(views.layout.tenantSlots, threads), views.layout.tenantSlots, threads);
  const writers = Array.from({ length: threads }, (_, t) => new TenantCounters(cv, t));
  const reader = new TenantCounterReader(cv);
  // The controller's tick sweeps the counters before telemetry reads them.
  const tenantRows = new TenantRows(reader, table, keys);
  const rows = { collect: () => { reader.sweep(); return tenantRows.collect(); } };
  const make = (service: string, name: string): number => {
    const s = keys.find(`api/${service}`);
    const b = new TextEncoder().encode(name);
    const slot = table.create(s, b, 0, b.length, table.hash(s, b, 0, b.length), 500, keys.find(`api/${service}/~free`), 10_000, 10_000, 0);
    assert.ok(slot >= 0);
    return slot;
  };
  return { keys, table, cv, writers, rows, make };
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
}

function byKey(batch: ReturnType<TenantRows['collect']>, keys: KeyIndex): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let r = 0; r < batch.count; r++) {
    out.set(`${keys.specs[batch.services[r]].key}/${batch.names[r]}`, Array.from(batch.values.subarray(r * ROW_FIELDS, (r + 1) * ROW_FIELDS)));
  }
  return out;
}

describe('tenant rows (the busiest tenants each tick)', () => {
  it('writes exactly the top tenants of each service by tokens asked for, with their own figures', () => {
    const { keys, writers, rows, make } = setup();
    const random = rng(7);
    const demand = new Map<string, number>();
    // 150 tenants in a, 5 in b; distinct demands, split between the two threads.
    const names = [...Array.from({ length: 150 }, (_, i) => ['a', `t${i}`]), ...Array.from({ length: 5 }, (_, i) => ['b', `u${i}`])];
    const order = names.map((_, i) => i).sort(() => random() - 0.5);
    order.forEach((i, rank) => {
      const [service, name] = names[i];
      const slot = make(service, name);
      const want = 1 + rank * 3;
      demand.set(`api/${service}/${name}`, want);
      const first = Math.floor(want * random());
      writers[0].count(slot, TC_REQUESTED, first);
      writers[1].count(slot, TC_REQUESTED, want - first);
      writers[rank % 2].count(slot, TC_GRANTED, want - 1);
      writers[1 - (rank % 2)].count(slot, TC_DENIED, 1);
      if (rank % 3 === 0) writers[0].count(slot, TC_WOULD_DENY, 2);
    });
    const batch = rows.collect();
    const got = byKey(batch, keys);
    const top = (service: string) => [...demand].filter(([k]) => k.startsWith(`api/${service}/`)).sort((x, y) => y[1] - x[1]);
    const expected = [...top('a').slice(0, TOP_TENANTS_PER_SERVICE), ...top('b')];
    assert.equal(batch.count, TOP_TENANTS_PER_SERVICE + 5, 'the top of a, all of b');
    assert.deepEqual([...got.keys()].sort(), expected.map(([k]) => k).sort());
    for (const [k, want] of expected) {
      const v = got.get(k)!;
      assert.equal(v[ROW.REQUESTED], want, `${k} requested`);
      assert.equal(v[ROW.GRANTED], want - 1, `${k} granted`);
      assert.equal(v[ROW.DENIED], 1, `${k} denied`);
      assert.equal(v[ROW.LIMIT_TPS], 10, `${k}: its rate`);
    }
    assert.ok([...got.values()].some((v) => v[ROW.WOULD_DENY] === 2));
    assert.equal(rows.collect().count, 0, 'a tick without traffic writes no tenant row');
  });

  it('a count that lands after its TOUCHED byte was cleared is in the next tick; nothing is counted twice', () => {
    const { keys, cv, writers, rows, make } = setup(1);
    const slot = make('a', 'late');
    writers[0].count(slot, TC_REQUESTED, 3);
    assert.equal(byKey(rows.collect(), keys).get('api/a/late')?.[ROW.REQUESTED], 3);
    // The I/O thread set the byte before this tick's read and wrote the count after it: only the count is left.
    cv.counts[slot * TC_FIELDS + TC_REQUESTED] += 4;
    assert.equal(byKey(rows.collect(), keys).get('api/a/late')?.[ROW.REQUESTED], 4, 'read again the tick after it was touched');
    assert.equal(rows.collect().count, 0);
  });

  it('deltas survive counters that wrap past 2^31', () => {
    const { keys, writers, rows, make } = setup(2);
    const slot = make('b', 'wrap');
    writers[0].count(slot, TC_REQUESTED, 2 ** 31 - 10);
    rows.collect();
    writers[0].count(slot, TC_REQUESTED, 25);
    writers[1].count(slot, TC_REQUESTED, 5);
    assert.equal(byKey(rows.collect(), keys).get('api/b/wrap')?.[ROW.REQUESTED], 30);
  });
});
