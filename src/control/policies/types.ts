// The one interface every allocation policy implements. A policy maps a
// pool's observation to tokens/s per service (in obs.services order); it may
// return anything, the safety layer (../safety.ts) makes it safe. Policies run
// on the main thread, except PPO inference, which the daemon may run in a
// Piscina worker (see ../ppo-pool.ts); all of them are synchronous and cheap.

import type { PoolObservation } from '../../ppo/observation.ts';

export interface AllocationPolicy {
  readonly name: string;
  allocate(obs: PoolObservation): Float64Array;
}

export const POLICY_NAMES = ['static', 'proportional', 'fair', 'aimd', 'ppo'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
