// The controller refills only what it must each tick (pool buckets of awake
// pools, the keys touched, a 1/64 sweep: control/pool-rest.ts RefillSweep);
// every other bucket is refilled by the take that reads it. On random
// traffic of real acquires (an I/O thread's BucketTable: services, endpoints,
// borrowing from the pool, pools falling idle and waking), that grants
// exactly what a controller refilling every bucket every tick (`incremental:
// false`) lets the same acquires take, acquire by acquire.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../../src/config/load.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { Controller } from '../../../src/control/controller.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { C_GRANTED_INDEX, C_REQUESTED_INDEX, allocateShm } from '../../../src/shm/layout.ts';

const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];

function config(rng: Rng): TpsdConfig {
  const pools = Array.from({ length: 4 }, (_, p) => ({
    name: `p${p}`, capacity_tps: rng.int(300, 3000), ...(rng.next() < 0.5 ? { upstream: { window: 'token_bucket' } } : {}),
    services: Array.from({ length: rng.int(2, 8) }, (_, s) => ({
      name: `s${s}`, priority: PRIORITIES[rng.int(0, 3)], ...(rng.next() < 0.3 ? { min_tps: rng.int(10, 100) } : {}),
      max_tps: rng.int(100, 2000),
      ...(rng.next() < 0.3 ? { endpoints: [{ name: 'e0', max_tps: rng.int(10, 300) }] } : {}),
    })),
  }));
  return validateConfig({ tick_ms: 1000, policy: { mode: 'fallback', model: null }, log: { level: 'silent' }, pools }, {});
}

test('lazy refills grant what refilling every bucket every tick grants, acquire by acquire (3 seeds)', async () => {
  for (const seed of [11, 12, 13]) {
    const rng = new Rng(seed);
    const cfg = config(rng);
    const keys = KeyIndex.fromConfig(cfg);
    const clock = new ManualClock();
    const worlds = [true, false].map((incremental) => {
      const views = allocateShm(keys.size, 2);
      BucketTable.initialize(views, keys, clock.nowMs());
      return { controller: new Controller(views, keys, cfg, clock, { inference: 'inline', incremental }), io: new BucketTable(views, clock, 1) };
    });
    const leaves = keys.specs.filter((s) => s.depth > 0 && s.tier === null);
    const poolOrdinal = new Map(keys.specs.filter((k) => k.depth === 0).map((k, i) => [k.index, i]));
    const busy = new Uint8Array(cfg.pools.length);
    let grants = 0, denials = 0;
    for (let tick = 0; tick < 300; tick++) {
      for (let p = 0; p < busy.length; p++) if (rng.next() < (busy[p] ? 0.08 : 0.03)) busy[p] ^= 1;
      const base = tick * 1000;
      for (const leaf of leaves) {
        if (!busy[poolOrdinal.get(leaf.pool)!] || rng.next() < 0.4) continue;
        const n = rng.int(1, 60);
        const at = rng.int(1, 998);
        clock.set(base + at);
        const outcome = worlds.map((w) => {
          let granted = 0;
          for (let i = 0; i < n; i++) if (w.io.acquire(leaf.index, 1000, leaf.priority, false, clock.nowMs()) === 0) granted++;
          w.io.countPair(leaf.index, C_REQUESTED_INDEX, n, C_GRANTED_INDEX, granted);
          w.io.flushAllowances(clock.nowMs());
          return granted;
        });
        assert.equal(outcome[0], outcome[1], `seed ${seed}, tick ${tick}, ${leaf.key}: granted ${outcome[0]} lazily, ${outcome[1]} refilled every tick`);
        grants += outcome[0];
        denials += n - outcome[0];
      }
      clock.set(base + 1000);
      for (const w of worlds) await w.controller.tick();
    }
    assert.ok(grants > 1000 && denials > 100, `seed ${seed}: ${grants} grants, ${denials} denials`);
  }
});
