// This thread's takes on sliding-window pool gates, by millisecond, until
// they are due back (bucket-table.ts).
//
// Threads: a WindowRings belongs to one BucketTable, so to one thread; every
// field is a plain thread-local value. The gate it serves is shared: a pool
// whose GATE is GATE_WINDOW holds in TOKENS_MILLI what the takes of the last
// second (all threads) leave of its capacity (RATE_MILLI). A take subtracts
// from it with the table's CAS loop, exactly as from a token bucket; instead
// of a refill at a rate, each thread gives its own takes back (one
// Atomics.add) once they are `delayMs` old. That is a sliding window: no
// interval of 1 s ever holds more takes than the capacity, whatever the
// burst, and a busy pool is granted exactly the capacity per second.
//
// Why per thread: a ring of take counts by millisecond that several threads
// write and sweep would need a lock or tagged slots (a slot of this second
// and one of a second ago are the same slot); a thread that only sweeps what
// it wrote itself needs neither, and sweeping its own ring costs one compare
// per take within a millisecond and one slot per new millisecond. The price
// is that a thread gives its takes back only when it runs: at its next take
// on the pool, or when it is flushed (I/O threads flush from a timer, see
// io-worker.ts), so an idle thread may hold some of the capacity a little
// longer than 1 s. Late is safe (never more than the capacity per second);
// early never happens.
//
// Pace: a sliding window alone lets a busy pool's whole second out in one
// burst, and then again each time it comes back a second later, so the
// upstream (and anything downstream of its clock, a sliding window of its
// own shifted by network jitter) sees bursts at the window's edge. Every
// take on a window gate therefore also passes the gate's pace (PACE_* in
// layout.ts): a token bucket at twice the rate holding the pool's burst or a
// quarter second of the rate. The window bounds every second; the pace
// spreads it.
//
// Booking: a take refused by the window may be counted as if it had been
// granted (bookWindow: the counter goes below 0, as far as the caller
// allows), so it comes back a second later.
// That only ever admits less in any second; pool-loans.ts says why and when.
//
// Times are the table's clock milliseconds. A real clock's `now` is the floor
// of the true time, so a take stamped m happened in [m, m + 1): it is given
// back at m + 1001, a full second later. A manual clock (the simulator,
// tests) stamps exact instants: m + 1000.

import { earn, putAt, takeAbove } from './bucket-cas.ts';
import { BUCKET_FIELDS, DEPTH_INDEX, PACE_OFFSET, TOKENS_MILLI_INDEX } from './layout.ts';

/** Length of the window, ms. */
export const WINDOW_MS = 1000;
/** Slots per ring: a power of two above WINDOW_MS + 1, so the slots of one window never collide. */
export const RING_SLOTS = 1024;
const RING_MASK = RING_SLOTS - 1;

export class WindowRings {
  // Constructor-set fields are `declare`d (no class field emitted), so V8 keeps their typed-array kinds.
  /** ordinal[b]: the pool's ring number k (the argument of the methods below), -1 for a bucket that is not a pool. */
  declare readonly ordinal: Int32Array;
  /** bucketOf[k]: the pool of ring number k. */
  declare private readonly bucketOf: Int32Array;
  /** rings[k]: milli-tokens this thread took on pool k by millisecond (ms & RING_MASK); made at the first take. */
  declare private readonly rings: (Int32Array | null)[];
  /** The last millisecond pool k's ring was swept at (takes up to cursor - delayMs are back); due() is a no-op at it. */
  declare readonly cursor: Int32Array;
  /** The millisecond of the latest take written to pool k's ring: the ring is all given back once the cursor is delayMs past it. */
  declare private readonly lastTake: Int32Array;
  /** Milli-tokens taken on pool k in the cursor's millisecond, written to the ring when the millisecond ends (one write a millisecond, not one a take). */
  declare private readonly current: Int32Array;
  /** How long a take counts against the window, ms (WINDOW_MS, + 1 for a real clock's floors). */
  declare readonly delayMs: number;

