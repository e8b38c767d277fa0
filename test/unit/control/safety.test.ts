import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applySafety, DEFAULT_SAFETY, stepFloorTps, validateAllocation } from '../../../src/control/safety.ts';
import { guarantees } from '../../../src/control/water-fill.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { randomPool } from './helpers.ts';

function randomOutput(rng: Rng, n: number, eff: number): number[] {
  const kind = rng.int(0, 3);
  return Array.from({ length: n }, () => {
    switch (kind) {
      case 0: return rng.uniform(0, eff * 3);
      case 1: return rng.uniform(0, 1) < 0.5 ? 0 : 1e9;
      case 2: return Math.exp(rng.normal() * 5);
      default: return rng.uniform(0, eff / n);
    }
  });
}

test('safety invariants hold for random policy outputs (property test)', () => {
  const rng = new Rng(42);
  for (let trial = 0; trial < 3000; trial++) {
    const obs = randomPool(rng);
    const n = obs.services.length;
    const raw = randomOutput(rng, n, obs.effectiveTps);
    const prev = obs.services.map((s) => s.limitTps);
    const out = applySafety(obs, raw, prev, DEFAULT_SAFETY);
    const g = guarantees(obs);
    const floor = stepFloorTps(DEFAULT_SAFETY, obs.effectiveTps, n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const s = obs.services[i];
      assert.ok(Number.isFinite(out[i]) && out[i] >= 0, `finite, non-negative (trial ${trial})`);
      assert.ok(out[i] >= g[i] - 1e-6, `guarantee met: ${out[i]} < ${g[i]} (trial ${trial})`);
      assert.ok(out[i] <= Math.max(s.maxTps, g[i]) + 1e-6, `max_tps held (trial ${trial})`);
      assert.ok(out[i] <= Math.max(prev[i] * DEFAULT_SAFETY.stepCap, floor, g[i]) + 1e-6, `step cap held (trial ${trial})`);
      sum += out[i];
    }
    assert.ok(sum <= obs.effectiveTps + 1e-6, `sum ${sum} within effective capacity ${obs.effectiveTps} (trial ${trial})`);
  }
});

test('with no effective capacity nothing is guaranteed and nothing allocated', () => {
  const obs = { ...randomPool(new Rng(5)), effectiveTps: 0 };
  assert.ok(guarantees(obs).every((v) => v === 0));
  const out = applySafety(obs, obs.services.map(() => 100), obs.services.map(() => 100));
  assert.ok(out.every((v) => v === 0));
});

test('unusable outputs are named', () => {
  assert.equal(validateAllocation([1, 2], 2), null);
  assert.equal(validateAllocation([1, NaN], 2), 'NaN in allocation');
  assert.equal(validateAllocation([1, Infinity], 2), 'Infinity in allocation');
  assert.equal(validateAllocation([1, -1], 2), 'negative allocation');
  assert.equal(validateAllocation([1], 2), 'length 1, expected 2');
  assert.equal(validateAllocation(undefined, 2), 'not an array');
});
