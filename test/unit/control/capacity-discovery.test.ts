import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CapacityDiscovery } from '../../../src/control/capacity-discovery.ts';

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
