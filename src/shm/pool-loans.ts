// Borrowing and the protection of assured rates, for one BucketTable
// (bucket-table.ts; the scheme is in docs/allocator.md, "Work-conserving
// buckets").
//
// Threads: a PoolLoans belongs to its table, so to one thread: its service
// lists and `lastPull` are thread-local. Everything it changes in shared
// memory goes through the CAS loops of bucket-cas.ts (tokens) or is a plain
// store of a time stamp (ASSURED_BLOCKED_MS: a hint that a stale read only
// delays by a retry), so any number of threads run it at once.
//
// - A service's assured bucket overflows into its pool's shared bucket
//   (LOAN of the pool record): what a service leaves unused is lent at once.
//   Idle services are refilled lazily, so a borrower that finds the shared
//   bucket short pulls their overflow in (refills them), once a millisecond.
// - Every take of a service passes its ceiling (its LOAN: a token bucket at
//   max_tps with the service's burst), so assured and borrowed tokens
//   together never pass max_tps and one burst. A borrow takes from the
//   ceiling and the pool's shared bucket, only while no stronger class
//   waits at the pool and no assured take was refused by the gate in the
//   last ASSURED_HOLD_MS.
// - When the gate refuses an assured take, the service and the pool are
//   stamped: the service may hold up to a second of its rate above its burst
//   (it is owed that, not leaving it unused), borrowers stand aside, and
//   other services give up what they hold beyond ASSURED_HOLD_MS of their
//   rate (stored bursts yield to rates).
// - min_tps is a reservation (RESERVE: a bucket at the service's min_tps, as
//   far as its allocation covers it, holding a second of it). While the gate
//   is short (the pool stamped as above), a service's takes draw on its
//   reservation first, and a take so covered is *reserved*. When the gate
//   refuses a take its service's reservation covers, the pool is stamped
//   RESERVE_BLOCKED: for ASSURED_HOLD_MS, a take that is not reserved may not
//   take from the gate at all (it is refused as the gate refuses, so its
//   assured tokens are owed back), and what the gate has goes to the
//   reservations, whichever class asks first. Reservations are not drawn on
//   while the gate keeps up (no atomic operation on the uncontended path), so
//   each starts full: a service that missed its min_tps while the gate was
//   dry has up to a second of it to catch up at the front. Their sum is at
//   most the effective capacity (the safety layer keeps every min_tps inside
//   it), so they never hold the gate for long.
// - Trunk reservation at the gate: a borrow takes from the gate (window and
//   pace, or token bucket) only what it holds beyond the *trunk*, what the
//   pool's services are owed this moment: each one's assured bucket (as if
//   refilled now), up to TRUNK_MS of its rate and at least a token, within
//   a quarter of a window or half a token bucket's burst; for TRUNK_HOLD_MS
//   after the gate last refused a no-wait request's assured take (the pool's
//   NO_WAIT_REFUSED_MS, a plain store). So a borrower hammering without
//   waiting cannot take the last gate tokens ahead of an assured take that
//   does not wait either (the waiters' rule above binds only waiters). The
//   trunk is summed once a millisecond per pool and thread (trunkAt,
//   trunkMilli: plain thread-local fields). A window gate that keeps it
//   admits up to that much less per second while borrowers press and
//   assured services leave it unused; a token bucket loses no rate.
// - A window gate replays its last second: a stretch in which it admitted
//   nothing returns nothing a second later, so an assured take refused there
//   would be refused there every second, whatever the trunk. So a new
//   request's assured take that a window refuses while borrowers press (a
//   borrow was refused at the gate in the last TRUNK_HOLD_MS: the pool's
//   BORROW_REFUSED_MS) is *booked*: counted in the window as a take that was
//   not granted (window-rings.ts, bookWindow), down to a second of its
//   service's rate below 0, it comes back in that stretch a second later,
//   where the trunk keeps it for the assured takes. Borrowers pay for it in
//   the meantime; once the assured takes are granted in that stretch, their
//   own takes come back there, and nothing more is booked.

import { earn, putAt, takeAt } from './bucket-cas.ts';
import { ASSURED_HOLD_MS, EXPIRED_STAMP_AGE_MS, TRUNK_HOLD_MS, expiredStamp } from './bucket-init.ts';
import { FAIL_PRIORITY, FAIL_TOKENS, GRANTED, fail } from './acquire-result.ts';
import { type WindowRings, bookWindow } from './window-rings.ts';
import {
  ASSURED_BLOCKED_MS_INDEX, BUCKET_FIELDS, BURST_MILLI_INDEX, GATE_INDEX, GATE_WINDOW, LAST_REFILL_MS_INDEX, LOAN_OFFSET, MILLI,
  RATE_MILLI_INDEX, RESERVE_BLOCKED_MS_INDEX, RESERVE_OFFSET, TOKENS_MILLI_INDEX, WAITERS_ANY_INDEX, WAITERS_BASE_INDEX,
} from './layout.ts';

