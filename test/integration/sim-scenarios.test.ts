// The acceptance check of the shipped model on the example scenarios: PPO's
// reward at least fair's, served_ratio >= 0.97 where demand exceeds capacity,
// every guarantee met; late violations only from capacity discovery: its
// probes (one request, two at most when a tick's rounding adds one), one per
// hold, and, while the upstream is rising again, climbs that overtake it by
// at most a climb step (see docs/allocator.md).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DISCOVERY } from '../../src/control/capacity-discovery.ts';
import { PpoModel } from '../../src/ppo/model.ts';
import { demandAt, parseScenario, upstreamAt } from '../../src/sim/scenario.ts';
import { simulate } from '../../src/sim/simulator.ts';

const dir = fileURLToPath(new URL('../fixtures/scenarios/', import.meta.url));
const model = PpoModel.load();

for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  test(`shipped PPO model on ${file}`, async () => {
    const s = parseScenario(JSON.parse(readFileSync(dir + file, 'utf8')), file);
    const ppo = (await simulate(s, { policy: 'ppo', model })).metrics;
    const fair = (await simulate(s, { policy: 'fair' })).metrics;
    assert.ok(ppo.reward >= fair.reward, `reward ${ppo.reward} < fair ${fair.reward}`);
    assert.equal(ppo.min_guarantee_met, 1);
    assert.equal(ppo.fallback_ticks, 0);
    let scarce = false;
    for (let t = 0; t < s.duration_s; t += 10) {
      const demand = s.services.reduce((a, v) => a + demandAt(v.demand, t), 0);
      if (demand > upstreamAt(s, t)) scarce = true;
    }
    if (scarce) assert.ok(ppo.served_ratio >= 0.97, `served_ratio ${ppo.served_ratio}`);
    // A lasting upstream reduction costs at most one probe per hold, a request each.
    const late = ppo.violations_by_tick.filter(([, , isLate]) => isLate === 1);
    assert.ok(late.length <= Math.ceil(s.duration_s / DEFAULT_DISCOVERY.holdS), `${late.length} ticks with late violations`);
    const rising = (t: number) => upstreamAt(s, t) > upstreamAt(s, t - DEFAULT_DISCOVERY.holdS - 1);
    const overtakes = late.filter(([t, n]) => n > 2);
    assert.ok(overtakes.every(([t, n]) => rising(t) && n <= DEFAULT_DISCOVERY.maxClimbStep * s.capacity_tps),
      `late violations beyond a probe: ${JSON.stringify(overtakes)}`);
  });
}