  constructor(state: Int32Array, size: number, exactClock: boolean) {
    this.ordinal = new Int32Array(size).fill(-1);
    let pools = 0;
    for (let b = 0; b < size; b++) if (state[b * BUCKET_FIELDS + DEPTH_INDEX] === 0) this.ordinal[b] = pools++;
    this.bucketOf = new Int32Array(pools);
    for (let b = 0; b < size; b++) if (this.ordinal[b] >= 0) this.bucketOf[this.ordinal[b]] = b;
    this.rings = new Array<Int32Array | null>(pools).fill(null);
    this.cursor = new Int32Array(pools);
    this.lastTake = new Int32Array(pools);
    this.current = new Int32Array(pools);
    this.delayMs = exactClock ? WINDOW_MS : WINDOW_MS + 1;
  }

  /**
   * Milli-tokens of this thread's takes on pool k that are due back at `now`
   * (taken at or before now - delayMs), removed from the ring: the caller
   * adds them back to the gate. 0 when nothing is due.
   */
  due(k: number, now: number): number {
    const last = this.cursor[k];
    let gap = (now - last) | 0;
    if (gap === 0) return 0;
    // A clock behind the cursor (ms wrapped around int32 after ~24.8 idle days, or a manual clock set back):
    // everything held is that old, so all of it is due.
    if (gap < 0) gap = RING_SLOTS + this.delayMs;
    this.cursor[k] = now;
    let ring = this.rings[k];
    const taken = this.current[k];
    if (taken !== 0) { // the millisecond `last` ended: its takes go to the ring
      if (ring === null) ring = this.rings[k] = new Int32Array(RING_SLOTS); // once per pool and thread
      ring[last & RING_MASK] += taken;
      this.lastTake[k] = last;
      this.current[k] = 0;
    }
    if (ring === null || ((last - this.lastTake[k]) | 0) >= this.delayMs) return 0; // all given back already
    let back = 0;
    if (gap > this.delayMs) {
      // Every take in the ring is at or before `last`, so all are due.
      for (let i = 0; i < RING_SLOTS; i++) { back += ring[i]; ring[i] = 0; }
    } else {
      // Takes stamped in (last - delay, now - delay].
      const end = (now - this.delayMs) | 0;
      for (let j = 0; j < gap; j++) {
        const i = (end - j) & RING_MASK;
        back += ring[i];
        ring[i] = 0;
      }
    }
    return back;
  }

  /** Records a take of `milli` on pool k in the cursor's millisecond (due(k, now) has moved the cursor to it). */
  record(k: number, milli: number): void {
    this.current[k] += milli;
  }

  /**
   * Takes back up to `milli` of pool k's take recorded at `ms` (a refund: an undone
   * acquire, an allowance given back). Returns how much was still recorded
   * there: only that much may go back to the gate.
   */
  unrecord(k: number, ms: number, milli: number): number {
    if (ms === this.cursor[k]) {
      const n = Math.min(milli, this.current[k]);
      if (n <= 0) return 0;
      this.current[k] -= n;
      return n;
    }
    const ring = this.rings[k];
    if (ring === null) return 0;
    const i = ms & RING_MASK;
    const n = Math.min(milli, ring[i]);
    if (n <= 0) return 0;
    ring[i] -= n;
    return n;
  }

  /**
   * Milliseconds from `now` until the first of this thread's takes is due
   * back (0: already due), or -1 when it holds none. Scans the rings: for
   * timers, not for the request path.
   */
  nextDueInMs(now: number): number {
    let best = -1;
    for (let k = 0; k < this.rings.length; k++) {
      const ring = this.rings[k];
      if (!this.pending(k)) continue;
      if (ring === null) { // only the cursor's millisecond holds takes
        const inMs = Math.max(0, (this.cursor[k] + this.delayMs - now) | 0);
        if (best < 0 || inMs < best) best = inMs;
        continue;
      }
      // Takes not yet due are stamped in (cursor - delay, cursor] (the cursor's own in `current`); the oldest comes back first.
      const from = (this.cursor[k] - this.delayMs + 1) | 0;
      for (let j = 0; j < this.delayMs; j++) {
        if (ring[(from + j) & RING_MASK] === 0 && (j < this.delayMs - 1 || this.current[k] === 0)) continue;
        const inMs = Math.max(0, (from + j + this.delayMs - now) | 0);
        if (best < 0 || inMs < best) best = inMs;
        break;
      }
    }
    return best;
  }

