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

test('a small limit shared by many services: grants a few requests short of it (one per service, quantised) still press on it, so it grows back', () => {
  // degrade_recover-2684354574 (generateDynamics 0xa000000e): 24 services on 141 tps, cut to 19.5 tps by a burst of
  // timeouts; each service's bucket ends the tick holding part of a request it cannot spend, so the pool is granted
  // 16-17 tps with 180 asked for, at the upstream's base latency. The old test (97 % of the limit, less one request)
  // never passed and the limit stayed at 19.5 for the whole run.
  const cap = 141;
  const d = new CapacityDiscovery(cap);
  d.update({ tick: 0, capacityTps: cap, grantedTps: 143, throttledTps: 0, demandTps: 165, tickS: 1, timeoutsTps: 30, latencyMs: 471, sloMs: 303 });
  const cut = d.effectiveTps;
  assert.ok(cut < 60, `the timeouts cut it: ${cut}`);
  for (let t = 1; t < 60; t++) {
    const e = d.effectiveTps;
    const services = 24;
    const granted = Math.max(0, Math.floor(e - Math.min(services, 0.15 * e))); // a few requests short of a small limit
    d.update({ tick: t, capacityTps: cap, grantedTps: granted, throttledTps: 0, demandTps: 180, tickS: 1, timeoutsTps: 0,
      latencyMs: 49, sloMs: 303, shortServices: services });
  }
  assert.ok(d.effectiveTps > 2 * cut, `grows back at the base latency: ${cut} -> ${d.effectiveTps}`);
});

test('grants far under the limit (the pool does not use it) do not let it grow, whatever the services asked', () => {
  const cap = 1000;
  const d = new CapacityDiscovery(cap);
  d.update({ tick: 0, capacityTps: cap, grantedTps: 900, throttledTps: 0, demandTps: 1000, tickS: 1, timeoutsTps: 100, latencyMs: 900, sloMs: 300 });
  const cut = d.effectiveTps;
  for (let t = 1; t < 60; t++) {
    // Services capped by their own max_tps: denied, yet the pool is granted a third of its limit.
    d.update({ tick: t, capacityTps: cap, grantedTps: Math.floor(cut / 3), throttledTps: 0, demandTps: 2 * cut, tickS: 1, timeoutsTps: 0,
      latencyMs: 40, sloMs: 300, shortServices: 10 });
  }
  assert.equal(d.effectiveTps, cut, 'an untested limit does not grow');
});

test('after a one-tick stall (the upstream unchanged), the limit climbs back near the rate that met the SLO within 20 ticks, without missing the SLO', () => {
  const d = new CapacityDiscovery(CAP);
  for (let t = 0; t < 150; t++) tick(d, t, 1000, 1400, SLO);
  const settled = d.effectiveTps;
  // One tick the upstream stalls: every request times out, which cuts the limit by three quarters.
  d.update({ tick: 150, capacityTps: CAP, grantedTps: Math.floor(settled), throttledTps: 0, demandTps: 1400, tickS: 1,
    timeoutsTps: Math.floor(settled), latencyMs: TIMEOUT, sloMs: SLO });
  const cut = d.effectiveTps;
  assert.ok(cut <= 0.3 * settled, `cut deep: ${settled} -> ${cut}`);
  const after = [];
  for (let t = 151; t < 200; t++) after.push(tick(d, t, 1000, 1400, SLO));
  const back = after.findIndex((x) => x.granted >= 0.85 * settled);
  assert.ok(back >= 0 && back < 20, `back to 85 % of ${settled.toFixed(0)} after ${back} ticks: ${after.map((x) => x.granted)}`);
  assert.ok(after.every((x) => x.ms <= SLO), `within the SLO: ${after.map((x) => x.ms.toFixed(0))}`);
});

test('after a knee that drops under the level before the cut, the return stops where the latency nears the target', () => {
  const d = new CapacityDiscovery(CAP);
  const ticks = [];
  for (let t = 0; t < 240; t++) ticks.push(tick(d, t, t < 100 ? 1400 : 600, 1400, SLO));
  const over = ticks.filter((x) => x.t >= 100 && x.ms > SLO).map((x) => x.t);
  assert.ok(over.length <= 3 && over.every((t) => t < 106), `ticks over the SLO after the drop: ${over}`);
});
