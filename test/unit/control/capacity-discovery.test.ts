import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CapacityDiscovery, DEFAULT_DISCOVERY } from '../../../src/control/capacity-discovery.ts';

test('429s shrink the effective capacity at once; it probes back when they stop', () => {
  const d = new CapacityDiscovery(1000);
  let tick = 0;
  const step = (granted: number, throttled: number, demand = 2000): number =>
    d.update({ tick: tick++, capacityTps: 1000, grantedTps: granted, throttledTps: throttled, demandTps: demand });
  assert.equal(step(1000, 0), 1000);
  const shrunk = step(1000, 400);
  assert.ok(shrunk <= 600 && shrunk >= 580, `shrinks to what the upstream accepted less a margin: ${shrunk}`);
  // Held for a few ticks, then probing with growing steps while traffic follows.
  let eff = shrunk;
  for (let i = 0; i < DEFAULT_DISCOVERY.recoveryHoldS - 1; i++) eff = step(eff, 0);
  assert.equal(eff, shrunk, 'holds after a 429');
  for (let i = 0; i < 40 && eff < 1000; i++) eff = step(eff, 0);
  assert.equal(eff, 1000, 'back to capacity_tps once the upstream stops answering 429');
});

test('no probing while demand is below the effective capacity', () => {
  const d = new CapacityDiscovery(1000);
  d.update({ tick: 0, capacityTps: 1000, grantedTps: 800, throttledTps: 300, demandTps: 900 });
  const low = d.effectiveTps;
  for (let t = 1; t < 50; t++) d.update({ tick: t, capacityTps: 1000, grantedTps: 100, throttledTps: 0, demandTps: 100 });
  assert.equal(d.effectiveTps, low);
});

/**
 * A pool against an upstream that answers 429 to what exceeds `limitAt(t)` in
 * a tick (1 s): a pressing pool is granted E - reserve, as the controller's
 * pool bucket allows.
 */
function play(d: CapacityDiscovery, from: number, to: number, limitAt: (t: number) => number,
  o: { capacity?: number; demand?: number; reserve?: number } = {}): { t: number; eff: number; granted: number; throttled: number }[] {
  const capacity = o.capacity ?? 1000;
  const demand = o.demand ?? 2 * capacity;
  const reserve = o.reserve ?? 20;
  const out: { t: number; eff: number; granted: number; throttled: number }[] = [];
  for (let t = from; t < to; t++) {
    const granted = Math.floor(Math.min(demand, d.effectiveTps - reserve));
    const throttled = Math.max(0, granted - Math.floor(limitAt(t)));
    const eff = d.update({ tick: t, capacityTps: capacity, grantedTps: granted, throttledTps: throttled, demandTps: demand, reserveTps: reserve, tickS: 1 });
    out.push({ t, eff, granted, throttled });
  }
  return out;
}

test('a pressing pool: the 429s stop within 2 ticks of a drop (then only probes of one request)', () => {
  const d = new CapacityDiscovery(1000);
  const ticks = play(d, 0, 10, (t) => (t < 3 ? 1000 : 600));
  assert.deepEqual(ticks.filter((x) => x.throttled > 1).map((x) => x.t), [3]);
  assert.ok(ticks[3].eff <= 600, `${ticks[3].eff}`);
});

test('a recovery is found within a hold and followed up to capacity_tps', () => {
  const d = new CapacityDiscovery(1000);
  const ticks = play(d, 0, 300, (t) => (t < 10 || t >= 200 ? 1000 : 600));
  const back = ticks.find((x) => x.t >= 200 && x.eff >= 1000);
  assert.ok(back !== undefined && back.t <= 200 + 5, `back at ${back?.t}`);
  assert.equal(ticks.filter((x) => x.t >= 200 && x.throttled > 0).length, 0, 'a step recovery to capacity costs no 429');
});

test('a climb that overtakes a rising upstream costs at most one step; the ramp is then followed at its measured rise', () => {
  const d = new CapacityDiscovery(1000);
  // Down to 500, then back up at 20 tokens/s per tick from t = 100.
  const rise = 20;
  const ticks = play(d, 0, 200, (t) => (t < 10 ? 1000 : Math.min(1000, 500 + Math.max(0, t - 100) * rise)));
  const during = ticks.filter((x) => x.t > 100 && x.throttled > 0);
  assert.ok(during.length > 0 && during[0].throttled <= DEFAULT_DISCOVERY.maxClimbStep * 1000, `${during[0]?.throttled}`);
  for (const x of during.slice(1)) assert.ok(x.throttled <= 3 * rise, `after the first, overtakes cost a few ticks of the rise: ${x.t}:${x.throttled}`);
  assert.ok(ticks[ticks.length - 1].eff >= 1000);
});

test('a lone 429 far below the effective capacity shrinks it in proportion; a second one in a row fully', () => {
  const d = new CapacityDiscovery(1000);
  const at = (tick: number, granted: number, throttled: number): number =>
    d.update({ tick, capacityTps: 1000, grantedTps: granted, throttledTps: throttled, demandTps: granted, reserveTps: 20, tickS: 1 });
  assert.equal(at(0, 100, 0), 1000);
  assert.equal(at(1, 2, 1), 1000 * DEFAULT_DISCOVERY.keep, 'one 429 at 2 tokens/s: at most halved, not the 5% floor');
  assert.equal(at(2, 2, 0), 500, 'no 429: kept');
  assert.equal(at(3, 100, 60), 500 * DEFAULT_DISCOVERY.keep);
  assert.equal(at(4, 100, 60), 1000 * DEFAULT_DISCOVERY.floor, 'the 429s go on: shrunk to what the upstream accepted (40), within the floor');
  // Near capacity the shrink is not softened.
  const e = new CapacityDiscovery(1000);
  e.update({ tick: 0, capacityTps: 1000, grantedTps: 900, throttledTps: 300, demandTps: 1500, reserveTps: 20, tickS: 1 });
  assert.ok(e.effectiveTps <= 600);
});

