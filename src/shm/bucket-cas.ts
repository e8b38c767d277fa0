// The four lock-free operations on one token bucket of the shared table
// (bucket-table.ts and its helpers). A bucket is four Int32 fields at state
// index i: TOKENS, LAST_REFILL, RATE, BURST (layout.ts); a record holds two
// (at its base and at base + LOAN_OFFSET), so the same code serves both.
//
// Threads: any thread may call any of these on any bucket at any time: each
// is a CAS loop (Atomics.compareExchange) that retries on a changed value and
// never waits. The plain reads before a CAS only decide whether to try (a
// stale one makes the CAS fail); Atomics.load is not inlined by V8.
//
// Refill is lazy: a thread that finds time has passed claims the interval by
// CAS on LAST_REFILL (each millisecond is credited once), then adds elapsed x
// rate, clamped, with a CAS loop on TOKENS. A take subtracts only if enough
// tokens are there, so tokens never go negative and no more than rate x t +
// burst is ever taken over any interval t. Nothing moves LAST_REFILL back
// (restartAt for a rate write), or a millisecond would be credited twice.

import { BURST_MILLI_INDEX, INT32_MAX, LAST_REFILL_MS_INDEX, RATE_MILLI_INDEX, TOKENS_MILLI_INDEX, assertConstants } from './layout.ts';

// Module-local copies of the offsets: V8 folds a local const into the code it
// compiles, but reads an imported binding from its cell on every use.
const LAST = LAST_REFILL_MS_INDEX;
const RATE = RATE_MILLI_INDEX;
const BURST = BURST_MILLI_INDEX;
assertConstants(TOKENS_MILLI_INDEX === 0, 'TOKENS_MILLI_INDEX === 0: a bucket\'s index is that of its tokens');

/**
 * Credits bucket i with the tokens earned since its last refill, up to its
 * burst plus `extraMilli` (never lowering what it holds). Returns what did
 * not fit (0 when nothing was earned).
 */
export function earn(s: Int32Array, i: number, now: number, extraMilli: number): number {
  const last = s[i + LAST];
  const elapsed = (now - last) | 0;
  if (elapsed <= 0) return 0;
  const add = Math.floor((elapsed * s[i + RATE]) / 1000);
  if (add <= 0) return 0; // not a whole milli-token yet: the time stays unclaimed
  if (Atomics.compareExchange(s, i + LAST, last, now) !== last) return 0;
  const cap = Math.min(INT32_MAX, s[i + BURST] + extraMilli); // burst + a second of rate can pass 2^31 - 1
  let cur = s[i];
  for (;;) {
    const next = Math.max(cur, Math.min(cap, cur + add));
    if (next === cur) return add;
    const seen = Atomics.compareExchange(s, i, cur, next);
    if (seen === cur) return cur + add - next;
    cur = seen;
  }
}

/**
 * Starts bucket i's refill time at `now` for a rate write (controller; an I/O
 * thread for a tenant's tier): the caller has just credited what the old rate
 * earned until `now` (earn()), the new rate counts from here. Never moves the
 * time back: a thread whose clock runs ahead of `now` may already have
 * claimed up to its later time, and those milliseconds would be credited again
 * at the next refill (rate x lead, per write). Time before `now` that earned
 * no whole milli-token is dropped. At rate 0 nothing was ever claimed or
 * credited, so the stamp may be old enough to read as ahead once wrapped: it
 * is set to `now` whatever it says.
 */
export function restartAt(s: Int32Array, i: number, now: number): void {
  for (;;) {
    const last = Atomics.load(s, i + LAST);
    if (s[i + RATE] > 0 && ((now - last) | 0) <= 0) return;
    if (Atomics.compareExchange(s, i + LAST, last, now) === last) return;
  }
}

/** Takes `milli` from bucket i if it holds that many. */
export function takeAt(s: Int32Array, i: number, milli: number): boolean {
  let cur = s[i];
  for (;;) {
    if (cur < milli) return false;
    const seen = Atomics.compareExchange(s, i, cur, cur - milli);
    if (seen === cur) return true;
    cur = seen;
  }
}

/**
 * Takes `milli` from bucket i only if it holds at least `keepMilli` more: a
 * take that must leave that much to others (a borrow at a pool's gate).
 */
export function takeAbove(s: Int32Array, i: number, milli: number, keepMilli: number): boolean {
  let cur = s[i];
  for (;;) {
    if (cur - keepMilli < milli) return false;
    const seen = Atomics.compareExchange(s, i, cur, cur - milli);
    if (seen === cur) return true;
    cur = seen;
  }
}

/** Gives `milli` to bucket i, never above its burst plus `extraMilli`. */
export function putAt(s: Int32Array, i: number, milli: number, extraMilli: number): void {
  const cap = Math.min(INT32_MAX, s[i + BURST] + extraMilli);
  let cur = s[i];
  for (;;) {
    const next = Math.min(cap, cur + milli);
    if (next <= cur) return;
    const seen = Atomics.compareExchange(s, i, cur, next);
    if (seen === cur) return;
    cur = seen;
  }
}

/** Lowers bucket i's tokens to `burst` if it holds more. */
export function trim(s: Int32Array, i: number, burst: number): void {
  for (;;) {
    const cur = Atomics.load(s, i);
    if (cur <= burst || Atomics.compareExchange(s, i, cur, burst) === cur) return;
  }
}
