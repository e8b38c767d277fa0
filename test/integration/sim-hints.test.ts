// Upstream hints in the simulator (SCENARIOS.md additions): on capacity-drop,
// flapping and periodic throttling whose upstream sends rate-limit headers
// (test/fixtures/scenarios/throttling; kept out of the trainer's evaluation set),
// no policy has a late violation (a 429 outside the first 2 ticks of the run
// or of an upstream drop): the example scenarios with hints and held-out ones
// from scenario-gen.ts (every upstream window). And the fluid bound is at
// least what any policy gets.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { POLICY_NAMES } from '../../src/control/policies/registry.ts';
import { PpoModel } from '../../src/ppo/model.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { generateThrottled, THROTTLE_KINDS } from '../../src/sim/scenario-gen.ts';
import { simulate } from '../../src/sim/simulator.ts';

const dirs = ['../fixtures/scenarios/', '../fixtures/scenarios/throttling/'].map((d) => fileURLToPath(new URL(d, import.meta.url)));
const model = PpoModel.load();
const fixtures = dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => parseScenario(JSON.parse(readFileSync(dir + f, 'utf8')), f)));

test('example scenarios with hints: no late violation for any policy; the fluid bound above every reward', async () => {
  const hinted = fixtures.filter((s) => s.upstream_hints === true);
  assert.ok(hinted.length >= 3);
  for (const s of fixtures) {
    for (const policy of POLICY_NAMES) {
      const m = (await simulate(s, { policy, model })).metrics;
      if (s.upstream_hints === true) assert.equal(m.violations_late, 0, `${s.name} ${policy}: ${JSON.stringify(m.violations_by_tick.filter((v) => v[2] === 1))}`);
      assert.ok(m.reward <= m.fluid_bound, `${s.name} ${policy}: reward ${m.reward} above the fluid bound ${m.fluid_bound}`);
    }
  }
});

test('held-out throttling with hints (drop, flapping, periodic; every window): no late violation', async () => {
  for (const kind of THROTTLE_KINDS) {
    for (let seed = 1; seed <= 4; seed++) {
      const s = generateThrottled(seed, kind, { hints: true, durationS: 240 });
      for (const policy of ['fair', 'ppo'] as const) {
        const m = (await simulate(s, { policy, model })).metrics;
        assert.equal(m.violations_late, 0, `${s.name} (${s.upstream_window}) ${policy}: ${JSON.stringify(m.violations_by_tick.filter((v) => v[2] === 1))}`);
        assert.ok(m.reward <= m.fluid_bound, `${s.name} ${policy}: reward above the fluid bound`);
      }
    }
  }
});

test('held-out generation is reproducible and leaves generateScenario (the trainer\'s) as it was', async () => {
  assert.deepEqual(generateThrottled(3, 'flapping'), generateThrottled(3, 'flapping'));
  const { generateScenario } = await import('../../src/sim/scenario-gen.ts');
  const plain = generateScenario(3, { durationS: 240 });
  const throttled = generateThrottled(3, 'periodic', { durationS: 240 });
  assert.deepEqual(throttled.services, plain.services);
  assert.notDeepEqual(throttled.upstream_tps, plain.upstream_tps);
});
