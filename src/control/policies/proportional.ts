// proportional: the effective capacity split in proportion to each service's
// recent demand (its smoothed forecast), capped at max_tps; priorities are
// ignored except through the safety layer's guarantees.

import type { PoolObservation } from '../../ppo/observation.ts';
import { weightedSplit } from './static.ts';
import type { AllocationPolicy } from './types.ts';

export class ProportionalPolicy implements AllocationPolicy {
  readonly name = 'proportional';
  allocate(obs: PoolObservation): Float64Array {
    const w = obs.services.map((s) => Math.max(s.forecastTps, s.demandTps, 1e-3));
    return weightedSplit(obs.effectiveTps, w, obs.services.map((s) => s.maxTps));
  }
}
