// The exploring PPO policy used while collecting rollouts (one per episode,
// in a rollout worker): samples each service's score from the Gaussian around
// the policy's mean and records what the learner needs (normalised and raw
// features, sampled scores and their log-probabilities, n x ACTION_DIM each,
// and the value estimate).

import type { PoolObservation } from '../ppo/observation.ts';
import type { PpoSource } from '../control/policy-runner.ts';
import { serviceFeatures } from '../ppo/features.ts';
import type { PpoModel } from '../ppo/model.ts';
import { allocationFromScores } from '../control/policies/ppo.ts';
import { gaussianLogp } from './learner.ts';
import type { Rng } from '../ppo/rng.ts';

export interface Recorded {
  x: Float32Array;
  raw: Float32Array;
  n: number;
  a: Float32Array;
  logp: Float32Array;
  v: number;
}

export class SamplingSource implements PpoSource {
  readonly version = 'training';
  readonly steps: Recorded[] = [];

  constructor(private readonly model: PpoModel, private readonly rng: Rng, private readonly explore = true) {}

  infer(obs: PoolObservation): Float64Array {
    const n = obs.services.length;
    const raw = serviceFeatures(obs);
    const x = this.model.norm.apply(Float32Array.from(raw), n);
    const mu = this.model.policy.forward(x, n);
    const values = this.model.value.forward(x, n);
    const std = Math.exp(this.model.logStd);
    const dim = this.model.policy.outputSize;
    const a = new Float32Array(n * dim);
    const logp = new Float32Array(n * dim);
    for (let k = 0; k < n * dim; k++) {
      a[k] = this.explore ? mu[k] + std * this.rng.normal() : mu[k];
      logp[k] = gaussianLogp(a[k], mu[k], this.model.logStd);
    }
    let v = 0;
    for (let i = 0; i < n; i++) v += values[i];
    this.steps.push({ x, raw, n, a, logp, v: v / n });
    return allocationFromScores(obs, a, dim);
  }
}
