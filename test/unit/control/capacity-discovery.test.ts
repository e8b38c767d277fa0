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
  for (let i = 0; i < 4; i++) eff = step(eff, 0);
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

test('failed probes back off: the hold doubles', () => {
  const d = new CapacityDiscovery(1000);
  const limit = 600;
  let eff = 1000;
  const failures: number[] = [];
  for (let t = 0; t < 200; t++) {
    const granted = eff;
    const throttled = Math.max(0, granted - limit);
    if (throttled > 0) failures.push(t);
    eff = d.update({ tick: t, capacityTps: 1000, grantedTps: granted, throttledTps: throttled, demandTps: 2000 });
  }
  const gaps = failures.slice(1).map((t, i) => t - failures[i]);
  assert.ok(gaps.length >= 3);
  for (let i = 2; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1], `gaps grow: ${gaps.join(',')}`);
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

test('a pressing pool: the 429s stop within 2 ticks of a drop', () => {
  const d = new CapacityDiscovery(1000);
  const ticks = play(d, 0, 10, (t) => (t < 3 ? 1000 : 600));
  assert.deepEqual(ticks.filter((x) => x.throttled > 0).map((x) => x.t), [3]);
  assert.ok(ticks[3].eff <= 600, `${ticks[3].eff}`);
});

test('a lasting reduction costs one 429 per probe, and probes grow rare', () => {
  const d = new CapacityDiscovery(1000);
  const ticks = play(d, 0, 400, (t) => (t < 10 ? 1000 : 600));
  const late = ticks.filter((x) => x.t > 11 && x.throttled > 0);
  assert.ok(late.every((x) => x.throttled === 1), `probes cost one request: ${late.map((x) => `${x.t}:${x.throttled}`).join(' ')}`);
  assert.ok(late.length <= Math.ceil(390 / DEFAULT_DISCOVERY.maxHoldTicks) + 2, `${late.length} probes`);
  const held = ticks.filter((x) => x.t > 20);
  const mean = held.reduce((a, x) => a + x.granted - x.throttled, 0) / held.length;
  assert.ok(mean >= 0.96 * 600, `the reduced upstream stays used: ${mean.toFixed(1)} of 600`);
});

test('a recovery is found within a hold and followed up to capacity_tps', () => {
  const d = new CapacityDiscovery(1000);
  const ticks = play(d, 0, 300, (t) => (t < 10 || t >= 200 ? 1000 : 600));
  const back = ticks.find((x) => x.t >= 200 && x.eff >= 1000);
  assert.ok(back !== undefined && back.t <= 200 + DEFAULT_DISCOVERY.maxHoldTicks + 20, `back at ${back?.t}`);
  assert.equal(ticks.filter((x) => x.t >= 200 && x.throttled > 0).length, 0, 'a step recovery to capacity costs no 429');
});

test('a climb that overtakes a rising upstream costs at most one step, then follows the ramp', () => {
  const d = new CapacityDiscovery(1000);
  // Down to 500, then back up at 20 tokens/s per tick from t = 100.
  const ticks = play(d, 0, 200, (t) => (t < 10 ? 1000 : Math.min(1000, 500 + Math.max(0, t - 100) * 20)));
  const during = ticks.filter((x) => x.t > 100 && x.throttled > 0);
  assert.ok(during.length <= 2, `${during.map((x) => `${x.t}:${x.throttled}`).join(' ')}`);
  for (const x of during) assert.ok(x.throttled <= DEFAULT_DISCOVERY.maxClimbStep * 1000, `${x.t}:${x.throttled}`);
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
