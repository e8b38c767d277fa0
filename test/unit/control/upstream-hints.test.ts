// RELEASE hints as evidence (src/control/upstream-hints.ts, through
// CapacityDiscovery): honest hints remove every probe and every late 429; a
// lying or stale client is outvoted by the 429s and 429-free throughput the
// pool records; hints never raise a pool above its capacity.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CapacityDiscovery, DEFAULT_DISCOVERY } from '../../../src/control/capacity-discovery.ts';
import type { HintInput } from '../../../src/control/upstream-hints.ts';

const CAP = 1500;
const RESERVE = 30;

interface Tick { t: number; eff: number; granted: number; throttled: number }

/**
 * A pool against an upstream that answers 429 to what exceeds `limitAt(t)` in
 * a tick (1 s); clients report `hintsAt(t)`. A pressing pool is granted E - reserve.
 */
function play(d: CapacityDiscovery, to: number, limitAt: (t: number) => number,
  hintsAt: (t: number) => HintInput | undefined, o: { demandAt?: (t: number) => number; timeoutsAt?: (t: number) => number } = {}): Tick[] {
  const out: Tick[] = [];
  for (let t = 0; t < to; t++) {
    const demand = o.demandAt?.(t) ?? 2 * CAP;
    const granted = Math.floor(Math.min(demand, d.effectiveTps - Math.min(RESERVE, d.effectiveTps)));
    const throttled = Math.max(0, granted - Math.floor(limitAt(t)));
    const eff = d.update({ tick: t, capacityTps: CAP, grantedTps: granted, throttledTps: throttled, demandTps: demand,
      reserveTps: RESERVE, tickS: 1, hints: hintsAt(t), timeoutsTps: o.timeoutsAt?.(t) ?? 0 });
    out.push({ t, eff, granted, throttled });
  }
  return out;
}

const honest = (limitAt: (t: number) => number) => (t: number): HintInput => ({ perS: 40, lowTps: limitAt(t), highTps: limitAt(t) });
const with429 = (ticks: Tick[]) => ticks.filter((x) => x.throttled > 0).map((x) => x.t);

test('honest hints: only the tick of each drop has 429s, recoveries are immediate, nothing probes', () => {
  const limitAt = (t: number) => (t < 10 ? 1500 : t < 200 ? 900 : t < 300 ? 1500 : t < 320 ? 1200 - (t - 300) * 5 : 1100);
  const ticks = play(new CapacityDiscovery(CAP), 500, limitAt, honest(limitAt));
  assert.deepEqual(with429(ticks), [10, 300]);
  assert.equal(ticks[200].eff, 1500, 'back to the hinted limit the tick the hints say so');
  assert.ok(ticks.slice(11, 199).every((x) => x.eff === 900), 'held at the hinted limit, no probe above it');
  assert.ok(ticks.slice(320).every((x) => x.eff === 1100), 'a gradual decline within the tolerance is followed');
});

test('an honest decline of more than the tolerance without any 429 is followed, and checked by one probe request after verifyS', () => {
  const limitAt = (t: number) => (t < 20 ? 1200 : Math.max(900, 1200 - (t - 20) * 5));
  const d = new CapacityDiscovery(CAP);
  const ticks = play(d, 300, limitAt, honest(limitAt));
  const late = ticks.filter((x) => x.t > 0 && x.throttled > 0);
  assert.deepEqual(late.map((x) => x.throttled), [1], `${late.map((x) => `${x.t}:${x.throttled}`).join(' ')}`);
  assert.ok(late[0].t >= 80 + DEFAULT_DISCOVERY.verifyS, `the check waits verifyS of pressing at the settled value: ${late[0].t}`);
  assert.ok(ticks.slice(late[0].t).every((x) => x.eff === 900) && d.hint?.verified === true);
});

test('hints never raise the pool above capacity_tps', () => {
  const ticks = play(new CapacityDiscovery(CAP), 50, () => 5000, () => ({ perS: 3, lowTps: 5000, highTps: 5000 }));
  assert.ok(ticks.every((x) => x.eff <= CAP));
});

test('a low hint among honest ones is outvoted by the throughput the others got', () => {
  const ticks = play(new CapacityDiscovery(CAP), 100, () => 1500, () => ({ perS: 40, lowTps: 100, highTps: 1500 }));
  assert.ok(ticks.every((x) => x.eff === CAP), `${ticks.map((x) => x.eff).join(',')}`);
});

test('a lone low hint below the 429-free throughput of a pressing pool is ignored', () => {
  const d = new CapacityDiscovery(CAP);
  const ticks = play(d, 100, () => 1500, (t) => (t < 5 ? undefined : { perS: 1, lowTps: 500, highTps: 500 }));
  assert.ok(ticks.every((x) => x.eff === CAP));
  assert.equal(d.hint, null);
});

