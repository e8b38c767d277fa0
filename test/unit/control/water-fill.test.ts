import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FairPolicy } from '../../../src/control/policies/fair.ts';
import { StaticPolicy } from '../../../src/control/policies/static.ts';
import { guarantees } from '../../../src/control/water-fill.ts';
import { pool, service } from './helpers.ts';

const big = 1e6;

test('fair serves priorities in order and honours min_tps and max_tps', () => {
  const obs = pool(1000, [
    service({ priority: 3, demandTps: 500, minTps: 100, limitTps: big }),
    service({ priority: 0, demandTps: 300, limitTps: big }),
    service({ priority: 1, demandTps: 800, maxTps: 400, limitTps: big }),
  ]);
  const a = new FairPolicy().allocate(obs);
  assert.deepEqual(Array.from(a, Math.round), [300, 300, 400]);
});

test('fair splits a class max-min and spreads slack as headroom', () => {
  const scarce = pool(600, [
    service({ priority: 1, demandTps: 100, limitTps: big }),
    service({ priority: 1, demandTps: 500, limitTps: big }),
    service({ priority: 1, demandTps: 500, limitTps: big }),
  ]);
  assert.deepEqual(Array.from(new FairPolicy().allocate(scarce), Math.round), [100, 250, 250]);
  const slack = pool(1000, [service({ priority: 0, demandTps: 100, limitTps: big }), service({ priority: 3, demandTps: 100, limitTps: big })]);
  const a = new FairPolicy().allocate(slack);
  assert.equal(Math.round(a[0] + a[1]), 1000);
  assert.ok(a[0] > a[1], 'CRITICAL gets more of the headroom');
});

test('what a step-capped service cannot take goes to the next in line', () => {
  const obs = pool(1000, [service({ priority: 0, demandTps: 900, limitTps: 100 }), service({ priority: 3, demandTps: 900, limitTps: 500 })]);
  const a = new FairPolicy().allocate(obs);
  assert.equal(Math.round(a[0]), 500); // max(100 x 1.8, floor 1000 / 2)
  assert.equal(Math.round(a[1]), 500);
});

test('inactive services are not guaranteed; guarantees shrink in priority order', () => {
  const obs = pool(250, [
    service({ priority: 2, minTps: 200 }),
    service({ priority: 0, minTps: 200 }),
    service({ priority: 1, minTps: 100, active: false }),
  ]);
  assert.deepEqual(Array.from(guarantees(obs), Math.round), [50, 200, 0]);
});

test('static splits by priority weight regardless of demand', () => {
  const obs = pool(1500, [service({ priority: 0 }), service({ priority: 1 }), service({ priority: 3 })]);
  assert.deepEqual(Array.from(new StaticPolicy().allocate(obs), Math.round), [923, 462, 115]);
});

/** guarantees() as first written: one pass per class to sum its minimums, one more to hand them out. */
function guaranteesByClass(obs: ReturnType<typeof pool>): number[] {
  const g = obs.services.map(() => 0);
  let left = obs.effectiveTps;
  for (let p = 0; p < 4; p++) {
    let want = 0;
    for (const s of obs.services) if (s.priority === p && s.active) want += s.minTps;
    if (want <= 0) continue;
    const f = Math.min(1, Math.max(0, left) / want);
    obs.services.forEach((s, i) => { if (s.priority === p && s.active) g[i] = s.minTps * f; });
    left -= want * f;
  }
  return g;
}

test('guarantees in two passes equal the class-by-class computation, to the bit (random pools, scarce and ample)', () => {
  let seed = 7;
  const next = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (let trial = 0; trial < 500; trial++) {
    const services = Array.from({ length: 1 + Math.floor(next() * 40) }, () => service({
      priority: Math.floor(next() * 4), active: next() < 0.6, minTps: next() < 0.2 ? 0 : next() * 300, limitTps: big,
    }));
    const obs = pool(next() < 0.5 ? next() * 2000 : next() * 20000, services);
    assert.deepEqual([...guarantees(obs)], guaranteesByClass(obs), `trial ${trial}`);
  }
});
