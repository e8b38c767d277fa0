// Shadow mode's regret (main thread, the controller). Each tick PPO's
// proposal, passed through the safety layer as if it were applied, is kept
// with the allocation that was applied; on the pool's next tick both are
// judged on that tick's demand: the priority-weighted demand each would have
// served, PPO's minus the applied one's, as a fraction of the pool's capacity
// (negative: what was applied served more). The controller puts each tick's
// regret in its decision record (decision.ts) and keeps the sum.

import type { PoolObservation } from '../ppo/observation.ts';
import { PRIORITY_WEIGHTS } from './water-fill.ts';

/** Priority-weighted demand an allocation would have served. */
export function weightedService(obs: PoolObservation, alloc: ArrayLike<number>): number {
  let u = 0;
  obs.services.forEach((s, i) => { u += (PRIORITY_WEIGHTS[s.priority] ?? 1) * Math.min(alloc[i], s.demandTps); });
  return u;
}

export class ShadowRegret {
  /** Every pool's regret so far, summed. */
  total = 0;
  /** Per pool bucket: last tick's (PPO after safety, applied) allocations. */
  private readonly pending = new Map<number, [Float64Array, Float64Array]>();

  /**
   * The pool's regret judged on this tick's demand (null when its last tick
   * had no shadow proposal); keeps this tick's pair, if any, for the next.
   */
  judge(obs: PoolObservation, shadow: Float64Array | null, applied: Float64Array): number | null {
    let regret: number | null = null;
    const last = this.pending.get(obs.bucket);
    if (last !== undefined) {
      regret = (weightedService(obs, last[0]) - weightedService(obs, last[1])) / Math.max(1, obs.capacityTps);
      this.total += regret;
      this.pending.delete(obs.bucket);
    }
    if (shadow !== null) this.pending.set(obs.bucket, [shadow, applied]);
    return regret;
  }
}
