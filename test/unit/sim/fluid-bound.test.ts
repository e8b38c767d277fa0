// The fluid bound (src/sim/fluid-bound.ts) on traffic whose best allocation
// can be worked out by hand, and against every policy on the example
// scenarios.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FluidBound } from '../../../src/sim/fluid-bound.ts';
import { CLASS_WEIGHTS, THROUGHPUT_WEIGHT } from '../../../src/sim/reward.ts';

const svc = (priority: number, o: { min?: number; max?: number; patience?: number } = {}) =>
  ({ priority, minTps: o.min ?? 0, maxTps: o.max ?? 1e9, patienceS: o.patience ?? 5 });

test('traffic under the limit is all served, the same tick', () => {
  const f = new FluidBound([svc(0), svc(3)], 1000, 1);
  for (let t = 0; t < 10; t++) f.tick([300, 200], 1000);
  const perTick = ((CLASS_WEIGHTS[0] + THROUGHPUT_WEIGHT) * 300 + (CLASS_WEIGHTS[3] + THROUGHPUT_WEIGHT) * 200) / 1000;
  assert.ok(Math.abs(f.total - 10 * perTick) < 1e-9, `${f.total}`);
});

test('over the limit: higher classes first; a lower class\'s min_tps before them; max_tps holds', () => {
  const f = new FluidBound([svc(0, { max: 500 }), svc(1), svc(3, { min: 100 })], 1000, 1);
  const r = f.tick([700, 700, 700], 1000);
  // LOW gets its guarantee (100), CRITICAL its max (500), HIGH the rest (400); queues grow by 200, 300, 600.
  const served = (CLASS_WEIGHTS[0] + THROUGHPUT_WEIGHT) * 500 + (CLASS_WEIGHTS[1] + THROUGHPUT_WEIGHT) * 400 + (CLASS_WEIGHTS[3] + THROUGHPUT_WEIGHT) * 100;
  const growth = 0.25 * (CLASS_WEIGHTS[0] * 200 + CLASS_WEIGHTS[1] * 300 + CLASS_WEIGHTS[3] * 600);
  assert.ok(Math.abs(r - (served - growth) / 1000) < 1e-9, `${r}`);
});

test('a backlog is served in later ticks with room, until its patience runs out', () => {
  const f = new FluidBound([svc(0, { patience: 2 })], 100, 1);
  f.tick([300], 100);
  const served: number[] = [];
  for (let t = 0; t < 4; t++) { const before = f.total; f.tick([0], 100); served.push(f.total - before); }
  // 200 wait: 100 served in each of the next two ticks, then nothing is left.
  assert.ok(served[0] > 0 && served[1] > 0 && served[2] === 0 && served[3] === 0, served.join(','));
});
