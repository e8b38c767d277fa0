import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
