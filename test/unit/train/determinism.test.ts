import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateScenario } from '../../../src/sim/scenario-gen.ts';
import { HELD_OUT_SEED_BASE, train, type TrainOptions } from '../../../src/train/trainer.ts';
import { PpoModel } from '../../../src/ppo/model.ts';

// A short training run, twice, with different worker counts (so a different
// chunking and scheduling of the rollouts): the model files must be the same
// bytes. Before: `created` was the wall clock and the exploration seeds were
// drawn per worker chunk, so two runs differed.
const options = (workers: number): TrainOptions => ({
  iterations: 2, episodesPerIteration: 3, durationS: 20, workers, seed: 7, hidden: [8], evalEvery: 1,
  reportScenarios: [generateScenario(5, { durationS: 20, maxServices: 4 })], heldOut: 2, timeBudgetS: 1e6,
  out: null, command: 'test', log: () => {},
});

test('a short training run gives the same bytes twice, whatever the worker count', async () => {
  const a = await train(options(1));
  const b = await train(options(3));
  assert.equal(JSON.stringify(b.file), JSON.stringify(a.file));
  const meta = a.file.metadata as Record<string, unknown>;
  assert.equal(meta.command, 'test');
  assert.match(String(meta.commit), /^[0-9a-f]{40}(\+dirty)?$/);
  const inputs = meta.inputs_sha256 as Record<string, string>;
  for (const k of ['code', 'recipe', 'training_episodes', 'held_out', 'reported']) assert.match(inputs[k], /^[0-9a-f]{64}$/, k);
  // Checkpoints chosen on held-out episodes only; the reported scenario is recorded apart.
  const ev = a.file.eval as { held_out: { reward: Record<string, unknown> }; reported: { reward: Record<string, unknown> } };
  assert.deepEqual(Object.keys(ev.held_out.reward), [`gen-${HELD_OUT_SEED_BASE}`, `gen-${HELD_OUT_SEED_BASE + 1}`]);
  assert.deepEqual(Object.keys(ev.reported.reward), ['gen-5']);
  assert.equal(PpoModel.fromJson(a.file).version, a.file.model_version);
});

test('another seed gives another model', async () => {
  const a = await train(options(2));
  const b = await train({ ...options(2), seed: 8 });
  assert.notEqual(b.file.model_version, a.file.model_version);
  assert.notEqual((b.file.metadata as { inputs_sha256_all: string }).inputs_sha256_all, (a.file.metadata as { inputs_sha256_all: string }).inputs_sha256_all);
});
