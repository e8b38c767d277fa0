// The simulator's oracle capacity policy (src/sim/oracle-policy.ts): baseline's
// split under the upstream's true limit, told each tick. It is the reference a
// learned capacity policy is measured against, so it must be at least as good
// as baseline where the limit moves, follow the limit both ways (above
// discovery's capacity too), and stay out of the daemon's policy registry.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isPolicyName } from '../../../src/control/policies/registry.ts';
import { PolicyRunner } from '../../../src/control/policy-runner.ts';
import { BaselinePolicy } from '../../../src/control/policies/baseline.ts';
import type { PoolObservation } from '../../../src/ppo/observation.ts';
import { OraclePolicy } from '../../../src/sim/oracle-policy.ts';
import { parseScenario, type Scenario } from '../../../src/sim/scenario.ts';
import { simulate } from '../../../src/sim/simulator.ts';

const load = (name: string): Scenario => {
  const file = new URL(`../../fixtures/scenarios/${name}.json`, import.meta.url);
  return parseScenario(JSON.parse(readFileSync(file, 'utf8')), name);
};

test('the oracle is at least baseline on the throttling scenarios, under either reward', async () => {
  for (const name of ['throttling/periodic-throttle-hints', 'throttling/flapping-hints']) {
    const s = load(name);
    const baseline = await simulate(s, { policy: 'baseline' });
    const oracle = await simulate(s, { policy: 'oracle' });
    for (const k of ['default', 'paid'] as const) {
      assert.ok(oracle.rewardTotals[k] >= baseline.rewardTotals[k], `${name} ${k}: oracle ${oracle.rewardTotals[k]} < baseline ${baseline.rewardTotals[k]}`);
    }
    assert.ok(oracle.metrics.violations < baseline.metrics.violations, `${name}: 429s ${oracle.metrics.violations} vs ${baseline.metrics.violations}`);
    assert.ok(oracle.metrics.reward <= oracle.metrics.fluid_bound, 'the fluid bound stays above the oracle');
  }
});

test('told the limit, a flapping upstream is used in full without a 429', async () => {
  const m = (await simulate(load('throttling/flapping-hints'), { policy: 'oracle' })).metrics;
  assert.equal(m.violations, 0);
  assert.ok(m.utilization > 0.999, `${m.utilization}`);
});

test('the oracle raises the capacity above discovery\'s (up to capacity_tps); a registered policy cannot', () => {
  const obs = { bucket: 0, key: 'p', tick: 1, capacityTps: 1000, effectiveTps: 600, totalDemandTps: 2000, throttledTps: 0, grantedTps: 600,
    stepCap: 1.8, stepFloorTps: 50, services: [] } satisfies PoolObservation;
  let limit = 900;
  const runner = new PolicyRunner('fallback', null, 10, null, new OraclePolicy(() => limit));
  assert.equal(runner.capacityTps(obs), 900);
  limit = 5000;
  assert.equal(runner.capacityTps(obs), 1000, 'never above capacity_tps');
  limit = 300;
  assert.equal(runner.capacityTps(obs), 300);
  const raising = Object.assign(new BaselinePolicy(), { capacityTps: () => 900 });
  assert.equal(new PolicyRunner('fallback', null, 10, null, raising).capacityTps(obs), 600, 'other policies only lower it');
  assert.equal(isPolicyName('oracle'), false, 'not a policy a daemon can be configured with');
});
