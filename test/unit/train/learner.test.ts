import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FEATURE_COUNT } from '../../../src/ppo/features.ts';
import { PpoModel } from '../../../src/ppo/model.ts';
import { gae, gaussianLogp, PpoLearner, type Step } from '../../../src/train/learner.ts';
import { Rng } from '../../../src/ppo/rng.ts';

test('GAE with lambda = 1 and no bootstrapping gives discounted returns', () => {
  const steps = [1, 2, 3].map((reward) => ({ x: new Float32Array(0), n: 1, a: new Float32Array(1), logp: new Float32Array(1), v: 0, reward, nextV: 0 }));
  const { ret } = gae(steps, 0.5, 1);
  assert.deepEqual(Array.from(ret), [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3]);
});

// A contextual bandit: feature 0 is a context c in {-1, +1}; the best action is 0.8 * c;
// reward = -(a - 0.8c)^2. PPO must learn to move the mean action to the target.
test('PPO learns a small known problem', () => {
  const rng = new Rng(3);
  const model = PpoModel.create([16], 1);
  model.policy.init(rng, 0.1);
  model.value.init(rng, 1);
  const learner = new PpoLearner(model, { gamma: 0.9, lambda: 0.9, clip: 0.2, epochs: 4, minibatch: 64, lr: 3e-3, valueCoef: 0.5, entropyCoef: 0, maxGradNorm: 1 });
  const meanError = (): number => {
    let e = 0;
    for (const c of [-1, 1]) {
      const x = new Float32Array(FEATURE_COUNT);
      x[0] = c;
      e += Math.abs(model.policy.forward(x, 1)[0] - 0.8 * c) / 2;
    }
    return e;
  };
  const before = meanError();
  for (let it = 0; it < 60; it++) {
    const steps: Step[] = [];
    for (let k = 0; k < 128; k++) {
      const c = rng.next() < 0.5 ? -1 : 1;
      const x = new Float32Array(FEATURE_COUNT);
      x[0] = c;
      const mu = model.policy.forward(x, 1)[0];
      const v = model.value.forward(x, 1)[0];
      const a = mu + Math.exp(model.logStd) * rng.normal();
      steps.push({ x, n: 1, a: Float32Array.of(a), logp: Float32Array.of(gaussianLogp(a, mu, model.logStd)), v, reward: -((a - 0.8 * c) ** 2), nextV: 0 });
    }
    const adv = Float64Array.from(steps, (s) => s.reward - s.v);
    const ret = Float64Array.from(steps, (s) => s.reward);
    learner.update(steps, adv, ret, rng);
  }
  const after = meanError();
  assert.ok(before > 0.5, `starts far from the target (${before})`);
  assert.ok(after < 0.15, `mean action error ${after} after training (was ${before})`);
});
