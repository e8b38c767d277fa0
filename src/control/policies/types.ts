// The one interface every allocation policy implements. A policy maps a
// pool's observation to tokens/s per service (in obs.services order); it may
// return anything, the safety layer (../safety.ts) makes it safe. Policies run
// on the main thread, except PPO inference, which the daemon may run in a
// Piscina worker (see ../../ppo/ppo-pool.ts); all of them are synchronous and
// cheap. Which name makes which policy: registry.ts.

import type { PoolObservation } from '../../ppo/observation.ts';

export interface AllocationPolicy {
  readonly name: string;
  allocate(obs: PoolObservation): Float64Array;
  /**
   * Optional: the pool's capacity for the coming tick, given the observation
   * (whose effectiveTps is capacity discovery's). The controller takes it
   * only downwards (never above discovery's) and before allocate().
   */
  capacityTps?(obs: PoolObservation): number;
  /**
   * Optional, simulator only: true lets capacityTps() raise the capacity
   * above discovery's, up to capacity_tps. Only the simulator's oracle
   * (src/sim/oracle-policy.ts), which is told the upstream's true limit, sets
   * it; no registered policy does, so a daemon never takes it.
   */
  readonly capacityAbove?: boolean;
  /**
   * Optional: 'limits' when allocate() reads only the effective capacity and
   * each service's priority and max_tps (never demand or state), and keeps no
   * state: the controller may then keep its last proposal while those did not
   * move (../pool-decisions.ts).
   */
  readonly inputs?: 'limits';
}

/** Where PPO proposals come from: inline (simulator) or a Piscina pool (daemon). */
export interface PpoSource {
  readonly version: string;
  /**
   * true: infer() answers Float64Arrays that nobody writes afterwards (made
   * for the call, or an earlier answer with the same figures), which the
   * runner keeps as they are (no copy); otherwise it keeps a copy.
   */
  readonly fresh?: boolean;
  infer(obs: PoolObservation): Float64Array | Promise<Float64Array>;
}
