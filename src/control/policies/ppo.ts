// ppo: the trained model (../../ppo/model.ts) applied deterministically (the
// mean of its action distribution). Its scores per service become claims and
// the claims become shares of the effective capacity by priority
// water-filling. Synchronous on the thread that has the model (the simulator,
// training rollouts); the daemon computes the scores in a Piscina worker
// (../../ppo/ppo-pool.ts) and turns them into the allocation here.

import { ACTION_DIM, HEADROOM_SCALE, type PpoModel } from '../../ppo/model.ts';
import type { PoolObservation } from '../../ppo/observation.ts';
import type { PpoPool } from '../../ppo/ppo-pool.ts';
import { waterFill } from '../water-fill.ts';
import type { AllocationPolicy, PpoSource } from './types.ts';

export class PpoPolicy implements AllocationPolicy {
  readonly name = 'ppo';
  constructor(readonly model: PpoModel) {}
  allocate(obs: PoolObservation): Float64Array {
    return allocationFromScores(obs, this.model.meanScores(obs), this.model.policy.outputSize);
  }
}

/** PPO proposals computed on this thread (the simulator, inference 'inline'). */
export function inlinePpo(model: PpoModel): PpoSource {
  const policy = new PpoPolicy(model);
  return { version: model.version, infer: (obs) => policy.allocate(obs) };
}

/** PPO proposals from scores computed in the inference pool. */
export function pooledPpo(pool: PpoPool): PpoSource {
  return {
    get version() { return pool.version; },
    infer: async (obs) => {
      const { scores, dim } = await pool.scores(obs);
      return allocationFromScores(obs, scores, dim);
    },
  };
}

/**
 * A service's claim from its two scores (a, b): last tick's demand times the
 * headroom exp(HEADROOM_SCALE * tanh(a)), plus the share max(0, tanh(b)) of
 * its queue to drain this tick. Scores of 0 claim exactly the demand, as fair
 * does; the network learns where more or less pays (it sees the forecast,
 * trend, queue, priority and the pool context). A waiting backlog is not
 * always worth draining at once: a lower-priority queue that stays is what
 * keeps every granted token in use when demand is noisy.
 */
export function claimsFromScores(obs: PoolObservation, scores: ArrayLike<number>, dim = ACTION_DIM): Float64Array {
  return Float64Array.from(obs.services, (s, i) => {
    const headroom = Math.exp(HEADROOM_SCALE * Math.tanh(scores[i * dim]));
    const drain = dim > 1 ? Math.max(0, Math.tanh(scores[i * dim + 1])) : 0;
    return s.demandTps * headroom + drain * s.queue;
  });
}

export function allocationFromScores(obs: PoolObservation, scores: ArrayLike<number>, dim = ACTION_DIM): Float64Array {
  return waterFill(obs, claimsFromScores(obs, scores, dim));
}
