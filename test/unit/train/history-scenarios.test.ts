import assert from 'node:assert/strict';
import { test } from 'node:test';
import { familyScenario, replayScenario, replayWindows, upstreamEstimate, type HistoryPool } from '../../../src/train/history-scenarios.ts';
import { demandAt, upstreamAt } from '../../../src/sim/scenario.ts';
import { simulate } from '../../../src/sim/simulator.ts';

const history: HistoryPool = {
  pool: 'api', capacityTps: 1000, sloMs: 200, tickMs: 100, stepS: 10,
  grantedTps: [500, 800, 900, 600], throttledTps: [0, 0, 150, 0], latencyMs: [40, Number.NaN, 60, 50],
  services: [
    { key: 'api/crit', priority: 'CRITICAL', minTps: 100, maxTps: 1000, demandTps: [200, 300, 300, 250] },
    { key: 'api/low', priority: 'LOW', minTps: 0, maxTps: 1000, demandTps: [300, 600, 900, 350] },
  ],
};

test('the replay keeps the recorded demand, and the upstream limit is what got through where 429s were seen', () => {
  assert.deepEqual(upstreamEstimate(history), [1000, 1000, 750, 1000]);
  const s = replayScenario(history);
  assert.equal(s.name, 'replay-api');
  assert.equal(s.duration_s, 40);
  assert.equal(s.slo_ms, 200);
  assert.equal(s.upstream_latency, null, 'latencies within the SLO: no latency curve is invented');
  const slow = replayScenario({ ...history, latencyMs: history.latencyMs.map((l) => l * 10) });
  assert.equal(slow.upstream_latency?.base_ms, 500, 'over the SLO: the median of the recorded latencies');
  assert.equal(demandAt(s.services[1].demand, 20), 900);
  assert.equal(upstreamAt(s, 20), 750);
  assert.deepEqual(s.services.map((x) => [x.name, x.priority, x.min_tps]), [['api/crit', 'CRITICAL', 100], ['api/low', 'LOW', 0]]);
});

test('family members are seeded variations, tiled past the end of the history; replay windows cover it', async () => {
  const a = familyScenario(history, 7, 120);
  assert.deepEqual(familyScenario(history, 7, 120), a, 'the same seed gives the same scenario');
  assert.notDeepEqual(familyScenario(history, 8, 120), a);
  assert.equal(a.duration_s, 120);
  assert.ok(a.services.every((x) => x.demand.kind === 'trace' && x.demand.points.length === 13), 'a point every 10 s over 120 s');
  const r = await simulate(a, { policy: 'fair' });
  assert.ok(Number.isFinite(r.metrics.reward));
  assert.deepEqual(replayWindows(history, 300, 4).map((s) => s.name), ['replay-api'], 'shorter than a window: all of it');
  assert.deepEqual(replayWindows(history, 20, 2).map((s) => [s.name, s.duration_s]), [['replay-api', 20], ['replay-api@20s', 20]]);
});
