// Capacity discovery's latency rule (upstream.slo_ms): latencies past the SLO
// or timeouts (outcome 3) shrink the effective capacity, as 429s do; it grows
// back carefully; a pool without slo_ms is not affected. The upstream here is
// the simulator's curve (src/sim/upstream-latency.ts) over the granted rate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CapacityDiscovery } from '../../../src/control/capacity-discovery.ts';
import { latencyAtLoad } from '../../../src/sim/upstream-latency.ts';

const CAP = 1500;
const SLO = 300;
const BASE = 40;
const TIMEOUT = 2000;

/** One tick (1 s) against an upstream with knee `knee`: the pool is granted min(demand, E); returns the tick's outcome. */
function tick(d: CapacityDiscovery, t: number, knee: number, demand: number, sloMs: number | null) {
  const granted = Math.floor(Math.min(demand, d.effectiveTps));
  const ms = latencyAtLoad(BASE, granted / knee);
  const timeouts = ms > TIMEOUT ? granted : 0;
  const latencyMs = ms > TIMEOUT ? TIMEOUT : ms;
  const eff = d.update({ tick: t, capacityTps: CAP, grantedTps: granted, throttledTps: 0, demandTps: demand, tickS: 1,
    timeoutsTps: timeouts, latencyMs, sloMs });
  return { t, granted, ms, eff };
}

test('without slo_ms, latency and timeouts change nothing (as before)', () => {
  const d = new CapacityDiscovery(CAP);
  for (let t = 0; t < 20; t++) tick(d, t, 1000, 1400, null);
  assert.equal(d.effectiveTps, CAP);
});

test('latency past the SLO shrinks the effective capacity at once, by at most three quarters per tick (half without timeouts)', () => {
  const d = new CapacityDiscovery(CAP);
  const first = tick(d, 0, 1000, 1400, SLO);
  assert.ok(first.ms > SLO);
  assert.ok(first.eff < 1400 && first.eff >= 350, `shrinks, bounded: ${first.eff}`);
  const slow = new CapacityDiscovery(CAP);
  const eff = slow.update({ tick: 0, capacityTps: CAP, grantedTps: 1000, throttledTps: 0, demandTps: 1500, tickS: 1,
    timeoutsTps: 0, latencyMs: 10 * SLO, sloMs: SLO });
  assert.equal(eff, 500, 'at most half without timeouts');
});

test('a knee that drops: latency is back within the SLO in a few ticks and stays there; the pool is not starved', () => {
  const d = new CapacityDiscovery(CAP);
  const ticks = [];
  for (let t = 0; t < 120; t++) ticks.push(tick(d, t, t < 20 ? 1400 : 800, 1400, SLO));
  const over = ticks.filter((x) => x.t >= 20 && x.ms > SLO).map((x) => x.t);
  assert.ok(over.length <= 4 && over.every((t) => t < 26), `ticks over the SLO after the drop: ${over}`);
  const late = ticks.slice(60);
  const mean = late.reduce((a, x) => a + x.granted, 0) / late.length;
  assert.ok(mean >= 0.8 * 800 * 0.9, `keeps the upstream busy near its SLO rate: ${mean}`);
});

test('a knee that rises again: the capacity grows back, without overshooting the SLO more than once', () => {
  const d = new CapacityDiscovery(CAP);
  const ticks = [];
  for (let t = 0; t < 200; t++) ticks.push(tick(d, t, t >= 20 && t < 60 ? 700 : 1400, 1300, SLO));
  const overAfter = ticks.filter((x) => x.t >= 60 && x.ms > SLO).length;
  assert.ok(overAfter <= 1, `over the SLO after the rise: ${overAfter}`);
  // Demand (1300) is past what the knee serves within the SLO; the pool settles near the rate whose latency is the target.
  const late = ticks.slice(120);
  assert.ok(late.every((x) => x.ms <= SLO && x.granted >= 1150), `settles just under the SLO: ${late.map((x) => x.granted)}`);
});

test('timeouts (outcome 3) alone shrink it too', () => {
  const d = new CapacityDiscovery(CAP);
  const eff = d.update({ tick: 0, capacityTps: CAP, grantedTps: 1400, throttledTps: 0, demandTps: 1500, tickS: 1,
    timeoutsTps: 200, latencyMs: 0, sloMs: SLO });
  assert.ok(eff <= 0.9 * 1400, `${eff}`);
});
