import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DRIFT_RETRAIN_THRESHOLD, ModelDrift } from '../../../src/control/model-drift.ts';
import { FEATURE_COUNT, serviceFeatures } from '../../../src/ppo/features.ts';
import { Normalizer } from '../../../src/ppo/normalizer.ts';
import type { PoolObservation, ServiceObservation } from '../../../src/ppo/observation.ts';
import { Rng } from '../../../src/ppo/rng.ts';

/** A pool of 3 services at capacity 1000 whose demand is `demand` each. */
function pool(demand: number[], tick = 0): PoolObservation {
  const services: ServiceObservation[] = demand.map((d, i) => ({
    bucket: i + 1, key: `p/s${i}`, priority: i, minTps: 0, maxTps: 1000, demandTps: d, grantedTps: Math.min(d, 300), deniedTps: Math.max(0, d - 300),
    throttledTps: 0, queue: 0, inFlight: 0, latencyMs: 20, limitTps: 300, forecastTps: d, trendTps: 0, active: true,
  }));
  const total = demand.reduce((a, b) => a + b, 0);
  return { bucket: 0, key: 'p', tick, capacityTps: 1000, effectiveTps: 1000, totalDemandTps: total, throttledTps: 0, grantedTps: Math.min(total, 1000),
    stepCap: 1.8, stepFloorTps: 1, services };
}

const logs: string[] = [];
const logger = { warn: (_o: object, msg: string) => { logs.push(`warn ${msg}`); }, info: (_o: object, msg: string) => { logs.push(`info ${msg}`); } };

test('the drift score stays low on training-like traffic and crosses the retrain threshold when the traffic shifts', () => {
  const rng = new Rng(11);
  const traffic = (lo: number, hi: number): PoolObservation => pool([0, 1, 2].map(() => rng.uniform(lo, hi)));
  // The training distribution: demand 50..250 per service.
  const norm = new Normalizer(FEATURE_COUNT);
  for (let k = 0; k < 2000; k++) { const o = traffic(50, 250); norm.update(serviceFeatures(o), o.services.length); }
  const drift = new ModelDrift(logger, 50);
  drift.setReference(norm.state());
  for (let k = 0; k < 200; k++) drift.observe([traffic(50, 250)]);
  const calm = drift.status();
  assert.ok(calm.score < 0.5, `training-like traffic: ${calm.score}`);
  assert.equal(calm.retrainDue, false);
  assert.equal(calm.ticks, 200);

  // Demand four times higher: the demand features move by several training standard deviations.
  for (let k = 0; k < 200; k++) drift.observe([traffic(600, 1000)]);
  const shifted = drift.status();
  assert.ok(shifted.score > DRIFT_RETRAIN_THRESHOLD, `shifted traffic: ${shifted.score}`);
  assert.match(shifted.feature, /^(demand|forecast|denied|demand_above|demand_total)$/);
  assert.equal(shifted.retrainDue, true);
  assert.equal(logs.filter((l) => l.startsWith('warn model drift: retrain due')).length, 1, 'logged once');

  // Back to normal: the window forgets the shift and the alarm clears.
  for (let k = 0; k < 400; k++) drift.observe([traffic(50, 250)]);
  assert.ok(drift.status().score < 0.5);
  assert.equal(drift.status().retrainDue, false);
  assert.ok(logs.includes('info model drift back under control'));
});

test('no retrain is due before a window of ticks was seen, and nothing is measured without a model', () => {
  const drift = new ModelDrift(null, 100);
  drift.observe([pool([5000, 5000, 5000])]);
  assert.deepEqual(drift.status(), { score: 0, feature: '', ticks: 0, retrainDue: false, threshold: DRIFT_RETRAIN_THRESHOLD });
  const norm = new Normalizer(FEATURE_COUNT);
  const o = pool([100, 100, 100]);
  norm.update(serviceFeatures(o), 3);
  drift.setReference(norm.state());
  for (let k = 0; k < 99; k++) drift.observe([pool([900, 900, 900])]);
  assert.ok(drift.status().score > DRIFT_RETRAIN_THRESHOLD);
  assert.equal(drift.status().retrainDue, false, '99 ticks < the window');
  drift.observe([pool([900, 900, 900])]);
  assert.equal(drift.status().retrainDue, true);
});

