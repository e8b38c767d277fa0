// The decision rows of a tick carry only the services whose figures changed
// since the pool's previous row (src/daemon/decision-rows.ts), and what the
// telemetry database holds still gives an operator every service's figures:
// on seeded random traffic, with many services at rest, live limit changes
// and dropped ticks, the rows written by a real TelemetryStore and read back
// by readDecisions (what `tpsd decisions` prints), replayed from each pool's
// first row, give at every tick the figures of the controller's own record
// for every service; and where allocations rest (static), a tick carries far
// fewer services than the pools have.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { Controller } from '../../../src/control/controller.ts';
import { FULL_ROW_EVERY } from '../../../src/daemon/decision-rows.ts';
import { TickRecorder } from '../../../src/daemon/tick-recorder.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { C_GRANTED_INDEX, C_REQUESTED_INDEX, allocateShm } from '../../../src/shm/layout.ts';
import { openDatabase } from '../../../src/storage/db.ts';
import { readDecisions } from '../../../src/storage/queries.ts';
import { TelemetryStore, type TickBatch } from '../../../src/storage/telemetry-store.ts';
import type { TelemetryWriter } from '../../../src/storage/telemetry-writer.ts';
import { tempDir } from '../../fixtures/daemon.ts';

function config(mode: TpsdConfig['policy']['mode'], rng: Rng): TpsdConfig {
  const pools = Array.from({ length: 4 }, (_, p) => ({
    name: `p${p}`, capacity_tps: rng.int(500, 5000),
    services: Array.from({ length: rng.int(20, 60) }, (_, s) => ({
      name: `s${s}`, priority: ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'][rng.int(0, 3)], max_tps: rng.int(200, 3000),
      ...(rng.next() < 0.2 ? { min_tps: rng.int(5, 50) } : {}),
    })),
  }));
  return validateConfig({ tick_ms: 1000, policy: { mode, model: null }, log: { level: 'silent' }, pools }, {});
}

type Figures = Map<string, { before: number; proposed: number; after: number }>;

/** Every service's figures in the controller's record of pool k (what a row carrying every service would say). */
function recordFigures(c: Controller, k: number): Figures {
  const { obs, decision, alloc } = c.last[k];
  return new Map(obs.services.map((s, i) => [s.key, { before: s.limitTps, proposed: decision.raw[i], after: alloc[i] }]));
}

