// The latency rule steers on the tail (latency-limit.ts): the mean target
// moves with the tick's late share (releases past slo_ms). The upstream here
// is the simulator's curve for the mean over the granted rate, with a light
// tail: a tick's latencies spread evenly over +-20 % of its mean, so p95 is
// about 1.18 x the mean and a mean at half the SLO leaves the tail far
// inside it. The old rule (a fixed target at half the SLO) parks the mean
// there with no late release at all; the tail rule grows until the late
// share nears its target, and keeps the SLO (p95 within it) in most ticks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CapacityDiscovery } from '../../../src/control/capacity-discovery.ts';
import { latencyAtLoad, loadWithin } from '../../../src/sim/upstream-latency.ts';

const CAP = 1500;
const SLO = 300;
const BASE = 40;
const TIMEOUT = 2000;
const KNEE = 1000;
const SPREAD = 0.2;

/** The share of a tick's latencies past `slo` when they spread evenly over mean x [1 - SPREAD, 1 + SPREAD]. */
function lateShareOf(mean: number, slo: number): number {
  return Math.min(1, Math.max(0, (mean * (1 + SPREAD) - slo) / (2 * SPREAD * mean)));
}

function run(ticks: number, d = new CapacityDiscovery(CAP)) {
  const out: { granted: number; mean: number; late: number }[] = [];
  for (let t = 0; t < ticks; t++) {
    const demand = 1400;
    const granted = Math.floor(Math.min(demand, d.effectiveTps));
    const ms = latencyAtLoad(BASE, granted / KNEE);
    const timedOut = ms > TIMEOUT;
    const mean = timedOut ? TIMEOUT : ms;
    const late = timedOut ? 1 : lateShareOf(mean, SLO);
    d.update({ tick: t, capacityTps: CAP, grantedTps: granted, throttledTps: 0, demandTps: demand, tickS: 1,
      timeoutsTps: timedOut ? granted : 0, latencyMs: mean, lateShare: late, sloMs: SLO });
    out.push({ granted, mean, late });
  }
  return { out, d };
}

test('a light tail: the limit grows past a mean at half the SLO until the late share nears its target, and keeps the SLO', () => {
  const ticks = run(300).out;
  const settled = ticks.slice(150);
  const meanLatency = settled.reduce((a, x) => a + x.mean, 0) / settled.length;
  const meanGranted = settled.reduce((a, x) => a + x.granted, 0) / settled.length;
  const atHalf = loadWithin(BASE, SLO / 2) * KNEE; // the rate the old rule settles at (its mean at half the SLO)
  assert.ok(meanLatency >= 0.65 * SLO, `the mean rises past half the SLO: ${meanLatency.toFixed(0)} ms of ${SLO}`);
  assert.ok(meanGranted >= 1.05 * atHalf, `serves more than at half the SLO (${atHalf.toFixed(0)} tps): ${meanGranted.toFixed(0)}`);
  const kept = settled.filter((x) => x.late <= 0.05).length / settled.length;
  assert.ok(kept >= 0.95, `p95 within the SLO (late share <= 5 %) in ${(100 * kept).toFixed(1)} % of ticks`);
  assert.ok(Math.max(...settled.map((x) => x.late)) > 0, 'it went where the tail shows (some late releases)');
});

test('a heavy tail: the late share past its bound lowers the target, the mean falls under half the SLO if need be', () => {
  // An exponential-like tail: the share past the SLO is exp(-SLO / (0.8 x mean)), 8 % at a mean of half the SLO (p95
  // past it), 2.3 % at a third of it.
  const d = new CapacityDiscovery(CAP);
  const late = (mean: number) => Math.exp(-SLO / (0.8 * mean));
  const ticks: { mean: number; late: number }[] = [];
  for (let t = 0; t < 300; t++) {
    const granted = Math.floor(Math.min(1400, d.effectiveTps));
    const ms = Math.min(TIMEOUT, latencyAtLoad(BASE, granted / KNEE));
    d.update({ tick: t, capacityTps: CAP, grantedTps: granted, throttledTps: 0, demandTps: 1400, tickS: 1,
      timeoutsTps: ms >= TIMEOUT ? granted : 0, latencyMs: ms, lateShare: ms >= TIMEOUT ? 1 : late(ms), sloMs: SLO });
    ticks.push({ mean: ms, late: ms >= TIMEOUT ? 1 : late(ms) });
  }
  const settled = ticks.slice(150);
  const kept = settled.filter((x) => x.late <= 0.05).length / settled.length;
  assert.ok(kept >= 0.95, `p95 within the SLO in ${(100 * kept).toFixed(1)} % of ticks`);
  assert.ok(d.latency.targetShare < 0.5, `the target fell under half the SLO: ${d.latency.targetShare}`);
});

test('a new slo_ms (a reload) starts the target afresh: it was a share of the old SLO', () => {
  const { d } = run(300);
  assert.ok(d.latency.targetShare > 0.6, `raised on the light tail: ${d.latency.targetShare}`);
  d.update({ tick: 300, capacityTps: CAP, grantedTps: 600, throttledTps: 0, demandTps: 1400, tickS: 1,
    timeoutsTps: 0, latencyMs: 100, lateShare: 0, sloMs: 2 * SLO });
  assert.equal(d.latency.targetShare, 0.5);
  assert.ok(Number.isNaN(d.latency.cliffShare));
});
