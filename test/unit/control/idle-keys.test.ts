// The controller's tick over the keys that moved (the default) against its
// full tick over every key (`incremental: false`): on the same random
// traffic, with pools falling idle long enough to sleep and waking again,
// both write the same rates, loans, bursts and STATS to shared memory every
// tick, and record the same proposal, guarantees, allocation and observation
// per pool (the incremental tick keeping last tick's where nothing moved,
// control/pool-decisions.ts), also when a
// live limit change lands on a service at rest in an awake pool.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { Controller } from '../../../src/control/controller.ts';
import { HINT_MEMORY_TICKS } from '../../../src/control/pool-rest.ts';
import { keptColumns } from '../../../src/control/service-columns.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import {
  C_DENIED_INDEX, C_GRANTED_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX, C_RELEASED_OK_INDEX,
  C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX, allocateShm, type ShmViews,
} from '../../../src/shm/layout.ts';

const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];

function config(mode: TpsdConfig['policy']['mode'], rng: Rng): TpsdConfig {
  const pools = Array.from({ length: 6 }, (_, p) => ({
    name: `p${p}`, capacity_tps: rng.int(500, 5000),
    services: Array.from({ length: rng.int(2, 12) }, (_, s) => ({
      name: `s${s}`, priority: PRIORITIES[rng.int(0, 3)], ...(rng.next() < 0.3 ? { min_tps: rng.int(10, 100) } : {}),
      max_tps: rng.int(200, 3000),
      ...(rng.next() < 0.3 ? { endpoints: [{ name: 'e0', max_tps: rng.int(10, 500) }] } : {}),
    })),
  }));
  return validateConfig({ tick_ms: 1000, policy: { mode, model: null }, log: { level: 'silent' }, pools }, {});
}

interface World { controller: Controller; io: BucketTable; views: ShmViews }

function world(cfg: TpsdConfig, keys: KeyIndex, clock: ManualClock, incremental: boolean): World {
  const views = allocateShm(keys.size, 2);
  BucketTable.initialize(views, keys, clock.nowMs());
  const controller = new Controller(views, keys, cfg, clock, { inference: 'inline', incremental });
  return { controller, io: new BucketTable(views, clock, 1), views };
}

/** What both worlds must agree on after a tick: every bucket's rates, loans and bursts, and every key's STATS. */
function snapshot(w: World): number[] {
  const t = w.controller.table;
  const out: number[] = [];
  for (let b = 0; b < t.size; b++) out.push(t.rateTps(b), t.loanTps(b), t.burstTokens(b));
  return [...out, ...w.views.stats];
}

async function compare(mode: TpsdConfig['policy']['mode'], seed: number)
  : Promise<{ evaluatedA: number; evaluatedB: number; reused: { proposals: number; guarantees: number; allocations: number } }> {
  const rng = new Rng(seed);
  const cfg = config(mode, rng);
  const keys = KeyIndex.fromConfig(cfg);
  const clock = new ManualClock();
  const a = world(cfg, keys, clock, true);
  const b = world(cfg, keys, clock, false);
  const leaves = keys.specs.filter((s) => s.depth > 0).map((s) => s.index);
  const services = keys.specs.filter((s) => s.depth === 1).map((s) => s.index);
  // Each pool is busy for a stretch (its leaves switching on and off), then idle for a longer one: it sleeps and wakes.
  const on = new Uint8Array(keys.size);
  const busy = new Uint8Array(keys.size);
  let evaluatedA = 0, evaluatedB = 0;
  for (let tick = 0; tick < 800; tick++) {
    for (const p of b.controller.pools) if (rng.next() < (busy[p.ordinal] ? 0.03 : 0.006)) busy[p.ordinal] ^= 1;
    for (const leaf of leaves) {
      if (rng.next() < (on[leaf] ? 0.2 : 0.3)) on[leaf] ^= 1;
      if (!on[leaf] || !busy[b.controller.pools.findIndex((p) => p.buckets.includes(leaf))]) {
        // Its waiters leave (served or expired) once it goes quiet.
        for (const w of [a, b]) if (w.io.queue(leaf) > 0) w.io.addQueue(leaf, -w.io.queue(leaf));
        continue;
      }
      const requested = rng.int(1, 400);
      const granted = rng.int(0, requested);
      const throttled = rng.next() < 0.05 ? rng.int(0, granted) : 0;
      const queue = rng.int(-1, 1);
      for (const w of [a, b]) {
        w.io.countPair(leaf, C_REQUESTED_INDEX, requested, C_GRANTED_INDEX, granted);
        w.io.countPair(leaf, C_DENIED_INDEX, requested - granted, C_RELEASED_OK_INDEX, granted - throttled);
        if (throttled > 0) w.io.count(leaf, C_RELEASED_THROTTLED_INDEX, throttled);
        w.io.countPair(leaf, C_LATENCY_SUM_US_INDEX, granted * 900, C_LATENCY_COUNT_INDEX, granted);
        if (queue !== 0 && w.io.queue(leaf) + queue >= 0) w.io.addQueue(leaf, queue);
      }
    }
    // Now and then a live limit change (tpsd limits set) on a random service, busy or at rest, in both worlds.
    if (rng.next() < 0.05) {
      const svc = services[rng.int(0, services.length - 1)];
      const limits = { minTps: rng.int(0, 100), maxTps: rng.int(200, 3000), priority: rng.int(0, 3) };
      for (const w of [a, b]) w.controller.setLimits(svc, limits);
    }
    clock.advance(1000);
    await a.controller.tick();
    await b.controller.tick();
    evaluatedA += a.controller.evaluated.length;
    evaluatedB += b.controller.evaluated.length;
    assert.deepEqual(snapshot(a), snapshot(b), `seed ${seed}, tick ${tick}: shared memory differs`);
    for (let k = 0; k < b.controller.pools.length; k++) {
      assert.deepEqual([...a.controller.last[k].alloc], [...b.controller.last[k].alloc], `seed ${seed}, tick ${tick}, pool ${k}: allocation differs`);
      // The proposal and the guarantees too, also where the incremental tick kept last tick's (pool-decisions.ts).
      assert.deepEqual([...a.controller.last[k].decision.raw], [...b.controller.last[k].decision.raw], `seed ${seed}, tick ${tick}, pool ${k}: proposal differs`);
      assert.deepEqual([...a.controller.last[k].guarantees], [...b.controller.last[k].guarantees], `seed ${seed}, tick ${tick}, pool ${k}: guarantees differ`);
    }
    // What a pool evaluated in both observed (forecasts included: PPO reads them), but the tick number.
    for (const k of a.controller.evaluated) {
      assert.deepEqual({ ...a.controller.last[k].obs, tick: 0 }, { ...b.controller.last[k].obs, tick: 0 }, `seed ${seed}, tick ${tick}, pool ${k}: observation differs`);
    }
  }
  return { evaluatedA, evaluatedB, reused: a.controller.decisions.reused };
}

