// static: a fixed split of the effective capacity by priority weight
// (8:4:2:1), capped at max_tps with the excess passed on; demand is ignored.

import type { PoolObservation } from '../../ppo/observation.ts';
import { PRIORITY_WEIGHTS } from '../water-fill.ts';
import type { AllocationPolicy } from './types.ts';

/** Splits `total` in proportion to `weights`, each capped, the excess redistributed. */
export function weightedSplit(total: number, weights: ArrayLike<number>, caps: ArrayLike<number>): Float64Array {
  const n = weights.length;
  const out = new Float64Array(n);
  let open: number[] = [];
  for (let i = 0; i < n; i++) if (weights[i] > 0 && caps[i] > 0) open.push(i);
  let left = total;
  while (left > 1e-9 && open.length > 0) {
    let wsum = 0;
    for (const i of open) wsum += weights[i];
    let used = 0;
    for (const i of open) {
      const add = Math.min((left * weights[i]) / wsum, caps[i] - out[i]);
      out[i] += add;
      used += add;
    }
    left -= used;
    open = open.filter((i) => caps[i] - out[i] > 1e-9);
  }
  return out;
}

export class StaticPolicy implements AllocationPolicy {
  readonly name = 'static';
  readonly inputs = 'limits';
  allocate(obs: PoolObservation): Float64Array {
    const n = obs.services.length;
    const weights = new Float64Array(n);
    const caps = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = obs.services[i];
      weights[i] = PRIORITY_WEIGHTS[s.priority] ?? 1;
      caps[i] = s.maxTps;
    }
    return weightedSplit(obs.effectiveTps, weights, caps);
  }
}