test('the drift folds in, per feature, the very sums of serviceFeatures() rows, read from the columns (pools of 1 to 1 000 services)', async () => {
  const { poolFeatureSums } = await import('../../../src/control/model-drift.ts');
  const { columnsOf, handOver } = await import('../../../src/control/service-columns.ts');
  const rng = new Rng(31);
  for (let trial = 0; trial < 300; trial++) {
    const n = trial % 10 === 0 ? 1000 : rng.int(1, 64);
    const eff = rng.next() < 0.1 ? 0 : rng.uniform(1, 1e6);
    const services: ServiceObservation[] = Array.from({ length: n }, (_, i) => {
      const moving = rng.next() < (n > 64 ? 0.02 : 0.6);
      const odd = rng.next() < 0.03;
      return {
        bucket: i + 1, key: `p/s${i}`, priority: odd ? [4, -1, 1.5, NaN][rng.int(0, 3)] : rng.int(0, 3), minTps: rng.next() < 0.3 ? rng.uniform(0, 100) : 0,
        maxTps: rng.next() < 0.5 ? 1000 : rng.uniform(1, 1e7), demandTps: moving ? rng.uniform(0, 5000) : 0, grantedTps: moving ? rng.uniform(0, 5000) : 0,
        deniedTps: moving ? rng.uniform(0, 50) : 0, throttledTps: moving && rng.next() < 0.2 ? rng.uniform(0, 50) : 0, queue: moving ? rng.int(0, 100) : 0,
        inFlight: 0, latencyMs: moving ? rng.uniform(0, 900) : 0, limitTps: rng.uniform(0, 2e6), forecastTps: moving ? rng.uniform(0, 5000) : 0,
        trendTps: moving ? rng.uniform(-100, 100) : 0, active: moving,
      };
    });
    const obs: PoolObservation = { bucket: 0, key: 'p', tick: 0, capacityTps: rng.uniform(1, 2e6), effectiveTps: eff,
      totalDemandTps: services.reduce((a, s) => a + s.demandTps, 0), throttledTps: 0, grantedTps: 0, stepCap: 1.8, stepFloorTps: 1, services };
    const want = new Float64Array(FEATURE_COUNT);
    const x = serviceFeatures(obs);
    for (let r = 0; r < n; r++) for (let j = 0; j < FEATURE_COUNT; j++) want[j] += x[r * FEATURE_COUNT + j];
    const got = new Float64Array(FEATURE_COUNT);
    // From columns made of the objects, and from columns handed over from a previous list as the controller keeps them.
    poolFeatureSums(obs, columnsOf(services), got);
    const kept = handOver(null, services, null);
    const again = new Float64Array(FEATURE_COUNT);
    poolFeatureSums(obs, kept, again);
    for (let j = 0; j < FEATURE_COUNT; j++) {
      assert.ok(Object.is(got[j], want[j]), `trial ${trial}, feature ${j}: ${got[j]} != ${want[j]}`);
      assert.ok(Object.is(again[j], want[j]), `trial ${trial}, feature ${j} (kept columns)`);
    }
  }
});

/** A random service observation: moving (traffic) or at rest, odd priorities now and then, limits from a few. */
function randomService(rng: Rng, i: number, moving: boolean): ServiceObservation {
  const odd = rng.next() < 0.03;
  return {
    bucket: i + 1, key: `p/s${i}`, priority: odd ? [4, -1, 1.5, NaN][rng.int(0, 3)] : rng.int(0, 3), minTps: rng.next() < 0.3 ? [0, 5, 50][rng.int(0, 2)] : 0,
    maxTps: [1000, 5000, 1e7][rng.int(0, 2)], demandTps: moving ? rng.uniform(0, 5000) : 0, grantedTps: moving ? rng.uniform(0, 5000) : 0,
    deniedTps: moving && rng.next() < 0.5 ? rng.uniform(0, 50) : 0, throttledTps: moving && rng.next() < 0.2 ? rng.uniform(0, 50) : 0,
    queue: moving && rng.next() < 0.5 ? rng.int(0, 100) : 0, inFlight: 0, latencyMs: moving && rng.next() < 0.7 ? rng.uniform(0, 900) : 0,
    limitTps: [100, 1000, 2e6][rng.int(0, 2)], forecastTps: moving ? rng.uniform(0, 5000) : 0, trendTps: moving && rng.next() < 0.5 ? rng.uniform(-100, 100) : 0,
    active: moving,
  };
}

