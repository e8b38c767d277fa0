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