const INT32_MIN = -0x80000000;
/**
 * How much of its rate a service's trunk holds at the gate, ms (at least a
 * token): between two returns of a busy window gate (every millisecond) an
 * assured service asks at most about this much.
 */
export const TRUNK_MS = 5;
/** A pool's field (its unused RESERVE_TOKENS, layout.ts): the last millisecond a no-wait request's assured take was refused at its gate. */
export const NO_WAIT_REFUSED_MS = RESERVE_OFFSET + TOKENS_MILLI_INDEX;
/** A pool's field (its unused RESERVE_RATE, layout.ts): the last millisecond a borrow was refused at its gate (borrowers press on it). */
export const BORROW_REFUSED_MS = RESERVE_OFFSET + RATE_MILLI_INDEX;

export class PoolLoans {
  // Constructor-set fields are `declare`d (no class field emitted), so V8 keeps their typed-array kinds.
  declare private readonly state: Int32Array;
  /** A pool's services: serviceList[serviceFrom[p] .. serviceFrom[p] + serviceCount[p]). */
  declare private readonly serviceFrom: Int32Array;
  declare private readonly serviceCount: Int32Array;
  declare private readonly serviceList: Int32Array;
  /** lastPull[p]: the millisecond this thread last pulled pool p's spills. */
  declare private readonly lastPull: Int32Array;
  /** trunkMilli[p]: pool p's trunk (what borrows leave in its gate) as this thread summed it at millisecond trunkAt[p]. */
  declare private readonly trunkMilli: Int32Array;
  declare private readonly trunkAt: Int32Array;

  /** `poolOf[b]` for every service b (-1 for other buckets). */
  constructor(state: Int32Array, poolOf: Int32Array) {
    const size = poolOf.length;
    this.state = state;
    // Each pool's services, listed pool by pool (a pool's services are not contiguous in the key order).
    this.serviceCount = new Int32Array(size);
    this.serviceFrom = new Int32Array(size);
    let total = 0;
    for (let b = 0; b < size; b++) if (poolOf[b] >= 0) { this.serviceCount[poolOf[b]]++; total++; }
    for (let b = 0, at = 0; b < size; b++) { this.serviceFrom[b] = at; at += this.serviceCount[b]; }
    this.serviceList = new Int32Array(total);
    const listed = new Int32Array(size);
    for (let b = 0; b < size; b++) if (poolOf[b] >= 0) this.serviceList[this.serviceFrom[poolOf[b]] + listed[poolOf[b]]++] = b;
    this.lastPull = new Int32Array(size).fill(INT32_MIN);
    this.trunkMilli = new Int32Array(size);
    this.trunkAt = new Int32Array(size).fill(INT32_MIN);
  }

  /**
   * Pool p's trunk at `now`, milli-tokens: what a borrow must leave in its
   * gate for the assured takes of its services (summed once a millisecond).
   * The caller asks only within TRUNK_HOLD_MS of the pool's NO_WAIT_REFUSED_MS.
   */
  trunk(pool: number, now: number): number {
    if (this.trunkAt[pool] === now) return this.trunkMilli[pool];
    this.trunkAt[pool] = now;
    const s = this.state;
    let owed = 0;
    const from = this.serviceFrom[pool];
    const to = from + this.serviceCount[pool];
    for (let i = from; i < to; i++) {
      const base = this.serviceList[i] * BUCKET_FIELDS;
      const rate = s[base + RATE_MILLI_INDEX];
      if (rate <= 0) continue;
      // Its bucket as a refill now would leave it (not written: the service's own take refills it).
      const elapsed = (now - s[base + LAST_REFILL_MS_INDEX]) | 0;
      const held = s[base + TOKENS_MILLI_INDEX] + (elapsed > 0 ? Math.floor((elapsed * rate) / 1000) : 0);
      if (held > 0) owed += Math.min(held, Math.max(MILLI, Math.floor((rate * TRUNK_MS) / 1000)));
    }
    // Within a quarter of a window (its capacity), or half a token bucket's burst and a token under it.
    const pb = pool * BUCKET_FIELDS;
    const burst = s[pb + BURST_MILLI_INDEX];
    const most = s[pb + GATE_INDEX] === GATE_WINDOW ? s[pb + RATE_MILLI_INDEX] >> 2 : Math.min(burst >> 1, burst - MILLI);
    const trunk = Math.max(0, Math.min(owed, most));
    this.trunkMilli[pool] = trunk;
    return trunk;
  }

