import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseScenario } from '../../src/sim/scenario.ts';
import { generateScenario } from '../../src/sim/scenario-gen.ts';
import { simulate } from '../../src/sim/simulator.ts';

const spike = parseScenario(JSON.parse(readFileSync(new URL('../fixtures/scenarios/spike.json', import.meta.url), 'utf8')));

test('the simulator is deterministic for a seed', async () => {
  const short = { ...spike, duration_s: 240 };
  for (const policy of ['fair', 'aimd', 'ppo'] as const) {
    const a = await simulate(short, { policy, seed: 11 });
    const b = await simulate(short, { policy, seed: 11 });
    assert.deepEqual(a, b, policy);
  }
  const c = await simulate(short, { policy: 'fair', seed: 12 });
  const d = await simulate(short, { policy: 'fair', seed: 11 });
  assert.notDeepEqual(c.metrics, d.metrics, 'another seed, other noise');
});

test('generated scenarios are reproducible and run with any pool size', async () => {
  // Seeds whose pools have 12, 27, 3 and 1 services.
  const sizes: number[] = [];
  for (const seed of [1, 2, 3, 4]) {
    const s = generateScenario(seed, { durationS: 30 });
    assert.deepEqual(generateScenario(seed, { durationS: 30 }), s, `seed ${seed}: the same scenario again`);
    assert.notDeepEqual(generateScenario(seed + 100, { durationS: 30 }), s, `seed ${seed}: another seed, another scenario`);
    sizes.push(s.services.length);
    const a = await simulate(s, { policy: 'ppo' });
    const b = await simulate(generateScenario(seed, { durationS: 30 }), { policy: 'ppo' });
    // Bit for bit: every metric (min_guarantee_met among them) and every tick's reward.
    assert.deepStrictEqual(b, a, `seed ${seed}: two runs of one generated scenario differ`);
    assert.equal(a.rewards.length, 30);
    assert.ok(a.rewards.every(Number.isFinite), `seed ${seed}: finite rewards`);
    // min_guarantee_met is a share of the n x 30 service-ticks (rounded to 4 digits).
    const met = a.metrics.min_guarantee_met * s.services.length * 30;
    assert.ok(Math.abs(met - Math.round(met)) <= 0.5e-4 * s.services.length * 30 && met <= s.services.length * 30 + 1e-9,
      `seed ${seed}: min_guarantee_met ${a.metrics.min_guarantee_met} is not k / ${s.services.length * 30}`);
    // With no min_tps nothing is owed, so every service-tick meets its guarantee.
    const unowed = await simulate({ ...s, services: s.services.map((v) => ({ ...v, min_tps: 0 })) }, { policy: 'ppo' });
    assert.equal(unowed.metrics.min_guarantee_met, 1, `seed ${seed}: nothing owed, all met`);
  }
  assert.deepEqual(sizes, [12, 27, 3, 1]);
});

test('a 600 s scenario simulates all five policies in a few seconds', async () => {
  const started = Date.now();
  for (const policy of ['static', 'proportional', 'fair', 'aimd', 'ppo'] as const) await simulate(spike, { policy });
  assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
});