  /** True when pool k's ring may hold a take not given back yet. */
  private pending(k: number): boolean {
    return this.current[k] !== 0 || (this.rings[k] !== null && ((this.cursor[k] - this.lastTake[k]) | 0) < this.delayMs);
  }

  /** True while some take of this thread has not been given back. */
  holdsAny(): boolean {
    for (let k = 0; k < this.rings.length; k++) if (this.pending(k)) return true;
    return false;
  }

  /** Gives every pool's takes due at `now` back to its gate in `state` (a flush). */
  sweepAll(state: Int32Array, now: number): void {
    for (let k = 0; k < this.rings.length; k++) {
      if (!this.pending(k)) continue;
      const milli = this.due(k, now);
      if (milli !== 0) Atomics.add(state, this.bucketOf[k] * BUCKET_FIELDS + TOKENS_MILLI_INDEX, milli);
    }
  }
}

/**
 * The gate of pool `pool` in `state`: `k` is its ring number (a window gate)
 * or -1 (a token bucket). Takes `milli` at `now`, leaving at least `keepMilli`
 * (a borrow leaves the trunk to assured takes, pool-loans.ts; 0 otherwise); a
 * window gate first gets back what this thread took a window ago.
 */
export function takeGate(rings: WindowRings, state: Int32Array, pool: number, k: number, milli: number, now: number, keepMilli: number): boolean {
  const base = pool * BUCKET_FIELDS;
  if (k < 0) {
    earn(state, base, now, 0);
    return takeAbove(state, base, milli, keepMilli);
  }
  if (rings.cursor[k] !== now) {
    const back = rings.due(k, now);
    if (back !== 0) Atomics.add(state, base + TOKENS_MILLI_INDEX, back);
  }
  return takeWindow(rings, state, base, k, milli, now, keepMilli);
}

/** A take on window gate `base` (ring k, swept at `now`): its pace, then the window, each leaving `keepMilli`; both or neither. */
export function takeWindow(rings: WindowRings, state: Int32Array, base: number, k: number, milli: number, now: number, keepMilli: number): boolean {
  const pace = base + PACE_OFFSET;
  earn(state, pace, now, 0);
  if (!takeAbove(state, pace, milli, keepMilli)) return false;
  if (!takeAbove(state, base, milli, keepMilli)) {
    putAt(state, pace, milli, 0);
    return false;
  }
  rings.record(k, milli);
  return true;
}

/**
 * Books `milli` on window gate `base` (ring k) for a take the window
 * refused: counted as a take that was not granted (the window may go below
 * 0, down to `floorMilli`), so it comes back a second later, when the same
 * stretch of the window is short again (pool-loans.ts says for whom). True
 * when booked.
 */
export function bookWindow(rings: WindowRings, state: Int32Array, base: number, k: number, milli: number, floorMilli: number): boolean {
  let cur = state[base];
  for (;;) {
    if (cur >= milli || cur - milli < floorMilli) return false; // not short, or booked far enough ahead
    const seen = Atomics.compareExchange(state, base, cur, cur - milli);
    if (seen === cur) { rings.record(k, milli); return true; }
    cur = seen;
  }
}

/** Gives back to pool `pool`'s gate what this thread took there at `ms` (a window gate takes back only what it recorded then). */
export function putGate(rings: WindowRings, state: Int32Array, pool: number, k: number, milli: number, ms: number): void {
  const base = pool * BUCKET_FIELDS;
  if (k < 0) { putAt(state, base, milli, 0); return; }
  const n = rings.unrecord(k, ms, milli);
  if (n > 0) {
    Atomics.add(state, base + TOKENS_MILLI_INDEX, n);
    putAt(state, base + PACE_OFFSET, n, 0);
  }
}

/** Refills pool `pool`'s gate: this thread's window takes that are due come back, or the token bucket earns. */
export function refillGate(rings: WindowRings, state: Int32Array, pool: number, k: number, now: number): void {
  const base = pool * BUCKET_FIELDS;
  if (k < 0) { earn(state, base, now, 0); return; }
  earn(state, base + PACE_OFFSET, now, 0);
  const back = rings.due(k, now);
  if (back !== 0) Atomics.add(state, base + TOKENS_MILLI_INDEX, back);
}
