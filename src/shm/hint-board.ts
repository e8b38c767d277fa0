// The upstream's rate-limit headers that RELEASEs carry (protocol: RELEASE
// hints), on their way from whoever handles the RELEASE to the controller.
//
// Threads: record() runs on the thread that handled the RELEASE (any I/O
// thread; in the simulator, its single thread, through this same code), take()
// on the main thread once per pool per tick. Per pool, two Int32 fields of
// the HINTS region (layout.ts) hold the lowest and highest rate hinted since
// the last take: record() lowers/raises them with a CAS only when it changes
// them (a plain read decides; most hints repeat the current value and write
// nothing), take() swaps in the "none" values with Atomics.exchange. A hint
// recorded while the controller takes lands in this tick, the next, or both;
// never in neither. How many RELEASEs carried a limit is a per-thread counter
// (C_HINTS_INDEX, BucketTable.count: no atomics). The controller judges what
// the rates mean (control/upstream-hints.ts); nothing here trusts them.
//
// A hint's rate is limit / window: `window_ms` when the upstream says it;
// else the whole seconds `reset_ms` still covers (at least one: a window is
// never shorter than what is left of it, and per-second limits are the
// common case); else one second. A window guessed short makes the rate high,
// which the judge then weighs against the 429s.

import type { BucketTable } from './bucket-table.ts';
import {
  C_HINTS_INDEX, HINT_FIELDS, HINT_HIGH_MILLI_INDEX, HINT_LOW_MILLI_INDEX, HINT_NONE_HIGH, HINT_NONE_LOW, MAX_TOKENS,
  MILLI, type ShmViews,
} from './layout.ts';

/** One RELEASE's hints, as numbers; NaN for a field the client did not send. */
export interface ReleaseHints {
  limit: number;
  remaining: number;
  resetMs: number;
  windowMs: number;
  retryAfterMs: number;
}

export function noHints(): ReleaseHints {
  return { limit: NaN, remaining: NaN, resetMs: NaN, windowMs: NaN, retryAfterMs: NaN };
}

/** The window the limit counts over, ms (see the header). */
export function hintedWindowMs(h: ReleaseHints): number {
  if (h.windowMs > 0) return h.windowMs;
  if (h.resetMs >= 0) return Math.max(1000, Math.ceil(h.resetMs / 1000) * 1000);
  return 1000;
}

/** The hinted upstream rate in milli-tokens/s (limit / window, clamped), or -1 when the hints carry no limit. */
export function hintedRateMilli(h: ReleaseHints): number {
  if (!(h.limit >= 0)) return -1;
  const tps = (h.limit * 1000) / hintedWindowMs(h);
  return Math.min(MAX_TOKENS * MILLI, Math.round(tps * MILLI));
}

/** One pool's hints of a tick, tokens/s; NaN when none came. */
export interface HintRange {
  lowTps: number;
  highTps: number;
}

export class HintBoard {
  private readonly hints: Int32Array;

  constructor(views: ShmViews) {
    this.hints = views.hints;
  }

  /** A RELEASE of a lease on `leaf` (in pool `pool`) carried `h`; the caller has checked it may speak for that pool. */
  record(table: BucketTable, leaf: number, pool: number, h: ReleaseHints): void {
    const rate = hintedRateMilli(h);
    if (rate < 0) return;
    const a = this.hints;
    const low = pool * HINT_FIELDS + HINT_LOW_MILLI_INDEX;
    const high = pool * HINT_FIELDS + HINT_HIGH_MILLI_INDEX;
    for (let cur = a[low]; rate < cur; cur = a[low]) if (Atomics.compareExchange(a, low, cur, rate) === cur) break;
    for (let cur = a[high]; rate > cur; cur = a[high]) if (Atomics.compareExchange(a, high, cur, rate) === cur) break;
    table.count(leaf, C_HINTS_INDEX, 1);
  }

  /** The pool's lowest and highest hinted rate since the last take, into `out` (controller, once per tick). */
  take(pool: number, out: HintRange): HintRange {
    const low = Atomics.exchange(this.hints, pool * HINT_FIELDS + HINT_LOW_MILLI_INDEX, HINT_NONE_LOW);
    const high = Atomics.exchange(this.hints, pool * HINT_FIELDS + HINT_HIGH_MILLI_INDEX, HINT_NONE_HIGH);
    out.lowTps = low === HINT_NONE_LOW ? NaN : low / MILLI;
    out.highTps = high === HINT_NONE_HIGH ? NaN : high / MILLI;
    if (Number.isNaN(out.highTps) !== Number.isNaN(out.lowTps)) {
      // A record() between the two exchanges: one field of it was taken, the other stays for the next tick.
      if (Number.isNaN(out.highTps)) out.highTps = out.lowTps; else out.lowTps = out.highTps;
    }
    return out;
  }
}
