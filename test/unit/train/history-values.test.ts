// A tenant service's tiers in a history replay (issue 16): the replay carries
// each tier with its value_per_request, the reward weighs the tiers' served
// requests by value, and the simulated controller splits the service among
// its tiers as the daemon's tier split does (control/tier-split.ts).
// Scenario files are untouched: tenant_services exists only in code.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Priority } from '../../../src/config/types.ts';
import { TierSplit } from '../../../src/control/tier-split.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { parseScenario } from '../../../src/sim/scenario.ts';
import { scenarioConfig, simulate, simServiceValues, type TieredScenario } from '../../../src/sim/simulator.ts';
import { familyScenario, replayScenario, type HistoryPool } from '../../../src/train/history-scenarios.ts';

const BUCKETS = 60;
const flat = (x: number): number[] => Array(BUCKETS).fill(x);

/** A pool of 200 tokens/s that answered no 429, all of it one tenant service whose two tiers each asked 120/s. */
function history(values: [number | null, number | null], priorities: [Priority, Priority] = ['HIGH', 'HIGH']): HistoryPool {
  return {
    pool: 'api', capacityTps: 200, sloMs: null, tickMs: 100, stepS: 1, grantedTps: flat(200), throttledTps: flat(0), latencyMs: flat(Number.NaN),
    services: [{ key: 'api/v1', priority: 'HIGH', minTps: 0, maxTps: 200, demandTps: flat(240), tiers: [
      { name: 'gold', priority: priorities[0], valuePerRequest: values[0], demandTps: flat(120) },
      { name: 'basic', priority: priorities[1], valuePerRequest: values[1], demandTps: flat(120) }] }],
  };
}

test('the replay of a tenant service is its tiers, with their values set in code beside the parsed scenario', () => {
  const s: TieredScenario = replayScenario(history([5, 1]));
  assert.deepEqual(s.services.map((x) => [x.name, x.priority, x.min_tps, x.max_tps]), [['api/v1/~gold', 'HIGH', 0, 200], ['api/v1/~basic', 'HIGH', 0, 200]]);
  assert.deepEqual(s.tenant_services, [{ name: 'v1', priority: 'HIGH', min_tps: 0, max_tps: 200,
    tiers: [{ member: 0, name: 'gold', value: 5 }, { member: 1, name: 'basic', value: 1 }] }]);
  assert.deepEqual(Array.from(simServiceValues(s) ?? []), [5, 1]);
  assert.equal(simServiceValues(replayScenario(history([null, null]))), null, 'no tier sets a value: the outcome gives none');
  // The external contract is unchanged: a file cannot say it (unknown field), and parsing drops it from an object.
  const raw = JSON.parse(JSON.stringify(s));
  assert.throws(() => parseScenario(raw, 'file'), /tenant_services/);
  delete raw.tenant_services;
  assert.equal((parseScenario(raw, 'file') as TieredScenario).tenant_services, undefined);
});

test('tiers of different classes: the same split with or without values, and the reward counts each tier by its value', async () => {
  const classes: [Priority, Priority] = ['HIGH', 'LOW'];
  const plain = await simulate(replayScenario(history([null, null], classes)), { policy: 'fair' });
  const valued = await simulate(replayScenario(history([5, 1], classes)), { policy: 'fair' });
  const swapped = await simulate(replayScenario(history([1, 5], classes)), { policy: 'fair' });
  assert.deepEqual(valued.grantedByService, plain.grantedByService, 'priority orders tiers of different classes, values do not');
  assert.deepEqual(swapped.grantedByService, plain.grantedByService);
  const [gold, basic] = plain.grantedByService;
  assert.ok(gold > basic * 1.2, `the HIGH tier is served first (${gold} vs ${basic})`);
  assert.notEqual(valued.metrics.reward, plain.metrics.reward, 'the values change the score');
  assert.ok(valued.metrics.reward > swapped.metrics.reward,
    `the more served tier worth 5 scores more than worth 1 (${valued.metrics.reward} vs ${swapped.metrics.reward})`);
});

test('tiers of one class: values change both the split (the valuable tier first) and the score', async () => {
  const plain = await simulate(replayScenario(history([null, null])), { policy: 'fair' });
  const valued = await simulate(replayScenario(history([5, 1])), { policy: 'fair' });
  assert.notEqual(valued.metrics.reward, plain.metrics.reward);
  const [gold, basic] = valued.grantedByService;
  assert.ok(gold > basic * 1.3, `gold (value 5) before basic (value 1): ${gold} vs ${basic}`);
  const [a, b] = plain.grantedByService;
  assert.ok(Math.abs(a - b) < 0.05 * (a + b), `without values the class is shared evenly: ${a} vs ${b}`);
});

test("the simulator's split of a replayed service among its tiers is the daemon's tier split on the same inputs", async () => {
  for (const values of [[5, 1], [null, null], [1, 3]] as [number | null, number | null][]) {
    const s = replayScenario(history(values));
    const group = new TierSplit(KeyIndex.fromConfig(scenarioConfig(s, 'fallback'))).groups[0];
    assert.deepEqual(group.tiers.map((t) => t.key), ['sim/v1/~gold', 'sim/v1/~basic']);
    // The service reaches the whole pool (its max_tps, nobody else asks); each tier asks 120/s.
    const daemon = Array.from(TierSplit.divide(group, 200, [120, 120], [0, 0]));
    const r = await simulate(s, { policy: 'fair' });
    const simTps = r.grantedByService.map((g) => g / s.duration_s);
    for (let i = 0; i < 2; i++) {
      assert.ok(Math.abs(simTps[i] - daemon[i]) <= 6, `values ${values}: tier ${i} granted ${simTps[i].toFixed(1)}/s, the daemon's split ${daemon[i]}`);
    }
  }
});

test('train --from-history: family members carry the tiers and values, and keep them through a worker hand-off', async () => {
  const s: TieredScenario = familyScenario(history([5, 1]), 11, 30);
  assert.deepEqual(s.tenant_services?.[0].tiers.map((t) => t.value), [5, 1]);
  const copy = structuredClone(s); // what Piscina does to an episode's scenario on its way to a rollout worker
  const [a, b] = await Promise.all([simulate(s, { policy: 'fair' }), simulate(copy, { policy: 'fair' })]);
  assert.equal(b.metrics.reward, a.metrics.reward);
  const plain = await simulate(familyScenario(history([null, null]), 11, 30), { policy: 'fair' });
  assert.notEqual(a.metrics.reward, plain.metrics.reward);
});