/** A controller over real shared memory on a ManualClock, and one I/O thread's table to take from. */
function controllerOf(cfg: TpsdConfig) {
  const keys = KeyIndex.fromConfig(cfg);
  const clock = new ManualClock();
  const views = allocateShm(keys.size, 2);
  BucketTable.initialize(views, keys, clock.nowMs());
  return { keys, clock, views, controller: new Controller(views, keys, cfg, clock, { inference: 'inline' }), io: new BucketTable(views, clock, 1) };
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const rounded = (f: Figures) => new Map([...f].map(([k, v]) => [k, { before: r3(v.before), proposed: r3(v.proposed), after: r3(v.after) }]));

for (const mode of ['fallback', 'static'] as const) {
  test(`${mode}: rows carry the services that changed; replayed from the database they give every service's figures (2 seeds)`, async () => {
    for (const seed of [11, 12]) {
      const rng = new Rng(seed);
      const cfg = config(mode, rng);
      const { keys, clock, views, controller, io } = controllerOf(cfg);
      const db = openDatabase(tempDir());
      const store = new TelemetryStore(db, keys);
      let drop = false;
      const writer = { write: (b: TickBatch) => { if (drop) return false; store.writeTick(b); return true; } } as unknown as TelemetryWriter;
      const recorder = new TickRecorder(controller, views, keys, cfg, writer);
      const services = keys.specs.filter((s) => s.depth === 1);
      const on = new Uint8Array(keys.size);
      const expected = new Map<string, Figures>(); // by `tick/pool`: the record's figures of each posted row
      let carried = 0, inPools = 0, limitChanges = 0, dropped = 0;
      for (let tick = 1; tick <= 300; tick++) {
        // A few services busy at a time, switching now and then; the rest at rest.
        for (const s of services) {
          if (rng.next() < (on[s.index] ? 0.1 : 0.02)) on[s.index] ^= 1;
          if (on[s.index]) io.countPair(s.index, C_REQUESTED_INDEX, rng.int(1, 300), C_GRANTED_INDEX, rng.int(0, 200));
        }
        if (rng.next() < 0.03) {
          const s = services[rng.int(0, services.length - 1)];
          controller.setLimits(s.index, { maxTps: rng.int(100, 3000), minTps: rng.int(0, 30) });
          limitChanges++;
        }
        drop = tick > 5 && rng.next() < 0.03;
        if (drop) dropped++;
        clock.advance(1000);
        recorder.beforeTick();
        await controller.tick();
        recorder.afterTick(tick * 1000);
        if (drop) continue;
        for (const k of controller.evaluated) {
          expected.set(`${tick}/${controller.pools[k].spec.key}`, rounded(recordFigures(controller, k)));
          inPools += controller.pools[k].services.length;
        }
      }
      // Replay: each pool's figures start from its first row (every service) and take each row's services over.
      const state = new Map<string, Figures>();
      let rows = 0;
      for (const d of readDecisions(db, 0, Number.MAX_SAFE_INTEGER, null, 0)) {
        const figures = state.get(d.pool) ?? new Map();
        for (const s of d.services) figures.set(s.key, { before: s.before, proposed: s.proposed, after: s.after });
        state.set(d.pool, figures);
        carried += d.services.length;
        rows++;
        const want = expected.get(`${d.tick}/${d.pool}`);
        assert.ok(want !== undefined, `seed ${seed}: a row for tick ${d.tick}, pool ${d.pool} that was not posted`);
        assert.deepEqual(figures, want, `seed ${seed}, tick ${d.tick}, pool ${d.pool}: replayed figures differ from the record`);
      }
      db.close();
      assert.equal(rows, expected.size, 'a row per posted pool evaluation');
      assert.ok(limitChanges > 3 && dropped > 3, `${limitChanges} limit changes, ${dropped} dropped ticks`);
      // fair spreads the headroom over every service, so its allocations move for all of them when demand moves.
      if (mode === 'static') assert.ok(carried < inPools / 3, `seed ${seed}: rows carried ${carried} services of ${inPools} in their pools`);
    }
  });
}

test('a busy pool\'s row carries every service again every FULL_ROW_EVERY rows, so retention never leaves services without figures', async () => {
  const cfg = validateConfig({ tick_ms: 1000, policy: { mode: 'static', model: null }, log: { level: 'silent' }, pools: [
    { name: 'p', capacity_tps: 1000, services: Array.from({ length: 8 }, (_, s) => ({ name: `s${s}`, priority: 'MEDIUM', max_tps: 500 })) },
  ] }, {});
  const { keys, clock, views, controller, io } = controllerOf(cfg);
  const carried: number[] = [];
  const writer = { write: (b: TickBatch) => { for (const d of b.decisions) carried.push(d.services); return true; } } as unknown as TelemetryWriter;
  const recorder = new TickRecorder(controller, views, keys, cfg, writer);
  const busy = keys.lookup('p/s3');
  for (let tick = 0; tick < FULL_ROW_EVERY + 100; tick++) {
    io.countPair(busy, C_REQUESTED_INDEX, 10, C_GRANTED_INDEX, 10);
    clock.advance(1000);
    recorder.beforeTick();
    await controller.tick();
    recorder.afterTick(tick * 1000);
  }
  const full = carried.flatMap((n, i) => (n === 8 ? [i] : []));
  assert.equal(carried.length, FULL_ROW_EVERY + 100, 'a row every tick');
  assert.equal(full[0], 0, 'the first row carries every service');
  assert.ok(full.length >= 2 && full.length <= 4, `rows carrying every service: ${full.join(', ')}`);
  assert.ok(full.every((i, k) => k === 0 || i - full[k - 1] <= FULL_ROW_EVERY), `at most FULL_ROW_EVERY rows apart: ${full.join(', ')}`);
  assert.ok(carried.filter((n) => n <= 1).length > FULL_ROW_EVERY * 0.9, 'the others carry the busy service at most');
});
