// When a pool may sleep through a tick (main thread, the controller's tick).
// A pool whose every input has been zero for SLEEP_AFTER_TICKS ticks, whose
// allocation and effective capacity did not move in that time, and whose
// capacity discovery holds no upstream hint is at a fixed point: another
// tick would observe the same thing (every service at rest: no traffic,
// queue, lease, latency, forecast or trend, not active), ask the same policy
// the same question and write the same rates. The controller skips it (no
// observation, policy, safety, writes or decision row) until a key of it is
// touched (touched-keys.ts), a limit of it changes, the model is reloaded, or
// the cluster's cap on it moves.
//
// Why SLEEP_AFTER_TICKS (64): capacity discovery's hint judge keeps the
// granted rate of the last 64 ticks (upstream-hints.ts, RecentTicks); after
// 64 ticks without traffic they are all zero, as they would be after any
// number more, so a pool that wakes sees what it would have seen had it
// ticked throughout. It is also well past ACTIVE_TICKS (a service's min_tps
// guarantee ends 5 ticks after its last request) and lets the safety layer's
// step cap finish moving the allocation. Not in shadow mode (each tick
// judges PPO's regret) and never after a fallback (deadline and busy depend
// on timing, not on the observation).

import type { BucketSpec } from '../shm/key-index.ts';
import type { PoolObservation } from '../ppo/observation.ts';
import type { CapacityDiscovery } from './capacity-discovery.ts';
import type { PoolDecision } from './decision.ts';
import { serviceAtRest } from './observation.ts';

export const SLEEP_AFTER_TICKS = 64;

export interface PoolState {
  /** The pool's place in Controller.pools and Controller.last. */
  readonly ordinal: number;
  readonly spec: BucketSpec;
  readonly services: BucketSpec[];
  readonly endpoints: BucketSpec[][];
  /** Every bucket of the pool: the pool, its services, their endpoints. */
  readonly buckets: Int32Array;
  readonly discovery: CapacityDiscovery;
  /** The allocation in force, tokens/s per service. */
  alloc: Float64Array;
  /** The effective capacity and gate burst the last evaluation wrote. */
  effectiveTps: number;
  burst: number;
  /** Consecutive evaluations that found the pool at rest; it sleeps from SLEEP_AFTER_TICKS on. */
  quietTicks: number;
}

/** True while the pool may be skipped. */
export function asleep(pool: PoolState): boolean { return pool.quietTicks >= SLEEP_AFTER_TICKS; }

/** The pool must be evaluated next tick (a limit changed, a key was touched, the model or cap changed). */
export function wake(pool: PoolState): void { pool.quietTicks = Math.min(pool.quietTicks, SLEEP_AFTER_TICKS - 1); }

/**
 * Counts this evaluation towards the pool's sleep: it was at rest when
 * nothing came in or moved (`before`: the allocation in force before it).
 */
export function noteEvaluation(pool: PoolState, rec: PoolDecision, before: Float64Array, effectiveBefore: number, mayRest: boolean): void {
  pool.quietTicks = mayRest && atRest(pool, rec, before, effectiveBefore) ? pool.quietTicks + 1 : 0;
}

function atRest(pool: PoolState, rec: PoolDecision, before: Float64Array, effectiveBefore: number): boolean {
  const { obs, decision, alloc } = rec;
  if (decision.fallback !== null || decision.shadow !== null || pool.discovery.hint !== null) return false;
  if (!quietPool(obs) || obs.effectiveTps !== effectiveBefore) return false;
  for (let i = 0; i < alloc.length; i++) if (alloc[i] !== before[i]) return false;
  for (const s of obs.services) if (!serviceAtRest(s)) return false;
  return true;
}

function quietPool(obs: PoolObservation): boolean {
  return obs.totalDemandTps === 0 && obs.grantedTps === 0 && obs.throttledTps === 0;
}