for (const mode of ['fallback', 'static', 'ppo'] as const) {
  test(`${mode}: a tick over the touched keys allocates as a tick over every key, on random traffic (3 seeds)`, async () => {
    for (const seed of [1, 2, 3]) {
      const { evaluatedA, evaluatedB, reused } = await compare(mode, seed);
      assert.ok(evaluatedA < evaluatedB * 0.8, `idle pools slept: ${evaluatedA} pool evaluations of ${evaluatedB}`);
      // Awake pools kept last tick's results where nothing they read moved: guarantees always; static's proposal and allocation too.
      assert.ok(reused.guarantees > 50, `guarantees kept ${reused.guarantees} times`);
      if (mode === 'static') assert.ok(reused.proposals > 50 && reused.allocations > 50, `static kept ${JSON.stringify(reused)}`);
    }
  });
}

test('a pool never used sleeps at once; one request wakes it, and it sleeps again HINT_MEMORY_TICKS ticks after its last grant', async () => {
  const rng = new Rng(9);
  const cfg = config('fallback', rng);
  const keys = KeyIndex.fromConfig(cfg);
  const clock = new ManualClock();
  const w = world(cfg, keys, clock, true);
  const tick = async () => { clock.advance(1000); await w.controller.tick(); };
  for (let i = 0; i < 10; i++) await tick();
  assert.deepEqual(w.controller.evaluated, [], 'every pool sleeps');
  assert.equal(w.controller.touched.count, 0, 'no key visited');
  const columnsKept = (k: number): boolean => keptColumns(w.controller.last[k].obs.services) !== undefined;
  assert.ok(w.controller.pools.every((p) => !columnsKept(p.ordinal)), 'a sleeping pool keeps no columns');
  const leaf = keys.lookup('p3/s1');
  w.io.countPair(leaf, C_REQUESTED_INDEX, 5, C_GRANTED_INDEX, 5);
  await tick();
  assert.deepEqual(w.controller.evaluated, [3], 'the touched key\'s pool wakes, alone');
  assert.equal(w.controller.last[3].obs.services[1].demandTps, 5);
  await tick();
  assert.deepEqual(w.controller.evaluated, [3], 'and stays awake while its service is active');
  assert.ok(columnsKept(3), 'an awake pool keeps its columns');
  assert.equal(w.controller.last[3].obs.services[1].demandTps, 0, 'the key visited again reads its delta back to zero');
  let awake = 2;
  for (; awake < 500 && w.controller.evaluated.length > 0; awake++) await tick();
  assert.ok(awake > HINT_MEMORY_TICKS && awake < HINT_MEMORY_TICKS + 40, `asleep again after ${awake} ticks`);
  assert.ok(!columnsKept(3), 'and drops them when it sleeps again');
});