/** Per feature, the sums of serviceFeatures() rows of `obs`, each feature's rows in service order from 0. */
function rowSums(obs: PoolObservation): Float64Array {
  const want = new Float64Array(FEATURE_COUNT);
  const x = serviceFeatures(obs);
  for (let r = 0; r < obs.services.length; r++) for (let j = 0; j < FEATURE_COUNT; j++) want[j] += x[r * FEATURE_COUNT + j];
  return want;
}

test('a pool\'s feature sums stay the rows\' sums to the last bit over ticks of patched columns, as limits, rates and the capacity move', async () => {
  const { poolFeatureSums } = await import('../../../src/control/model-drift.ts');
  const { handOver } = await import('../../../src/control/service-columns.ts');
  const rng = new Rng(47);
  for (const n of [1, 7, 300]) {
    let services = Array.from({ length: n }, (_, i) => randomService(rng, i, rng.next() < 0.1));
    let columns = handOver(null, services, null);
    let eff = 1000;
    for (let tick = 0; tick < 200; tick++) {
      // A few entries rebuilt (traffic starts, stops or moves; now and then a limit or a rate), as ServiceObservations does.
      const next = services.slice();
      const positions = [...new Set(Array.from({ length: rng.int(0, Math.min(n, 12)) }, () => rng.int(0, n - 1)))].sort((a, b) => a - b);
      for (const i of positions) {
        const s = randomService(rng, i, rng.next() < 0.6);
        next[i] = rng.next() < 0.8 ? { ...s, priority: services[i].priority, minTps: services[i].minTps, maxTps: services[i].maxTps, limitTps: services[i].limitTps } : s;
      }
      if (rng.next() < 0.1) eff = rng.next() < 0.2 ? 0 : rng.uniform(1, 1e5);
      columns = handOver(services, next, Int32Array.from(positions));
      services = next;
      const obs: PoolObservation = { bucket: 0, key: 'p', tick, capacityTps: 1e5, effectiveTps: eff,
        totalDemandTps: services.reduce((a, s) => a + s.demandTps, 0), throttledTps: 0, grantedTps: 0, stepCap: 1.8, stepFloorTps: 1, services };
      const got = new Float64Array(FEATURE_COUNT);
      poolFeatureSums(obs, columns, got);
      const want = rowSums(obs);
      for (let j = 0; j < FEATURE_COUNT; j++) assert.ok(Object.is(got[j], want[j]), `n ${n}, tick ${tick}, feature ${j}: ${got[j]} != ${want[j]}`);
    }
  }
});

test('a tick\'s drift sums add each pool\'s sums in pool order: the rows\' sums in one run over every pool up to rounding', async () => {
  const { poolFeatureSums } = await import('../../../src/control/model-drift.ts');
  const { columnsOf } = await import('../../../src/control/service-columns.ts');
  const rng = new Rng(53);
  let worst = 0;
  for (let trial = 0; trial < 20; trial++) {
    const pools = Array.from({ length: 100 }, (_, p): PoolObservation => {
      const services = Array.from({ length: rng.int(1, 200) }, (_, i) => randomService(rng, i, rng.next() < 0.05));
      return { bucket: p, key: `p${p}`, tick: 0, capacityTps: 1e5, effectiveTps: rng.uniform(1, 1e5),
        totalDemandTps: services.reduce((a, s) => a + s.demandTps, 0), throttledTps: 0, grantedTps: 0, stepCap: 1.8, stepFloorTps: 1, services };
    });
    // Before: one running sum per feature over every pool's rows.
    const oneRun = new Float64Array(FEATURE_COUNT);
    for (const obs of pools) {
      const x = serviceFeatures(obs);
      for (let r = 0; r < obs.services.length; r++) for (let j = 0; j < FEATURE_COUNT; j++) oneRun[j] += x[r * FEATURE_COUNT + j];
    }
    // After: each pool's sums alone, then added in pool order, as ModelDrift.observe() does.
    const byPool = new Float64Array(FEATURE_COUNT);
    const own = new Float64Array(FEATURE_COUNT);
    for (const obs of pools) {
      poolFeatureSums(obs, columnsOf(obs.services), own);
      for (let j = 0; j < FEATURE_COUNT; j++) byPool[j] += own[j];
    }
    for (let j = 0; j < FEATURE_COUNT; j++) {
      const scale = Math.max(1, Math.abs(oneRun[j]));
      worst = Math.max(worst, Math.abs(byPool[j] - oneRun[j]) / scale);
    }
  }
  // 100 pools of up to 200 rows, figures up to 5: a few units in the last place of the sums, no more.
  assert.ok(worst < 1e-13, `largest relative difference ${worst}`);
});