test('a lone low hint on a quiet pool lowers it; pressed on for verifyS, one probe shows the upstream takes more: refuted, without a 429', () => {
  const d = new CapacityDiscovery(CAP);
  const demandAt = (t: number) => (t < 20 ? 100 : 3000);
  const ticks = play(d, 200, () => 1500, () => ({ perS: 1, lowTps: 300, highTps: 300 }), { demandAt });
  assert.equal(ticks[10].eff, 300, 'nothing contradicts it while the pool is quiet');
  assert.equal(with429(ticks).length, 0, 'the upstream never refused: no 429 at all');
  const back = ticks.find((x) => x.t > 20 && x.eff >= CAP);
  assert.ok(back !== undefined && back.t <= 20 + DEFAULT_DISCOVERY.verifyS + 10, `back to capacity at ${back?.t}`);
  assert.ok(ticks.slice(back.t).every((x) => x.eff === CAP), 'the refuted value stays ignored');
});

test('a stale client reporting the old limit is overruled by the 429s: no oscillation back to it', () => {
  const limitAt = (t: number) => (t < 10 ? 1500 : 900);
  const ticks = play(new CapacityDiscovery(CAP), 200, limitAt, () => ({ perS: 2, lowTps: 1500, highTps: 1500 }));
  const late = ticks.filter((x) => x.t > 10 && x.throttled > 0);
  assert.ok(late.every((x) => x.throttled === 1), `after the drop only one-request probes: ${late.map((x) => `${x.t}:${x.throttled}`).join(' ')}`);
  assert.ok(late.length <= Math.ceil(190 / DEFAULT_DISCOVERY.holdS) + 1);
});

test('a stale high client among honest ones: the honest limit is used and nothing probes', () => {
  const limitAt = (t: number) => (t < 10 ? 1500 : t < 150 ? 900 : 1500);
  const ticks = play(new CapacityDiscovery(CAP), 200, limitAt, (t) => ({ perS: 30, lowTps: limitAt(t), highTps: 1500 }));
  assert.deepEqual(with429(ticks), [10]);
  assert.equal(ticks[150].eff, 1500);
});

test('a stale value overruled by 429s is trusted again once 429-free throughput reaches it', () => {
  const limitAt = (t: number) => (t < 10 ? 1500 : t < 100 ? 900 : 1500);
  const d = new CapacityDiscovery(CAP);
  const ticks = play(d, 160, limitAt, () => ({ perS: 2, lowTps: 1500, highTps: 1500 }));
  assert.equal(ticks[50].eff < 1000, true);
  assert.ok(ticks[159].eff === CAP && d.hint !== null && d.hint.tps === 1500, 'recovered by probing, then the hint agrees with the evidence');
});

test('429s a little below a hint (another consumer shares the quota) cap it once the pool has been under it for two ticks', () => {
  const ticks = play(new CapacityDiscovery(CAP), 100, () => 950, () => ({ perS: 10, lowTps: 1000, highTps: 1000 }));
  assert.deepEqual(with429(ticks), [0, 2]);
  assert.ok(ticks.slice(3).every((x) => x.eff === 950), `${ticks.slice(0, 5).map((x) => x.eff).join(',')}`);
});

test('the tick after a drop, 429s of the drop\'s aftermath (the upstream still drained) neither cap nor overrule the hint', () => {
  // A token-bucket upstream: what the drop tick took beyond the new rate is missing the tick after.
  const limitAt = (t: number) => (t < 10 ? 1500 : t === 11 ? 750 : 900);
  const ticks = play(new CapacityDiscovery(CAP), 40, limitAt, honest((t) => (t < 10 ? 1500 : 900)));
  assert.deepEqual(with429(ticks), [10, 11]);
  assert.ok(ticks.slice(12).every((x) => x.eff === 900), `${ticks.slice(9, 15).map((x) => x.eff).join(',')}`);
});

test('a hint does not raise the pool in a tick with timeouts', () => {
  const limitAt = (t: number) => (t < 10 ? 1500 : t < 30 ? 900 : 1500);
  const ticks = play(new CapacityDiscovery(CAP), 40, limitAt, honest(limitAt), { timeoutsAt: (t) => (t === 30 ? 5 : 0) });
  assert.equal(ticks[30].eff, 900, 'held while the upstream times out');
  assert.equal(ticks[31].eff, 1500);
});

test('without new hints the last trusted one is kept for hintTtlS, then discovery probes again', () => {
  const limitAt = (t: number) => (t < 10 ? 1500 : 900);
  const d = new CapacityDiscovery(CAP);
  const ticks = play(d, 120, limitAt, (t) => (t < 20 ? honest(limitAt)(t) : undefined));
  const probes = ticks.filter((x) => x.t > 10 && x.throttled > 0).map((x) => x.t);
  assert.ok(probes.length > 0 && probes[0] > 20 + DEFAULT_DISCOVERY.hintTtlS, `first probe at ${probes[0]}`);
});
