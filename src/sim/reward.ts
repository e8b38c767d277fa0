// The reward function, shared by the simulator's report and PPO training
// (docs/allocator.md explains it). Per tick, in units of "a capacity's worth
// of CRITICAL requests served", so an episode's reward is at most its ticks:
//
//   r = ( sum_i (w_i + THROUGHPUT_WEIGHT) * served_i  priority-weighted throughput
//       - VIOLATION_PENALTY * sum_i throttled_i      admitted, then 429 upstream
//       - QUEUE_PENALTY * sum_i w_i * max(0, dq_i)   queue growth
//       - GUARANTEE_PENALTY * sum_i short_i )        missed min_tps guarantees
//       / (capacity_tps * tick_s)
//
// w = 1, 1/2, 1/4, 1/8 for CRITICAL, HIGH, MEDIUM, LOW; THROUGHPUT_WEIGHT (1/4)
// values every served request alike, so capacity left unused costs more than
// the lowest class's weight; served = granted and accepted upstream;
// short_i = max(0, min(demand_i, min_tps_i * tick_s) - granted_i - 1).

export const CLASS_WEIGHTS = [1, 0.5, 0.25, 0.125] as const;
export const THROUGHPUT_WEIGHT = 0.25;
export const VIOLATION_PENALTY = 1;
export const QUEUE_PENALTY = 0.25;
export const GUARANTEE_PENALTY = 2;

export interface TickOutcome {
  /** Per service, over the tick: requests arrived, admitted, accepted, 429'd; queue change; guarantee shortfall. */
  readonly served: ArrayLike<number>;
  readonly throttled: ArrayLike<number>;
  readonly queueGrowth: ArrayLike<number>;
  readonly shortfall: ArrayLike<number>;
  readonly priority: ArrayLike<number>;
}

export function tickReward(o: TickOutcome, capacityTps: number, tickS: number): number {
  let r = 0;
  for (let i = 0; i < o.served.length; i++) {
    const w = CLASS_WEIGHTS[o.priority[i]] ?? CLASS_WEIGHTS[3];
    r += (w + THROUGHPUT_WEIGHT) * o.served[i];
    r -= VIOLATION_PENALTY * o.throttled[i];
    r -= QUEUE_PENALTY * w * Math.max(0, o.queueGrowth[i]);
    r -= GUARANTEE_PENALTY * o.shortfall[i];
  }
  return r / Math.max(1e-9, capacityTps * tickS);
}