  /** Refills service b's assured bucket; its overflow goes to the pool's shared bucket, unless it is owed (refused by the gate). */
  refillService(b: number, pool: number, now: number): void {
    const s = this.state;
    const base = b * BUCKET_FIELDS;
    if (((now - s[base + LAST_REFILL_MS_INDEX]) | 0) <= 0) return; // nothing earned (the common case within a millisecond)
    const owed = ((now - s[base + ASSURED_BLOCKED_MS_INDEX]) | 0) < ASSURED_HOLD_MS ? s[base + RATE_MILLI_INDEX] : 0;
    const over = earn(s, base, now, owed);
    if (over > 0) putAt(s, pool * BUCKET_FIELDS + LOAN_OFFSET, over, 0);
  }

  /** True while pool p's gate has lately refused an assured take (borrowing and bursts stand aside). */
  contended(pool: number, now: number): boolean {
    return ((now - this.state[pool * BUCKET_FIELDS + ASSURED_BLOCKED_MS_INDEX]) | 0) < ASSURED_HOLD_MS;
  }

  /**
   * While the gate is contended, a service not refused itself gives up what
   * its assured bucket holds beyond ASSURED_HOLD_MS of its rate (and `milli`)
   * to the pool's shared bucket, but never what its reservation still covers
   * (min_tps it has not had). Its rate still flows.
   */
  yieldBurst(svc: number, pool: number, milli: number, now: number): void {
    const s = this.state;
    const base = svc * BUCKET_FIELDS;
    if (((now - s[base + ASSURED_BLOCKED_MS_INDEX]) | 0) < ASSURED_HOLD_MS) return; // refused itself: catching up
    const keep = Math.max(Math.floor((s[base + RATE_MILLI_INDEX] * ASSURED_HOLD_MS) / 1000) + milli, s[base + RESERVE_OFFSET]);
    let cur = s[base + TOKENS_MILLI_INDEX];
    while (cur > keep) {
      const seen = Atomics.compareExchange(s, base + TOKENS_MILLI_INDEX, cur, keep);
      if (seen === cur) { putAt(s, pool * BUCKET_FIELDS + LOAN_OFFSET, cur - keep, 0); return; }
      cur = seen;
    }
  }

  /**
   * The gate refused an assured take of `milli` by `svc` (`reserved`: its
   * reservation covered it): stamps it and its pool, and RESERVE_BLOCKED when
   * its reservation covers the take. Returns how far above its burst it may
   * now hold (its rate).
   */
  refused(svc: number, pool: number, milli: number, reserved: boolean, now: number): number {
    const s = this.state;
    const pb = pool * BUCKET_FIELDS;
    if (reserved || this.covers(svc, milli, now)) {
      // Only a take the gate can ever hold holds the others back (a window admits at most its capacity at once).
      const most = s[pb + (s[pb + GATE_INDEX] === GATE_WINDOW ? RATE_MILLI_INDEX : BURST_MILLI_INDEX)];
      if (milli <= most) s[pb + RESERVE_BLOCKED_MS_INDEX] = now;
    }
    s[pb + ASSURED_BLOCKED_MS_INDEX] = now;
    s[svc * BUCKET_FIELDS + ASSURED_BLOCKED_MS_INDEX] = now;
    return s[svc * BUCKET_FIELDS + RATE_MILLI_INDEX];
  }

  /** True when service svc's reservation holds `milli` (refilled first; nothing taken). */
  private covers(svc: number, milli: number, now: number): boolean {
    const r = svc * BUCKET_FIELDS + RESERVE_OFFSET;
    earn(this.state, r, now, 0);
    return this.state[r] >= milli;
  }

  /**
   * The gate refused a no-wait request's assured take of `milli` by service
   * `svc` (`ring`: the pool's window ring, or -1): borrowers leave the trunk
   * for TRUNK_HOLD_MS, and a window books the take a second ahead while
   * borrowers press on it (a borrow was refused there in the last
   * TRUNK_HOLD_MS: they pay for it), down to a second of svc's assured
   * rate below 0 (a quarter of the capacity at most): however often a
   * caller asks, what it books is bounded by what it is assured of.
   */
  refusedNew(svc: number, pool: number, ring: number, rings: WindowRings, milli: number, now: number): void {
    const s = this.state;
    const pb = pool * BUCKET_FIELDS;
    s[pb + NO_WAIT_REFUSED_MS] = now;
    if (ring < 0 || ((now - s[pb + BORROW_REFUSED_MS]) | 0) >= TRUNK_HOLD_MS) return;
    bookWindow(rings, s, pb, ring, milli, -Math.min(s[svc * BUCKET_FIELDS + RATE_MILLI_INDEX], s[pb + RATE_MILLI_INDEX] >> 2));
  }

