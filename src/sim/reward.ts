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
// Revenue-aware (a tier's value_per_request, docs/tenants.md): where an
// outcome gives a value per request, w_i is that value over the largest one
// given (the most valuable counts as CRITICAL) instead of the class weight.
// Only a history replay of valued tiers gives values (the simulator's
// tenant_services, simulator.ts); generated and file scenarios give none.
//
// A second set of weights, PAID_REWARD (issue 14; last session's h-ppo
// branch proposed it, main keeps the one above): a 429 costs 2, more than a
// CRITICAL request earns (1 + 1/4), as on a paid upstream that bills the
// refused request; a timeout costs as a 429; an answer beyond slo_ms earns
// nothing and costs LATE_PENALTY. Only the oracle study (oracle-headroom.ts)
// and `tpsd sim --reward paid` use it; the default reward is unchanged.

export const CLASS_WEIGHTS = [1, 0.5, 0.25, 0.125] as const;
export const THROUGHPUT_WEIGHT = 0.25;
export const VIOLATION_PENALTY = 1;
export const QUEUE_PENALTY = 0.25;
export const GUARANTEE_PENALTY = 2;

/** What a 429, a timeout and a late answer cost; `lateEarns`: whether an answer beyond slo_ms earns its weight. */
export interface RewardWeights {
  readonly violation: number;
  readonly timeout: number;
  readonly late: number;
  readonly lateEarns: boolean;
}

/** The default reward: timeouts and late answers are scored only through what was served. */
export const DEFAULT_REWARD: RewardWeights = { violation: VIOLATION_PENALTY, timeout: 0, late: 0, lateEarns: true };
/** The paid-upstream reward (see the header). */
export const PAID_REWARD: RewardWeights = { violation: 2, timeout: 2, late: 0.25, lateEarns: false };
export const REWARD_KINDS = { default: DEFAULT_REWARD, paid: PAID_REWARD } as const;
export type RewardKind = keyof typeof REWARD_KINDS;

export interface TickOutcome {
  /** Per service, its value per request (NaN: none), used instead of its class weight; absent: none anywhere. */
  readonly value?: ArrayLike<number>;
  /** Per service, over the tick: requests arrived, admitted, accepted, 429'd; queue change; guarantee shortfall. */
  readonly served: ArrayLike<number>;
  readonly throttled: ArrayLike<number>;
  readonly queueGrowth: ArrayLike<number>;
  readonly shortfall: ArrayLike<number>;
  readonly priority: ArrayLike<number>;
  /** Per service, with a latency-limited upstream: answers beyond slo_ms (counted in served too), and timeouts. */
  readonly late?: ArrayLike<number>;
  readonly timedOut?: ArrayLike<number>;
}

/** Service i's weight: its value over the largest (`top`), or its class weight where it has no value. */
function weightOf(o: TickOutcome, i: number, top: number): number {
  const v = o.value?.[i] ?? NaN;
  return v >= 0 && top > 0 ? (CLASS_WEIGHTS[0] * v) / top : CLASS_WEIGHTS[o.priority[i]] ?? CLASS_WEIGHTS[3];
}

export function tickReward(o: TickOutcome, capacityTps: number, tickS: number, k: RewardWeights = DEFAULT_REWARD): number {
  let r = 0;
  let top = 0;
  for (let i = 0; o.value !== undefined && i < o.value.length; i++) if (o.value[i] > top) top = o.value[i];
  for (let i = 0; i < o.served.length; i++) {
    const w = weightOf(o, i, top);
    const late = o.late?.[i] ?? 0;
    r += (w + THROUGHPUT_WEIGHT) * (k.lateEarns ? o.served[i] : o.served[i] - late);
    r -= k.violation * o.throttled[i] + k.timeout * (o.timedOut?.[i] ?? 0) + k.late * late;
    r -= QUEUE_PENALTY * w * Math.max(0, o.queueGrowth[i]);
    r -= GUARANTEE_PENALTY * o.shortfall[i];
  }
  return r / Math.max(1e-9, capacityTps * tickS);
}
