// PPO scores only the services that can claim (src/control/policies/ppo.ts):
// its allocation equals, bit for bit, the one from scoring every service of
// the pool (model.meanScores over the whole observation, then
// allocationFromScores, as before), inline and through the Piscina worker, on
// seeded random pools of 1 to 64 services (the simulator's and training's)
// and of 1 000 with few moving, with the shipped model and a random one.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PpoPolicy, allocationFromScores, claimants, pooledPpo } from '../../../src/control/policies/ppo.ts';
import { columnsOf } from '../../../src/control/service-columns.ts';
import { DEFAULT_MODEL_PATH, PpoModel } from '../../../src/ppo/model.ts';
import type { PoolObservation, ServiceObservation } from '../../../src/ppo/observation.ts';
import { PpoPool } from '../../../src/ppo/ppo-pool.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { pool, service } from './helpers.ts';

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: entry ${i}: ${a[i]} != ${b[i]}`);
}

/** A pool of n services, a share of them moving (demand, queue, forecast, latency), the rest resting. */
function randomPool(rng: Rng, n: number, movingShare: number): PoolObservation {
  const eff = rng.uniform(10, n * 1500);
  const services: ServiceObservation[] = Array.from({ length: n }, (_, i) => {
    const bounds = { bucket: i + 1, priority: rng.int(0, 3), maxTps: rng.next() < 0.5 ? 1000 : rng.uniform(1, eff),
      limitTps: rng.uniform(0, eff / 4), minTps: rng.next() < 0.3 ? rng.uniform(0, eff / n) : 0 };
    if (rng.next() >= movingShare) return service({ ...bounds, active: rng.next() < 0.1 });
    const demandTps = rng.next() < 0.8 ? rng.uniform(0, eff / 4) : 0;
    return service({ ...bounds, demandTps, grantedTps: demandTps * rng.next(), queue: rng.next() < 0.4 ? rng.int(0, 200) : 0,
      forecastTps: demandTps * rng.uniform(0.5, 1.5), trendTps: rng.uniform(-5, 5), latencyMs: rng.uniform(0, 300), active: true });
  });
  return pool(eff, services);
}

/** The allocation as computed before: every service scored, then claims and the water-fill. */
function everyRow(model: PpoModel, obs: PoolObservation): Float64Array {
  return allocationFromScores(obs, model.meanScores(obs), model.policy.outputSize);
}

function randomModel(seed: number): PpoModel {
  const m = PpoModel.create([16, 16]);
  m.policy.init(new Rng(seed), 1);
  m.value.init(new Rng(seed + 1));
  return PpoModel.fromJson(JSON.parse(JSON.stringify(m.toJson({}, {}))));
}

test('PPO scoring only the claimants allocates as scoring every service, bit for bit (inline, 1..64 and 1 000 services)', () => {
  const rng = new Rng(21);
  for (const model of [PpoModel.load(DEFAULT_MODEL_PATH), randomModel(5)]) {
    const policy = new PpoPolicy(model);
    for (let trial = 0; trial < 400; trial++) {
      const obs = randomPool(rng, rng.int(1, 64), rng.next());
      sameBits(policy.allocate(obs), everyRow(model, obs), `${model.version}, small trial ${trial}`);
    }
    for (let trial = 0; trial < 20; trial++) {
      const obs = randomPool(rng, 1000, rng.uniform(0, 0.03));
      const rows = claimants(columnsOf(obs.services));
      assert.ok(rows.length < 60, `few claimants: ${rows.length}`);
      sameBits(policy.allocate(obs), everyRow(model, obs), `${model.version}, large trial ${trial}`);
    }
  }
});

test('a pool with no claimant: every claim 0, as when every service is scored', () => {
  const model = PpoModel.load(DEFAULT_MODEL_PATH);
  const obs = pool(1000, [service({ priority: 0, minTps: 100 }), service({ priority: 3, limitTps: 200, active: false })]);
  assert.equal(claimants(columnsOf(obs.services)).length, 0);
  sameBits(new PpoPolicy(model).allocate(obs), everyRow(model, obs), 'no claimant');
});

test('the Piscina worker, shown only the claimants, answers as the whole pool scored inline', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpsd-ppo-claimants-'));
  const path = join(dir, 'model.json');
  const model = randomModel(9);
  writeFileSync(path, JSON.stringify(model.toJson({}, {})));
  const inference = new PpoPool(path, model.version);
  const remote = pooledPpo(inference);
  const rng = new Rng(22);
  try {
    for (let trial = 0; trial < 12; trial++) {
      const obs = randomPool(rng, trial % 3 === 0 ? 1000 : rng.int(1, 64), trial % 3 === 0 ? 0.02 : rng.next());
      sameBits(await remote.infer(obs), everyRow(model, obs), `trial ${trial}`);
    }
  } finally {
    await inference.close();
  }
});
