// The initial state of one bucket record (bucket-table.ts), written by the
// controller's thread before any I/O thread attaches (BucketTable.initialize),
// so plain writes suffice. Layout and the meaning of each field: layout.ts.

import type { BucketSpec } from './key-index.ts';
import {
  ASSURED_BLOCKED_MS_INDEX, BURST_MILLI_INDEX, CONCURRENCY_INDEX, DEPTH_INDEX, GATE_INDEX, GATE_WINDOW,
  IN_FLIGHT_INDEX, LAST_REFILL_MS_INDEX, LOAN_OFFSET, MAX_BURST_MILLI_INDEX, MILLI, PACE_HOLD_MS, PACE_OFFSET, PACE_RATE_FACTOR, PARENT_INDEX, PRIORITY_COUNT,
  PRIORITY_INDEX, QUEUE_INDEX, RATE_MILLI_INDEX, RESERVE_BLOCKED_MS_INDEX, RESERVE_OFFSET, TOKENS_MILLI_INDEX, WAITERS_ANY_INDEX,
  WAITERS_BASE_INDEX, stateBase,
} from './layout.ts';

/**
 * How long borrowing stands aside after an assured take found its pool's
 * gate empty, ms: at least two retries of that take (the simulator's 10 ms
 * steps; an I/O thread retries its waiters every millisecond).
 */
export const ASSURED_HOLD_MS = 20;

/**
 * How long after a no-wait request's assured take was refused at a pool's gate
 * its borrowers leave the trunk there, ms (pool-loans.ts): a window gate
 * pays for the trunk in rate (and capacity discovery's probes need the last
 * tokens), so it is kept only where requests that do not wait were lately
 * short. Waiters have the waiters' rule instead.
 */
export const TRUNK_HOLD_MS = 2000;

/**
 * How old an expired stamp is made, ms (ASSURED_BLOCKED_MS, a pool's
 * RESERVE_BLOCKED_MS, NO_WAIT_REFUSED_MS and BORROW_REFUSED_MS: each held
 * for a while after it is written). Every thread compares a stamp with its
 * own `now`, and an I/O thread reads its clock once per message: while it
 * answers a long one, or after it was descheduled on a busy machine, its
 * `now` is behind the controller's by milliseconds or more. A stamp put just
 * past its hold at the controller's time (now - hold - 1, as before) was
 * fresh again at such a `now`: the pool read as refusing assured takes, and
 * every acquire that was not reserved was refused at it. 2^30 ms back is
 * expired at any `now` within 2^30 ms of the writer's either way, and still
 * 2^30 ms from wrapping around int32 (freshenStamp keeps it there).
 */
export const EXPIRED_STAMP_AGE_MS = 2 ** 30;

/** A stamp that reads as long expired at `nowMs` and at any thread's time near it. */
export function expiredStamp(nowMs: number): number {
  return (nowMs - EXPIRED_STAMP_AGE_MS) | 0;
}

/**
 * Writes bucket `spec` as the config describes it: full, at its initial rate.
 * A pool's gate starts with the whole window (its capacity) or a full token
 * bucket (a window gate's pace full), its shared bucket full at the pool's
 * burst and lending nothing until the controller's first write; a service's
 * ceiling starts full at max_tps, its reservation full at its min_tps (within
 * its initial rate).
 */
/** A window gate's pace rate: PACE_RATE_FACTOR x its rate (layout.ts), within an Int32. */
export function paceRateMilli(rateMilli: number): number {
  return Math.min(0x7fffffff, rateMilli * PACE_RATE_FACTOR);
}

/** A window gate's pace size: the pool's burst, or PACE_HOLD_MS of its rate if more (layout.ts). */
export function paceBurstMilli(burstMilli: number, rateMilli: number): number {
  return Math.max(burstMilli, Math.round((rateMilli * PACE_HOLD_MS) / 1000));
}

export function writeSpec(state: Int32Array, spec: BucketSpec, nowMs: number): void {
  const base = stateBase(spec.index);
  const burst = spec.burst * MILLI;
  const rate = Math.round(spec.initialTps * MILLI);
  const window = spec.depth === 0 && spec.gate === GATE_WINDOW;
  state[base + TOKENS_MILLI_INDEX] = window ? rate : burst;
  state[base + LAST_REFILL_MS_INDEX] = nowMs;
  state[base + RATE_MILLI_INDEX] = rate;
  state[base + BURST_MILLI_INDEX] = burst;
  state[base + MAX_BURST_MILLI_INDEX] = burst;
  state[base + IN_FLIGHT_INDEX] = 0;
  state[base + CONCURRENCY_INDEX] = spec.concurrency;
  state[base + PRIORITY_INDEX] = spec.priority;
  state[base + PARENT_INDEX] = spec.parent;
  state[base + DEPTH_INDEX] = spec.depth;
  state[base + QUEUE_INDEX] = 0;
  for (let p = 0; p < PRIORITY_COUNT; p++) state[base + WAITERS_BASE_INDEX + p] = 0;
  state[base + WAITERS_ANY_INDEX] = 0;
  const loan = base + LOAN_OFFSET;
  // A pool's shared bucket starts full and lends nothing; a service's ceiling starts full at max_tps.
  state[loan + TOKENS_MILLI_INDEX] = spec.depth === 2 ? 0 : burst;
  state[loan + LAST_REFILL_MS_INDEX] = nowMs;
  state[loan + RATE_MILLI_INDEX] = spec.depth === 1 ? Math.round(spec.maxTps * MILLI) : 0;
  state[loan + BURST_MILLI_INDEX] = spec.depth === 2 ? 0 : burst;
  state[base + GATE_INDEX] = spec.depth === 0 ? spec.gate : 0;
  state[base + ASSURED_BLOCKED_MS_INDEX] = expiredStamp(nowMs);
  const pace = base + PACE_OFFSET;
  const paceBurst = window ? paceBurstMilli(burst, rate) : 0;
  state[pace + TOKENS_MILLI_INDEX] = paceBurst;
  state[pace + LAST_REFILL_MS_INDEX] = nowMs;
  state[pace + RATE_MILLI_INDEX] = window ? paceRateMilli(rate) : 0;
  state[pace + BURST_MILLI_INDEX] = paceBurst;
  const reserve = base + RESERVE_OFFSET;
  const reserveRate = spec.depth === 1 ? Math.round(Math.min(spec.minTps, spec.initialTps) * MILLI) : 0;
  const reserveBurst = reserveRate > 0 ? Math.max(MILLI, reserveRate) : 0;
  state[reserve + TOKENS_MILLI_INDEX] = reserveBurst;
  state[reserve + LAST_REFILL_MS_INDEX] = nowMs;
  state[reserve + RATE_MILLI_INDEX] = reserveRate;
  state[reserve + BURST_MILLI_INDEX] = reserveBurst;
  if (spec.depth === 0) {
    state[base + RESERVE_BLOCKED_MS_INDEX] = expiredStamp(nowMs);
    state[reserve + TOKENS_MILLI_INDEX] = expiredStamp(nowMs); // NO_WAIT_REFUSED_MS (pool-loans.ts): long past
    state[reserve + RATE_MILLI_INDEX] = expiredStamp(nowMs); // BORROW_REFUSED_MS (pool-loans.ts)
  }
}
