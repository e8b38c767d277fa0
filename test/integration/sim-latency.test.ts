// Latency-limited upstreams in the simulator (SCENARIOS.md upstream_latency,
// slo_ms): on the scenarios of test/fixtures/scenarios/latency (a knee that
// moves; a gradual degrade and recovery; kept out of the trainer's
// evaluation set) and on variants of them with other knees, base latencies
// and SLOs, fair and baseline keep the served p95 within the SLO in at least
// 95 % of ticks; the outputs appear only for such scenarios.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/ppo/rng.ts';
import { generateDynamics } from '../../src/sim/scenario-gen.ts';
import { parseScenario, type Scenario } from '../../src/sim/scenario.ts';
import { simulate } from '../../src/sim/simulator.ts';

const dir = fileURLToPath(new URL('../fixtures/scenarios/latency/', import.meta.url));
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => parseScenario(JSON.parse(readFileSync(dir + f, 'utf8')), f));

/** A variant of `s`: knee scaled by 0.7-1.1, base latency and SLO by 0.5-2 (the SLO at least 4x the base), another seed. */
function variant(s: Scenario, seed: number): Scenario {
  const rng = new Rng(seed);
  const l = s.upstream_latency!;
  const kneeScale = 0.7 + 0.4 * rng.next();
  const base = l.base_ms * (0.5 + 1.5 * rng.next());
  const slo = Math.max(4 * base, (s.slo_ms ?? l.timeout_ms) * (0.5 + 1.5 * rng.next()));
  const knee = typeof l.knee_tps === 'number' ? l.knee_tps * kneeScale : l.knee_tps.map(([t, v]) => [t, v * kneeScale] as [number, number]);
  return { ...s, name: `${s.name}-v${seed}`, seed, duration_s: Math.min(s.duration_s, 240),
    upstream_latency: { ...l, base_ms: base, knee_tps: knee }, slo_ms: slo };
}

test('latency scenarios: fair and baseline meet the SLO in >= 95% of ticks, and report timeouts', async () => {
  assert.ok(fixtures.length >= 2);
  for (const s of fixtures) {
    for (const policy of ['fair', 'baseline'] as const) {
      const m = (await simulate(s, { policy })).metrics;
      assert.ok(m.slo_met !== undefined && m.timeouts !== undefined, `${s.name}: latency outputs present`);
      assert.ok(m.slo_met >= 0.95, `${s.name} ${policy}: slo_met ${m.slo_met}`);
      assert.ok(m.served_ratio >= 0.85, `${s.name} ${policy}: the upstream is kept busy, served_ratio ${m.served_ratio}`);
    }
  }
});

test('variants of the latency scenarios (other knees, base latencies, SLOs): SLO met in >= 95% of ticks', async () => {
  for (const s of fixtures) {
    for (let seed = 1; seed <= 3; seed++) {
      const v = variant(s, seed);
      for (const policy of ['fair', 'baseline'] as const) {
        const m = (await simulate(v, { policy })).metrics;
        assert.ok(m.slo_met! >= 0.95, `${v.name} (base ${v.upstream_latency!.base_ms.toFixed(0)} ms, slo ${v.slo_ms!.toFixed(0)} ms) ${policy}: slo_met ${m.slo_met}`);
      }
    }
  }
});

test('many services on a small latency limit: it does not stick under the rate the upstream serves at its base latency', async () => {
  // generateDynamics(0xa000000e): 24 services on 141 tps, knee 117 -> 72 -> 117 tps. A burst of timeouts in the first
  // tick cut the limit to 19.5 tps; the pool's grants stayed a few requests short of it (a fraction of a request per
  // service), the pressing test never passed, and the limit held 19.5 for 600 s at the base latency (utilization 0.18).
  const s = generateDynamics(0xa000000e, { durationS: 240 });
  assert.equal(s.services.length, 24);
  for (const policy of ['fair', 'baseline'] as const) {
    const m = (await simulate(s, { policy })).metrics;
    assert.ok(m.utilization >= 0.5, `${s.name} ${policy}: utilization ${m.utilization}`);
    assert.ok(m.slo_met! >= 0.95, `${s.name} ${policy}: slo_met ${m.slo_met}`);
  }
});

test('without upstream_latency there are no latency outputs', async () => {
  const s = { ...fixtures[0], upstream_latency: null, slo_ms: null, duration_s: 20 };
  const m = (await simulate(s, { policy: 'fair' })).metrics;
  assert.equal(m.slo_met, undefined);
  assert.equal(m.timeouts, undefined);
});
