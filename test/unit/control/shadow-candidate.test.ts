import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Controller } from '../../../src/control/controller.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { DEFAULT_MODEL_PATH, PpoModel } from '../../../src/ppo/model.ts';
import { parseScenario } from '../../../src/sim/scenario.ts';
import { scenarioConfig } from '../../../src/sim/simulator.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm, C_GRANTED_INDEX, C_REQUESTED_INDEX } from '../../../src/shm/layout.ts';
import { tempDir } from '../../fixtures/daemon.ts';

const scenario = parseScenario({
  name: 't', duration_s: 10, capacity_tps: 1000,
  services: [
    { name: 'a', priority: 'CRITICAL', min_tps: 100, demand: { kind: 'constant', tps: 300 } },
    { name: 'b', priority: 'LOW', demand: { kind: 'constant', tps: 900 } },
  ],
});

/** A candidate: the shipped model with another output bias (so another version). */
function candidateFile(): { path: string; version: string } {
  const shipped = PpoModel.load();
  shipped.policy.params[shipped.policy.params.length - 1] += 0.5;
  const file = shipped.toJson({}, {}, '2026-01-01T00:00:00.000Z');
  const path = join(tempDir(), 'candidate.json');
  writeFileSync(path, JSON.stringify(file));
  return { path, version: file.model_version };
}

function controllerFor(mode: TpsdConfig['policy']['mode'], shadowModel: string) {
  const base = scenarioConfig(scenario, mode);
  const config: TpsdConfig = { ...base, policy: { ...base.policy, model: null, shadow_model: shadowModel } };
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const clock = new ManualClock();
  BucketTable.initialize(views, keys, 0);
  const io = new BucketTable(views, clock, 0);
  const controller = new Controller(views, keys, config, clock, { inference: 'inline' });
  const second = async (): Promise<void> => {
    io.count(keys.lookup('sim/a'), C_REQUESTED_INDEX, 300); io.count(keys.lookup('sim/a'), C_GRANTED_INDEX, 300);
    io.count(keys.lookup('sim/b'), C_REQUESTED_INDEX, 900); io.count(keys.lookup('sim/b'), C_GRANTED_INDEX, 700);
    clock.advance(1000);
    await controller.tick();
  };
  return { controller, second };
}

test('shadow mode runs policy.shadow_model beside fair and reports its regret; drift is measured against it', async () => {
  const cand = candidateFile();
  const { controller, second } = controllerFor('shadow', cand.path);
  assert.equal(controller.modelPath, cand.path);
  assert.equal(controller.modelVersion, cand.version);
  for (let k = 0; k < 3; k++) await second();
  assert.equal(controller.last[0].decision.applied, 'fair');
  assert.ok(controller.last[0].decision.shadow !== null, 'the candidate proposed');
  assert.ok(typeof controller.last[0].shadowRegret === 'number' && Number.isFinite(controller.status().shadowRegret));
  assert.equal(controller.drift.status().ticks, 3);
  await controller.close();
});

test('outside shadow mode policy.shadow_model is not used', async () => {
  const cand = candidateFile();
  const { controller } = controllerFor('ppo', cand.path);
  assert.equal(controller.modelPath, DEFAULT_MODEL_PATH);
  assert.equal(controller.modelVersion, PpoModel.load().version);
  await controller.close();
});