// ---- Recovery speed and probe cost (issue 13, item 3) ----

/** First tick at or after `from` whose accepted rate is within `share` of the upstream's limit. */
function backAt(ticks: { t: number; granted: number; throttled: number }[], from: number, limitAt: (t: number) => number, share = 0.97): number {
  const x = ticks.find((v) => v.t >= from && v.granted - v.throttled >= share * limitAt(v.t));
  return x === undefined ? Infinity : x.t;
}

test('after a step recovery the pool is back within 97% of the upstream in at most 5 ticks, whatever the probe phase', () => {
  for (const [low, high] of [[900, 1500], [600, 1500], [900, 1200], [1400, 1500]]) {
    for (let back = 300; back < 316; back++) {
      const d = new CapacityDiscovery(1500);
      const limitAt = (t: number) => (t < 10 || t >= back ? high : low);
      const ticks = play(d, 0, back + 40, limitAt, { capacity: 1500, reserve: 30 });
      const at = backAt(ticks, back, limitAt);
      assert.ok(at - back <= 5, `${low} -> ${high} at ${back}: back within 97% at ${at} (${at - back} ticks)`);
    }
  }
});

test('a lasting reduction costs at most one request per hold, the hold being at most 3 ticks', () => {
  const d = new CapacityDiscovery(1500);
  const ticks = play(d, 0, 400, (t) => (t < 10 ? 1500 : 900), { capacity: 1500, reserve: 30 });
  const probes = ticks.filter((x) => x.t > 11 && x.throttled > 0);
  assert.ok(probes.every((x) => x.throttled === 1), `each probe costs one request: ${probes.map((x) => `${x.t}:${x.throttled}`).join(' ')}`);
  const gaps = probes.slice(1).map((x, i) => x.t - probes[i].t);
  assert.ok(gaps.every((g) => g >= DEFAULT_DISCOVERY.holdS), `one probe per hold: gaps ${gaps.join(',')}`);
  assert.ok(DEFAULT_DISCOVERY.holdS <= 3);
  const held = ticks.filter((x) => x.t > 20);
  const mean = held.reduce((a, x) => a + x.granted - x.throttled, 0) / held.length;
  assert.ok(mean >= 0.96 * 900, `the reduced upstream stays used: ${mean.toFixed(1)} of 900`);
});

test('recovery after a gradual ramp is as fast as after a step, and the ramp is followed closely', () => {
  for (const perTick of [0.5, 1.2, 5, 30]) {
    const d = new CapacityDiscovery(1500);
    const start = 100;
    const end = start + Math.ceil(600 / perTick);
    const limitAt = (t: number) => (t < 10 ? 1500 : Math.min(1500, 900 + Math.max(0, t - start) * perTick));
    const ticks = play(d, 0, end + 40, limitAt, { capacity: 1500, reserve: 30 });
    const at = backAt(ticks, end, limitAt);
    assert.ok(at - end <= 5, `ramp of ${perTick}/tick ends at ${end}: back within 97% at ${at}`);
    const ramp = ticks.filter((x) => x.t >= start + 10 && x.t < end);
    const share = ramp.reduce((a, x) => a + (x.granted - x.throttled) / limitAt(x.t), 0) / ramp.length;
    assert.ok(share >= 0.96, `ramp of ${perTick}/tick: ${share.toFixed(3)} of the upstream used while it rises`);
  }
});

test('against a token-bucket upstream, a probe let through by saved credit is found out after one climb: then one request per hold', () => {
  const d = new CapacityDiscovery(1500);
  const rateAt = (t: number) => (t < 10 ? 1500 : t < 400 ? 900 : 1500);
  let tokens = 150;
  const ticks: { t: number; granted: number; throttled: number }[] = [];
  for (let t = 0; t < 420; t++) {
    // Refills at rate(t) per second, holds a tenth of a second's worth; what a tick grants is taken evenly.
    const available = Math.min(rateAt(t) / 10, tokens) + rateAt(t);
    const granted = Math.floor(d.effectiveTps - 30);
    const accepted = Math.min(granted, Math.floor(available));
    tokens = available - accepted;
    ticks.push({ t, granted, throttled: granted - accepted });
    d.update({ tick: t, capacityTps: 1500, grantedTps: granted, throttledTps: granted - accepted, demandTps: 3000, reserveTps: 30, tickS: 1 });
  }
  const late = ticks.filter((x) => x.t > 40 && x.t < 400 && x.throttled > 0);
  assert.ok(late.every((x) => x.throttled === 1), `${late.filter((x) => x.throttled > 1).map((x) => `${x.t}:${x.throttled}`).join(' ')}`);
  const held = ticks.filter((x) => x.t > 40 && x.t < 400);
  assert.ok(held.reduce((a, x) => a + x.granted - x.throttled, 0) / held.length >= 0.99 * 900, 'held at the rate the upstream accepts');
  const back = ticks.find((x) => x.t >= 400 && x.granted - x.throttled >= 0.97 * 1500);
  assert.ok(back !== undefined && back.t - 400 <= 5, `back at ${back?.t}`);
});
