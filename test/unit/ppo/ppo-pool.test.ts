import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PpoPolicy, pooledPpo } from '../../../src/control/policies/ppo.ts';
import { PpoPool } from '../../../src/ppo/ppo-pool.ts';
import { PpoModel } from '../../../src/ppo/model.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { pool, service } from '../control/helpers.ts';
import { tempDir } from '../../fixtures/temp-dir.ts';

function writeModel(path: string, seed: number): PpoModel {
  const m = PpoModel.create([8, 8]);
  m.policy.init(new Rng(seed), 1);
  m.value.init(new Rng(seed + 1));
  writeFileSync(path, JSON.stringify(m.toJson({}, {})));
  return PpoModel.load(path);
}

test('PPO inference runs in a Piscina worker through the .mjs bootstrap and reloads', async () => {
  const dir = tempDir('tpsd-ppo-');
  const path = join(dir, 'model.json');
  const first = writeModel(path, 1);
  const obs = pool(1000, [service({ priority: 0, demandTps: 300, limitTps: 400 }), service({ priority: 3, demandTps: 900, limitTps: 500, queue: 50 })]);
  const inference = new PpoPool(path, first.version);
  const remote = pooledPpo(inference);
  try {
    const got = await remote.infer(obs);
    assert.deepEqual(Array.from(got), Array.from(new PpoPolicy(first).allocate(obs)));
    const second = writeModel(path, 7);
    inference.reload(second.version);
    const after = await remote.infer(obs);
    assert.deepEqual(Array.from(after), Array.from(new PpoPolicy(second).allocate(obs)));
  } finally {
    await inference.close();
  }
});

test('a tick\'s worth of pools posted to the worker at once are each answered with their own allocation', async () => {
  const dir = tempDir('tpsd-ppo-');
  const path = join(dir, 'model.json');
  const model = writeModel(path, 3);
  const rng = new Rng(5);
  const pools = Array.from({ length: 150 }, () => pool(rng.uniform(500, 5000), Array.from({ length: rng.int(1, 12) }, () =>
    service({ priority: rng.int(0, 3), demandTps: rng.next() < 0.3 ? 0 : rng.uniform(0, 900), limitTps: rng.uniform(50, 900), queue: rng.int(0, 3) * 10 }))));
  const inference = new PpoPool(path, model.version);
  const remote = pooledPpo(inference);
  try {
    const got = await Promise.all(pools.map((obs) => remote.infer(obs)));
    const inline = new PpoPolicy(model);
    pools.forEach((obs, k) => assert.deepEqual(Array.from(got[k]), Array.from(inline.allocate(obs)), `pool ${k}`));
  } finally {
    await inference.close();
  }
});
