// What the tick's telemetry (src/daemon/tick-recorder.ts) relies on to look
// only at the pools whose allocation the tick wrote (Controller.wrote) for
// limits that moved: in every other pool, evaluated or asleep, no service's
// or endpoint's rate moved during the tick, on random traffic with live limit
// changes; and a row is written for every key whose rate moved, with the
// limit in force before.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';
import { Controller } from '../../../src/control/controller.ts';
import { TickRecorder } from '../../../src/daemon/tick-recorder.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { C_GRANTED_INDEX, C_REQUESTED_INDEX, allocateShm } from '../../../src/shm/layout.ts';
import { ROW_FIELDS, type TickBatch } from '../../../src/storage/telemetry-store.ts';
import type { TelemetryWriter } from '../../../src/storage/telemetry-writer.ts';

function config(rng: Rng) {
  const pools = Array.from({ length: 5 }, (_, p) => ({
    name: `p${p}`, capacity_tps: rng.int(500, 5000),
    services: Array.from({ length: rng.int(2, 9) }, (_, s) => ({
      name: `s${s}`, priority: ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'][rng.int(0, 3)], max_tps: rng.int(200, 3000),
      ...(rng.next() < 0.3 ? { endpoints: [{ name: 'e0', max_tps: rng.int(10, 500) }] } : {}),
    })),
  }));
  return validateConfig({ tick_ms: 1000, policy: { mode: 'fallback', model: null }, log: { level: 'silent' }, pools }, {});
}

function world(cfg: ReturnType<typeof config>, keys: KeyIndex, clock: ManualClock, incremental: boolean) {
  const views = allocateShm(keys.size, 2);
  BucketTable.initialize(views, keys, clock.nowMs());
  const controller = new Controller(views, keys, cfg, clock, { inference: 'inline', incremental });
  const rows: string[][] = [];
  const writer = { write: (b: TickBatch) => {
    rows.push(Array.from({ length: b.count }, (_, r) => `${b.buckets[r]}: ${[...b.values.subarray(r * ROW_FIELDS, (r + 1) * ROW_FIELDS)].join(' ')}`).sort());
    return true;
  } } as unknown as TelemetryWriter;
  return { controller, io: new BucketTable(views, clock, 1), recorder: new TickRecorder(controller, views, keys, cfg, writer), rows };
}

test('only the pools the tick wrote have rates that moved; each moved key gets its row (3 seeds)', async () => {
  for (const seed of [4, 5, 6]) {
    const rng = new Rng(seed);
    const cfg = config(rng);
    const keys = KeyIndex.fromConfig(cfg);
    const clock = new ManualClock();
    const worlds = [world(cfg, keys, clock, true)];
    const w0 = worlds[0];
    let written = 0, skipped = 0;
    const services = keys.specs.filter((s) => s.depth === 1);
    const busy = new Uint8Array(cfg.pools.length);
    const poolOrdinal = new Map(keys.specs.filter((k) => k.depth === 0).map((k, i) => [k.index, i]));
    let limitChanges = 0;
    let prevMoved: number[] = [];
    for (let tick = 0; tick < 400; tick++) {
      for (let p = 0; p < busy.length; p++) if (rng.next() < (busy[p] ? 0.05 : 0.01)) busy[p] ^= 1;
      for (const s of services) {
        if (!busy[poolOrdinal.get(s.pool)!] || rng.next() < 0.5) continue;
        const requested = rng.int(1, 300);
        const granted = rng.int(0, requested);
        for (const w of worlds) w.io.countPair(s.index, C_REQUESTED_INDEX, requested, C_GRANTED_INDEX, granted);
      }
      if (rng.next() < 0.05) {
        // A live change (`tpsd limits set`) on a service of a pool that may be asleep or awake.
        const s = services[rng.int(0, services.length - 1)];
        const maxTps = rng.int(100, 3000);
        for (const w of worlds) w.controller.setLimits(s.index, { maxTps });
        limitChanges++;
      }
      clock.advance(1000);
      const before = keys.specs.map((k) => w0.controller.table.rateTps(k.index));
      w0.recorder.beforeTick();
      await w0.controller.tick();
      w0.recorder.afterTick(tick * 1000);
      const wrote = new Set(w0.controller.wrote);
      const rowKeys = new Set(w0.rows[tick].map((r) => Number(r.split(':')[0])));
      for (const pool of w0.controller.pools) {
        const moved = [...pool.buckets].filter((b) => b !== pool.spec.index && w0.controller.table.rateTps(b) !== before[b]);
        if (wrote.has(pool.ordinal)) { written++; continue; }
        skipped++;
        assert.deepEqual(moved.map((b) => keys.key(b)), [], `seed ${seed}, tick ${tick}: rates moved in pool ${pool.spec.key}, not written`);
      }
      // A rate that moved in the tick before this one is the limit in force during this one: its row is written now.
      if (tick > 0) for (const b of prevMoved) assert.ok(rowKeys.has(b), `seed ${seed}, tick ${tick}: no row for ${keys.key(b)}, whose limit moved`);
      prevMoved = keys.specs.filter((k) => k.depth > 0 && k.tier === null && w0.controller.table.rateTps(k.index) !== before[k.index]).map((k) => k.index);
    }
    assert.ok(limitChanges > 5, `${limitChanges} live limit changes`);
    assert.ok(written > 50 && skipped > 50, `pools written ${written} times, left ${skipped} times`);
  }
});
