// Proximal Policy Optimisation (trainer thread): GAE advantages, the clipped
// surrogate per service and score (every service of a pool is an agent
// sharing the pool's reward and advantage, so pools of any size train the
// same weights),
// a value loss, an entropy bonus on the shared log standard deviation, and
// Adam on the policy and value networks.

import { Adam } from './adam.ts';
import type { PpoModel } from '../ppo/model.ts';
import type { Rng } from '../ppo/rng.ts';

/** One pool decision: normalised features of its n services, sampled scores and old log-probs (n x D), value. */
export interface Step {
  x: Float32Array;
  n: number;
  a: Float32Array;
  logp: Float32Array;
  v: number;
  reward: number;
  /** Value of the next state for bootstrapping; 0 when the episode ended. */
  nextV: number;
}

export interface PpoHyper {
  gamma: number;
  lambda: number;
  clip: number;
  epochs: number;
  minibatch: number;
  lr: number;
  valueCoef: number;
  entropyCoef: number;
  maxGradNorm: number;
}

export const DEFAULT_HYPER: PpoHyper = {
  gamma: 0.95, lambda: 0.9, clip: 0.2, epochs: 4, minibatch: 256, lr: 5e-4,
  valueCoef: 0.5, entropyCoef: 0.003, maxGradNorm: 1,
};

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

export function gaussianLogp(a: number, mu: number, logStd: number): number {
  const z = (a - mu) / Math.exp(logStd);
  return -0.5 * z * z - logStd - LOG_SQRT_2PI;
}

/** GAE over one episode's steps (in order): advantages and returns. */
export function gae(steps: readonly Step[], gamma: number, lambda: number): { adv: Float64Array; ret: Float64Array } {
  const T = steps.length;
  const adv = new Float64Array(T);
  const ret = new Float64Array(T);
  let last = 0;
  for (let t = T - 1; t >= 0; t--) {
    const s = steps[t];
    const delta = s.reward + gamma * s.nextV - s.v;
    last = delta + gamma * lambda * (t === T - 1 ? 0 : last);
    adv[t] = last;
    ret[t] = last + s.v;
  }
  return { adv, ret };
}

export interface UpdateStats { policyLoss: number; valueLoss: number; entropy: number; clipFrac: number }

export class PpoLearner {
  private readonly piOpt: Adam;
  private readonly vOpt: Adam;
  private logStdM = 0;
  private logStdV = 0;
  private t = 0;

  constructor(readonly model: PpoModel, readonly h: PpoHyper = DEFAULT_HYPER) {
    this.piOpt = new Adam(model.policy.params, h.lr);
    this.vOpt = new Adam(model.value.params, h.lr);
  }

  /** Several epochs of minibatch updates over the steps (adv/ret from gae()). */
  update(steps: Step[], adv: Float64Array, ret: Float64Array, rng: Rng): UpdateStats {
    let mean = 0;
    for (const a of adv) mean += a;
    mean /= Math.max(1, adv.length);
    let sd = 0;
    for (const a of adv) sd += (a - mean) ** 2;
    sd = Math.sqrt(sd / Math.max(1, adv.length)) + 1e-8;
    const nadv = Float64Array.from(adv, (a) => (a - mean) / sd);
    const idx = steps.map((_, i) => i);
    const stats: UpdateStats = { policyLoss: 0, valueLoss: 0, entropy: 0, clipFrac: 0 };
    let batches = 0;
    for (let e = 0; e < this.h.epochs; e++) {
      for (let i = idx.length - 1; i > 0; i--) { const j = Math.floor(rng.next() * (i + 1)); [idx[i], idx[j]] = [idx[j], idx[i]]; }
      for (let b = 0; b < idx.length; b += this.h.minibatch) {
        const s = this.minibatch(idx.slice(b, b + this.h.minibatch).map((k) => steps[k]),
          idx.slice(b, b + this.h.minibatch).map((k) => nadv[k]), idx.slice(b, b + this.h.minibatch).map((k) => ret[k]));
        stats.policyLoss += s.policyLoss; stats.valueLoss += s.valueLoss; stats.entropy += s.entropy; stats.clipFrac += s.clipFrac;
        batches++;
      }
    }
    for (const k of Object.keys(stats) as (keyof UpdateStats)[]) stats[k] /= Math.max(1, batches);
    return stats;
  }

  private minibatch(steps: Step[], adv: number[], ret: number[]): UpdateStats {
    const { policy, value } = this.model;
    const F = policy.inputSize;
    let rows = 0;
    for (const s of steps) rows += s.n;
    const x = new Float32Array(rows * F);
    let r = 0;
    for (const s of steps) { x.set(s.x, r * F); r += s.n; }
    policy.zeroGrad();
    value.zeroGrad();
    const mu = policy.forward(x, rows);
    const v = value.forward(x, rows);
    const D = policy.outputSize;
    const dMu = new Float32Array(rows * D);
    const dV = new Float32Array(rows);
    const logStd = this.model.logStd;
    const var_ = Math.exp(2 * logStd);
    let dLogStd = 0;
    let pl = 0, vl = 0, clipped = 0;
    r = 0;
    const T = steps.length;
    for (let t = 0; t < T; t++) {
      const s = steps[t];
      const A = adv[t];
      let V = 0;
      for (let i = 0; i < s.n; i++) V += v[r + i];
      V /= s.n;
      const err = V - ret[t];
      vl += err * err;
      for (let i = 0; i < s.n * D; i++) {
        const k = r * D + i;
        const logp = gaussianLogp(s.a[i], mu[k], logStd);
        const ratio = Math.exp(logp - s.logp[i]);
        const unclipped = ratio * A;
        const clippedV = Math.min(Math.max(ratio, 1 - this.h.clip), 1 + this.h.clip) * A;
        pl -= Math.min(unclipped, clippedV) / (s.n * D);
        if (unclipped <= clippedV) {
          // d(-ratio*A)/d(logp) = -ratio*A, averaged over the pool's scores and the batch.
          const g = (-ratio * A) / (s.n * D) / T;
          const diff = s.a[i] - mu[k];
          dMu[k] = (g * diff) / var_;
          dLogStd += g * ((diff * diff) / var_ - 1);
        } else clipped++;
      }
      for (let i = 0; i < s.n; i++) dV[r + i] = (this.h.valueCoef * 2 * err) / s.n / T;
      r += s.n;
    }
    dLogStd -= this.h.entropyCoef; // d(-c * H per service)/d(logStd) = -c
    policy.backward(dMu);
    value.backward(dV);
    this.piOpt.step(policy.grads, this.h.maxGradNorm);
    this.vOpt.step(value.grads, this.h.maxGradNorm);
    // Adam on the scalar log std, bounded so exploration never collapses or explodes.
    this.t++;
    this.logStdM = 0.9 * this.logStdM + 0.1 * dLogStd;
    this.logStdV = 0.999 * this.logStdV + 0.001 * dLogStd * dLogStd;
    const step = (this.h.lr * (this.logStdM / (1 - 0.9 ** this.t))) / (Math.sqrt(this.logStdV / (1 - 0.999 ** this.t)) + 1e-8);
    this.model.logStd = Math.min(0.5, Math.max(-2.5, logStd - step));
    return { policyLoss: pl / T, valueLoss: vl / T, entropy: 0.5 + LOG_SQRT_2PI + logStd, clipFrac: clipped / (rows * D) };
  }
}
