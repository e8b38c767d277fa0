// The baseline policy's periodicity detector: a throttling that recurs every
// P ticks is found after it has repeated twice, and the capacity is capped at
// the last cycle's accepted level when the next one is due; nothing is capped
// without a period.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BaselinePolicy } from '../../../src/control/policies/baseline.ts';
import { createPolicy } from '../../../src/control/policies/registry.ts';
import type { PoolObservation } from '../../../src/ppo/observation.ts';

function obs(tick: number, effectiveTps: number, grantedTps: number, throttledTps: number): PoolObservation {
  return { bucket: 0, key: 'p', tick, capacityTps: 1000, effectiveTps, totalDemandTps: 2000, throttledTps, grantedTps,
    stepCap: 1.8, stepFloorTps: 50, services: [] };
}

/** A pool pressing on 1000 tps against an upstream that accepts `limit(t)`; discovery's E is that of the last tick's 429s (as with hints). */
function run(p: BaselinePolicy, ticks: number, limit: (t: number) => number): { t: number; cap: number; throttled: number }[] {
  const out = [];
  let cap = 1000;
  for (let t = 0; t < ticks; t++) {
    const granted = cap;
    const throttled = Math.max(0, granted - limit(t));
    const discovered = throttled > 0 ? limit(t) : Math.min(1000, limit(t));
    cap = p.capacityTps(obs(t, discovered, granted, throttled));
    out.push({ t, cap, throttled });
  }
  return out;
}

test('a throttling every 50 ticks is anticipated from its third cycle on', () => {
  const p = new BaselinePolicy();
  const limit = (t: number) => (t % 50 >= 20 && t % 50 < 30 ? 600 : 1000);
  const ticks = run(p, 300, limit);
  assert.equal(p.periods.get(0), 50);
  const onsets = ticks.filter((x) => x.t % 50 === 20 && x.throttled > 0).map((x) => x.t);
  assert.deepEqual(onsets, [20, 70, 120], 'the first cycles cost their onset; later ones are capped before it');
  assert.ok(ticks[169].cap <= 600, `capped for tick 170: ${ticks[169].cap}`);
});

test('no period, no cap: irregular throttling is left to discovery', () => {
  const p = new BaselinePolicy();
  const at = new Set([13, 77, 102, 180, 233]);
  const ticks = run(p, 300, (t) => (at.has(t) ? 500 : 1000));
  assert.ok(ticks.every((x) => x.cap >= 500), 'nothing capped below what discovery had');
  assert.ok(ticks.filter((x) => !at.has(x.t)).every((x) => x.cap === 1000), 'outside the throttled ticks, capacity is discovery\'s');
  assert.equal(p.periods.get(0) ?? 0, 0);
});

test('registered: `baseline` builds it, with its capacity hook', () => {
  const p = createPolicy('baseline');
  assert.equal(p.name, 'baseline');
  assert.equal(typeof p.capacityTps, 'function');
});