  /** Takes `milli` from service svc's reservation if it holds that many (the gate is short): the take is then reserved. */
  reserve(svc: number, milli: number, now: number): boolean {
    const r = svc * BUCKET_FIELDS + RESERVE_OFFSET;
    earn(this.state, r, now, 0);
    return takeAt(this.state, r, milli);
  }

  /** Gives a reserved take the gate refused back to svc's reservation. */
  unreserve(svc: number, milli: number): void {
    putAt(this.state, svc * BUCKET_FIELDS + RESERVE_OFFSET, milli, 0);
  }

  /** True while a reserved take was lately refused at pool's gate: takes that are not reserved stand aside. */
  reservationWaits(pool: number, now: number): boolean {
    return ((now - this.state[pool * BUCKET_FIELDS + RESERVE_BLOCKED_MS_INDEX]) | 0) < ASSURED_HOLD_MS;
  }

  /**
   * A loan of `milli` for service `svc` (-1: the pool's own key), a request
   * that may pass waiters below priority class `gate`. GRANTED or the failure.
   */
  borrow(svc: number, pool: number, milli: number, gate: number, now: number): number {
    const s = this.state;
    const pb = pool * BUCKET_FIELDS;
    if (s[pb + WAITERS_ANY_INDEX] !== 0) {
      for (let q = 0; q < gate; q++) if (s[pb + WAITERS_BASE_INDEX + q] > 0) return fail(pool, FAIL_PRIORITY);
    }
    if (this.contended(pool, now)) return fail(pool, FAIL_PRIORITY);
    const ceiling = svc >= 0 ? svc * BUCKET_FIELDS + LOAN_OFFSET : -1;
    if (ceiling >= 0 && !takeCeiling(s, svc * BUCKET_FIELDS, milli, now)) return fail(svc, FAIL_TOKENS);
    const shared = pb + LOAN_OFFSET;
    earn(s, shared, now, 0);
    if (!takeAt(s, shared, milli) && !(this.pullSpills(pool, now) && takeAt(s, shared, milli))) {
      if (ceiling >= 0) putAt(s, ceiling, milli, 0);
      return fail(pool, FAIL_TOKENS);
    }
    return GRANTED;
  }

  /** Refills every service of the pool, so what their full buckets overflow reaches its shared bucket; once a millisecond. */
  private pullSpills(pool: number, now: number): boolean {
    if (this.lastPull[pool] === now) return false;
    this.lastPull[pool] = now;
    const from = this.serviceFrom[pool];
    const to = from + this.serviceCount[pool];
    for (let i = from; i < to; i++) this.refillService(this.serviceList[i], pool, now);
    return true;
  }

  /**
   * Gives back what a take below the gate took: the endpoint's (ep, or -1),
   * and the assured bucket's (up to `owedMilli` above its burst) or the loans.
   */
  putBelowGate(ep: number, svc: number, pool: number, milli: number, borrowed: boolean, owedMilli: number): void {
    const s = this.state;
    if (ep >= 0) putAt(s, ep * BUCKET_FIELDS, milli, 0);
    if (svc >= 0) putAt(s, svc * BUCKET_FIELDS + LOAN_OFFSET, milli, 0);
    if (!borrowed) { putAt(s, svc * BUCKET_FIELDS, milli, owedMilli); return; }
    putAt(s, pool * BUCKET_FIELDS + LOAN_OFFSET, milli, 0);
  }
}

/** Takes `milli` from the ceiling of the service at `base` (its LOAN: max_tps and its burst), which every take of the service passes. */
export function takeCeiling(s: Int32Array, base: number, milli: number, now: number): boolean {
  earn(s, base + LOAN_OFFSET, now, 0);
  return takeAt(s, base + LOAN_OFFSET, milli);
}

/**
 * Keeps an expired stamp (ASSURED_BLOCKED_MS, a pool's RESERVE_BLOCKED_MS,
 * NO_WAIT_REFUSED_MS and BORROW_REFUSED_MS) at state index i expired for
 * every thread and away from the int32 wrap (the controller, every tick):
 * one past its hold is moved EXPIRED_STAMP_AGE_MS back (bucket-init.ts says
 * why so far: a thread whose `now` is behind the writer's must not read it
 * as fresh), and moved again once it is half as old again, so the tick does
 * not write it each time. A stamp newer than `now` (a thread ahead of this
 * one wrote it) is left alone.
 */
export function freshenStamp(s: Int32Array, i: number, now: number, holdMs: number): void {
  const stamp = s[i];
  const age = (now - stamp) | 0;
  if (age > holdMs && (age < EXPIRED_STAMP_AGE_MS || age > EXPIRED_STAMP_AGE_MS + (EXPIRED_STAMP_AGE_MS >> 1))) {
    Atomics.compareExchange(s, i, stamp, expiredStamp(now));
  }
}
