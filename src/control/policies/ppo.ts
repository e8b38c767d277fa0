// ppo: the trained model (../../rl/model.ts) applied deterministically (the
// mean of its action distribution). Synchronous; the simulator calls it on the
// main thread, the daemon in a Piscina worker (../../rl/infer.task.ts).

import { PpoModel, allocationFromScores } from '../../rl/model.ts';
import type { PoolObservation } from '../observation.ts';
import type { AllocationPolicy } from './types.ts';

export class PpoPolicy implements AllocationPolicy {
  readonly name = 'ppo';
  constructor(readonly model: PpoModel) {}
  allocate(obs: PoolObservation): Float64Array {
    return allocationFromScores(obs, this.model.meanScores(obs), this.model.policy.outputSize);
  }
}
