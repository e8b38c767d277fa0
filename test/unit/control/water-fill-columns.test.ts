// The water-fill over the services' columns (src/control/water-fill.ts, with
// service-columns.ts) against the water-fill as it was before it read
// columns (kept below, verbatim but for names, as the reference): on seeded
// random pools, small ones as the simulator and training make and large
// ones (1 000 services, few active), both give the same guarantees, bounds,
// value factors and allocations to the last bit (Object.is: -0 and NaN
// included). Also with columns patched from a previous list (handOver), as
// the controller's awake pools have them, and for fair and PPO's claims.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FairPolicy } from '../../../src/control/policies/fair.ts';
import { columnsOf, handOver } from '../../../src/control/service-columns.ts';
import { guarantees, upperBounds, valueFactors, waterFill } from '../../../src/control/water-fill.ts';
import type { PoolObservation, ServiceObservation } from '../../../src/ppo/observation.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { pool, service } from './helpers.ts';

// ---- The reference: water-fill.ts before columns (commit 4065be6). ----
const REF_WEIGHTS = [8, 4, 2, 1] as const;
function refIsClass(priority: number): boolean {
  return priority === (priority | 0) && priority >= 0 && priority < REF_WEIGHTS.length;
}
function refGuarantees(obs: PoolObservation): Float64Array {
  const n = obs.services.length;
  const g = new Float64Array(n);
  const want = [0, 0, 0, 0];
  let anyActive = false;
  for (let i = 0; i < n; i++) {
    const s = obs.services[i];
    if (s.active && refIsClass(s.priority)) { want[s.priority] += s.minTps; anyActive = true; }
  }
  if (!anyActive) return g;
  const share = [0, 0, 0, 0];
  let left = obs.effectiveTps;
  for (let p = 0; p < REF_WEIGHTS.length; p++) {
    if (want[p] <= 0) continue;
    share[p] = Math.min(1, Math.max(0, left) / want[p]);
    left -= want[p] * share[p];
  }
  for (let i = 0; i < n; i++) {
    const s = obs.services[i];
    if (s.active && refIsClass(s.priority) && !(want[s.priority] <= 0)) g[i] = s.minTps * share[s.priority];
  }
  return g;
}
function refFillEqual(alloc: Float64Array, cap: Float64Array, members: number[], budget: number): number {
  let open = members.filter((i) => cap[i] - alloc[i] > 1e-9);
  while (budget > 1e-9 && open.length > 0) {
    const share = budget / open.length;
    let used = 0;
    for (const i of open) {
      const add = Math.min(share, cap[i] - alloc[i]);
      alloc[i] += add;
      used += add;
    }
    budget -= used;
    open = open.filter((i) => cap[i] - alloc[i] > 1e-9);
  }
  return budget;
}
function refUpperBounds(obs: PoolObservation, g: Float64Array): Float64Array {
  return Float64Array.from(obs.services, (s, i) =>
    Math.max(g[i], Math.min(s.maxTps, Math.max(s.limitTps * obs.stepCap, obs.stepFloorTps))));
}
function refFillByValue(alloc: Float64Array, cap: Float64Array, members: number[], values: ArrayLike<number>, budget: number): number {
  const order = [...new Set(members.map((i) => values[i]))].sort((a, b) => b - a);
  for (const v of order) {
    if (budget <= 1e-9) break;
    budget = refFillEqual(alloc, cap, members.filter((i) => values[i] === v), budget);
  }
  return budget;
}
function refValueFactors(obs: PoolObservation, values: ArrayLike<number>): Float64Array {
  const sum = [0, 0, 0, 0];
  const count = [0, 0, 0, 0];
  obs.services.forEach((s, i) => { if (refIsClass(s.priority)) { sum[s.priority] += values[i]; count[s.priority]++; } });
  return Float64Array.from(obs.services, (s, i) =>
    (refIsClass(s.priority) && sum[s.priority] > 0 ? (values[i] * count[s.priority]) / sum[s.priority] : 1));
}
function refWaterFill(obs: PoolObservation, claims: ArrayLike<number>, values: ArrayLike<number> | null = null): Float64Array {
  const n = obs.services.length;
  const alloc = refGuarantees(obs);
  const upper = refUpperBounds(obs, alloc);
  let left = obs.effectiveTps;
  for (let i = 0; i < n; i++) left -= alloc[i];
  const cap = new Float64Array(n);
  for (let i = 0; i < n; i++) cap[i] = Math.max(alloc[i], Math.min(upper[i], claims[i]));
  for (let p = 0; p < REF_WEIGHTS.length && left > 1e-9; p++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (obs.services[i].priority === p) members.push(i);
    left = values === null ? refFillEqual(alloc, cap, members, left) : refFillByValue(alloc, cap, members, values, left);
  }
  if (left > 1e-9) {
    const weight = Float64Array.from(obs.services, (s) => REF_WEIGHTS[s.priority] ?? 1);
    if (values !== null) refValueFactors(obs, values).forEach((f, i) => { weight[i] *= f; });
    cap.set(upper);
    let open: number[] = [];
    for (let i = 0; i < n; i++) if (cap[i] - alloc[i] > 1e-9) open.push(i);
    while (left > 1e-9 && open.length > 0) {
      let wsum = 0;
      for (const i of open) wsum += weight[i];
      if (!(wsum > 0)) {
        for (const i of open) weight[i] = 1;
        wsum = open.length;
      }
      let used = 0;
      for (const i of open) {
        const add = Math.min((left * weight[i]) / wsum, cap[i] - alloc[i]);
        alloc[i] += add;
        used += add;
      }
      left -= used;
      open = open.filter((i) => cap[i] - alloc[i] > 1e-9);
    }
  }
  return alloc;
}
// ---- end of the reference ----

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: entry ${i}: ${a[i]} != ${b[i]}`);
}

/** A random service: a quiet one (the resting observation of an idle service), or one that moves. */
function randomService(rng: Rng, i: number, eff: number, n: number, moving: boolean, odd: boolean): ServiceObservation {
  // Pools of 1 000 look like the memory benchmark's: many services of a few shapes (same class, max and limit).
  const priority = odd && rng.next() < 0.05 ? [4, -1, 1.5, NaN][rng.int(0, 3)] : rng.int(0, 3);
  const maxTps = rng.next() < 0.5 ? [1000, 1e6, 50][rng.int(0, 2)] : rng.uniform(1, eff);
  const limitTps = rng.next() < 0.3 ? [0, 1000, eff / n][rng.int(0, 2)] : rng.uniform(0, eff);
  if (!moving) return service({ bucket: i + 1, priority, maxTps, limitTps, minTps: rng.next() < 0.2 ? rng.uniform(0, 50) : 0, active: false });
  return service({
    bucket: i + 1, priority, maxTps, limitTps, minTps: rng.next() < 0.4 ? rng.uniform(0, (eff / n) * 3) : 0,
    demandTps: rng.next() < 0.8 ? rng.uniform(0, eff / 4) : 0, queue: rng.next() < 0.3 ? rng.int(0, 50) : 0, active: rng.next() < 0.9,
  });
}

function randomPoolOf(rng: Rng, n: number, movingShare: number, odd = false): PoolObservation {
  const eff = rng.next() < 0.2 ? [0, 1e-10, 1e6][rng.int(0, 2)] : rng.uniform(10, n * 1500);
  const services = Array.from({ length: n }, (_, i) => randomService(rng, i, Math.max(1, eff), n, rng.next() < movingShare, odd));
  const stepCap = rng.next() < 0.2 ? Number.MAX_VALUE : rng.uniform(1, 3);
  return pool(eff, services, { stepCap, stepFloorTps: Math.max(0.05 * eff, eff / n) });
}

function checkPool(obs: PoolObservation, rng: Rng, what: string): void {
  const n = obs.services.length;
  const g = guarantees(obs);
  sameBits(g, refGuarantees(obs), `${what}: guarantees`);
  sameBits(upperBounds(obs, g), refUpperBounds(obs, g), `${what}: upper bounds`);
  const demand = obs.services.map((s) => s.demandTps);
  sameBits(waterFill(obs, demand), refWaterFill(obs, demand), `${what}: fill of demand`);
  sameBits(new FairPolicy().allocate(obs), refWaterFill(obs, demand), `${what}: fair`);
  const claims = Float64Array.from(obs.services, (s) => (rng.next() < 0.05 ? NaN : s.demandTps * rng.uniform(0.5, 2) + s.queue));
  sameBits(waterFill(obs, claims), refWaterFill(obs, claims), `${what}: fill of claims`);
  const values = Float64Array.from({ length: n }, () => (rng.next() < 0.3 ? 0 : rng.int(0, 3) * 0.5));
  sameBits(valueFactors(obs, values), refValueFactors(obs, values), `${what}: value factors`);
  sameBits(waterFill(obs, claims, values), refWaterFill(obs, claims, values), `${what}: fill by value`);
}

test('the water-fill over columns equals the reference bit for bit on small random pools (1 to 64 services)', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 2000; trial++) checkPool(randomPoolOf(rng, rng.int(1, 64), rng.next(), trial % 5 === 0), rng, `trial ${trial}`);
});

test('the water-fill over columns equals the reference bit for bit on pools of 1 000 services, few active', () => {
  const rng = new Rng(12);
  for (let trial = 0; trial < 60; trial++) checkPool(randomPoolOf(rng, 1000, rng.uniform(0, 0.03), trial % 4 === 0), rng, `trial ${trial}`);
});

test('columns patched from the last list (handOver) give the same results as columns made from the objects', () => {
  const rng = new Rng(13);
  let obs = randomPoolOf(rng, 1000, 0.01);
  let prev: readonly ServiceObservation[] | null = null;
  for (let tick = 0; tick < 40; tick++) {
    const services: ServiceObservation[] = prev === null ? [...obs.services] : prev.slice();
    const positions = prev === null ? null : Int32Array.from(new Set(Array.from({ length: rng.int(0, 30) }, () => rng.int(0, 999)))).sort();
    for (const i of positions ?? []) services[i] = randomService(rng, i, obs.effectiveTps, 1000, rng.next() < 0.7, false);
    const c = handOver(prev, services, positions);
    assert.equal(columnsOf(services), c, 'the kept columns are found by their list');
    obs = { ...obs, services };
    checkPool(obs, rng, `tick ${tick}`);
    sameBits(c.demandTps, services.map((s) => s.demandTps), `tick ${tick}: demand column`);
    sameBits(c.limitTps, services.map((s) => s.limitTps), `tick ${tick}: limit column`);
    if (prev !== null) assert.notEqual(columnsOf(prev), c, 'the last list no longer has the columns handed over');
    prev = services;
  }
});
