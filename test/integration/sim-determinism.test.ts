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
  assert.deepEqual(generateScenario(5), generateScenario(5));
  for (const seed of [1, 2, 3]) {
    const s = { ...generateScenario(seed, { durationS: 30 }) };
    const r = await simulate(s, { policy: 'ppo' });
    assert.ok(r.metrics.min_guarantee_met >= 0 && r.rewards.length === 30);
  }
});

test('a 600 s scenario simulates all five policies in a few seconds', async () => {
  const started = Date.now();
  for (const policy of ['static', 'proportional', 'fair', 'aimd', 'ppo'] as const) await simulate(spike, { policy });
  assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
});
