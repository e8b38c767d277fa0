// aimd: additive increase, multiplicative decrease per service, as TCP does.
// A service that uses (nearly) all of its limit grows by a step weighted by
// its priority; one that leaves much unused decays toward its use; upstream
// 429s in the pool halve everyone. The safety layer scales the sum into the
// effective capacity, which acts as the congestion signal on a full pool.

import type { PoolObservation } from '../../ppo/observation.ts';
import { PRIORITY_WEIGHTS } from '../water-fill.ts';
import type { AllocationPolicy } from './types.ts';

const INCREASE = 0.02; // of the effective capacity per tick, for CRITICAL
const DECREASE = 0.5;

export class AimdPolicy implements AllocationPolicy {
  readonly name = 'aimd';
  allocate(obs: PoolObservation): Float64Array {
    const out = new Float64Array(obs.services.length);
    obs.services.forEach((s, i) => {
      const limit = s.limitTps;
      if (obs.throttledTps > 0) out[i] = limit * DECREASE;
      else if (s.demandTps >= 0.9 * limit || s.queue > 0) {
        out[i] = limit + (INCREASE * obs.effectiveTps * (PRIORITY_WEIGHTS[s.priority] ?? 1)) / PRIORITY_WEIGHTS[0];
      } else out[i] = Math.max(s.demandTps * 1.2, limit * 0.9);
    });
    return out;
  }
}
