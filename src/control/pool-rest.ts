// When a pool may sleep through a tick (main thread, the controller's tick).
// A pool is at rest when an evaluation found nothing coming in or moving:
// no demand, grants or 429s, every service at rest (no traffic, queue,
// lease, latency, forecast or trend, not active), no upstream hint in force,
// and the allocation and effective capacity it produced equal to those in
// force before. Such a tick is a fixed point: the next would observe the
// same thing, ask the same (deterministic) policy the same question, pass
// the same proposal through the safety layer from the same allocation, and
// write the same rates; capacity discovery with no traffic and no hint
// changes nothing either. So the controller skips the pool (no observation,
// policy, safety, writes or decision row) until a key of it is touched
// (touched-keys.ts), a limit of it changes, the model is reloaded, or the
// cluster's cap on it moves.
//
// One more condition: HINT_MEMORY_TICKS ticks since the pool last granted
// anything. Discovery's hint judge keeps the granted rate of the last 64
// ticks (upstream-hints.ts, RecentTicks); once they are all zero they stay
// zero however many ticks follow, so a pool that wakes sees what it would
// have seen had it ticked throughout. A pool that never had traffic sleeps
// after its first evaluation at rest. Never in shadow mode (each tick
// judges PPO's regret) and never after a fallback (deadline and busy depend
// on timing, not on the observation).

import type { BucketTable } from '../shm/bucket-table.ts';
import type { BucketSpec } from '../shm/key-index.ts';
import type { PoolObservation } from '../ppo/observation.ts';
import type { CapacityDiscovery } from './capacity-discovery.ts';
import type { PoolDecision } from './decision.ts';
import { serviceAtRest } from './observation.ts';
import type { TouchedKeys } from './touched-keys.ts';

/** Ticks without grants before a pool may sleep: the length of the hint judge's memory (upstream-hints.ts). */
export const HINT_MEMORY_TICKS = 64;

export interface PoolState {
  /** The pool's place in Controller.pools and Controller.last. */
  readonly ordinal: number;
  readonly spec: BucketSpec;
  readonly services: BucketSpec[];
  readonly endpoints: BucketSpec[][];
  /** Every bucket of the pool: the pool, its services, their endpoints. */
  readonly buckets: Int32Array;
  readonly discovery: CapacityDiscovery;
  /** upstream.slo_ms of the pool's config (null: latency bounds nothing); a reload sets it (Controller.reconfigure). */
  sloMs: number | null;
  /** The allocation in force, tokens/s per service. */
  alloc: Float64Array;
  /** The effective capacity and gate burst the last evaluation wrote. */
  effectiveTps: number;
  burst: number;
  /** The last evaluation found the pool at rest. */
  atRest: boolean;
  /** Evaluations since the last one with grants (HINT_MEMORY_TICKS for a pool that never had any). */
  sinceGrants: number;
  /** The buckets hold the allocation in force with the limits in force (false after a limit change, and before the first tick). */
  written: boolean;
}

/** True while the pool may be skipped. */
export function asleep(pool: PoolState): boolean { return pool.atRest && pool.sinceGrants >= HINT_MEMORY_TICKS; }

/** The pool must be evaluated next tick (a limit changed, a key was touched, the model or cap changed). */
export function wake(pool: PoolState): void { pool.atRest = false; }

/** Notes what this evaluation found (`before`: the allocation in force before it). */
export function noteEvaluation(pool: PoolState, rec: PoolDecision, before: Float64Array, effectiveBefore: number, mayRest: boolean): void {
  pool.sinceGrants = rec.obs.grantedTps > 0 ? 0 : Math.min(HINT_MEMORY_TICKS, pool.sinceGrants + 1);
  pool.atRest = mayRest && isAtRest(pool, rec, before, effectiveBefore);
}

function isAtRest(pool: PoolState, rec: PoolDecision, before: Float64Array, effectiveBefore: number): boolean {
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

/** Every bucket is refilled at least once per this many ticks, so its int32 millisecond stamps never wrap (3 600 000 ms ticks: 2.7 days). */
export const REFILL_SWEEP_TICKS = 64;

/**
 * The controller's refill: the pool bucket of each pool evaluated this tick,
 * the keys visited, and a 1/REFILL_SWEEP_TICKS slice of the table in turn.
 * An idle bucket needs no refill to be right (takes refill lazily, and a
 * borrower pulls idle services' overflow itself, shm/pool-loans.ts; a rate,
 * loan or reservation write earns at the old rate first), so an awake pool's
 * idle services are left to that too: at 1 000 services per pool, refilling
 * them was most of a tick (test/unit/control/lazy-refill.test.ts: the same
 * grants). The sweep keeps every bucket's LAST_REFILL and ASSURED_BLOCKED
 * stamps within int32 range of now.
 */
export class RefillSweep {
  private at = 0;

  refill(table: BucketTable, awake: readonly PoolState[], touched: TouchedKeys, now: number): void {
    for (const p of awake) table.refill(p.spec.index, now);
    for (let k = 0; k < touched.count; k++) table.refill(touched.list[k], now);
    const slice = Math.ceil(table.size / REFILL_SWEEP_TICKS);
    for (let i = 0; i < slice; i++) {
      table.refill(this.at, now);
      this.at = this.at + 1 === table.size ? 0 : this.at + 1;
    }
  }
}
