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
