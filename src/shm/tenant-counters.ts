// Per-tenant counters: tokens each tenant slot (tenant-table.ts) asked for,
// was granted, was denied, was granted by a dry run that would have denied
// them, and was refused by its own bucket (dry runs included). Two readers
// on the main thread: telemetry ranks tenants by them each tick and writes
// rows for the busiest only (daemon/tenant-rows.ts); the surge and abuse
// defence (control/tenant-guard.ts) classes the tenants that moved. A
// tenant's lease and the rest of its counters are on its tier's bucket.
//
// Threads: every I/O thread counts into its own block with plain stores
// (one writer per block, like the COUNTERS region of layout.ts), and sets a
// TOUCHED byte for the slot before it writes the count; the main thread
// sweeps the TOUCHED bytes once a tick (TenantCounterReader.sweep, before
// either reader), clears those it saw set (the argument of control/touched-keys.ts holds:
// a count seen late lands in the next tick, never lost or counted twice).
// Counts are Int32 and wrap; the reader takes deltas modulo 2^32.
//
// Memory: one SharedArrayBuffer apart from the versioned layout, made by
// the main thread at start and given to each I/O thread: per thread, one
// byte and TC_FIELDS Int32 per tenant slot (17 bytes; 4.5 MB a thread for
// the 262 144 slots of 100 000 tenants). Slots are a power of two (at least
// 32), so each block's TOUCHED bytes are whole Uint32 words.

import { MarkSet } from './mark-set.ts';
import { TouchedFlags } from './touched-flags.ts';

export const TC_REQUESTED = 0;
export const TC_GRANTED = 1;
export const TC_DENIED = 2;
export const TC_WOULD_DENY = 3;
/** Refused by the tenant's own bucket (its tier's rate), a dry run's too: what the abuse detector weighs. */
export const TC_OWN_DENIED = 4;
export const TC_FIELDS = 5;

/** The buffer for `slots` tenant slots and `threads` I/O threads. */
export function allocateTenantCounters(slots: number, threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(threads * slots * (1 + TC_FIELDS * Int32Array.BYTES_PER_ELEMENT));
}

/** Views of the buffer: TOUCHED bytes of every thread, then the counts of every thread. */
export interface TenantCounterViews {
  readonly slots: number;
  readonly threads: number;
  /** threads x slots bytes. */
  readonly touched: Uint8Array;
  /** threads x slots x TC_FIELDS. */
  readonly counts: Int32Array;
}

export function tenantCounterViews(sab: SharedArrayBuffer, slots: number, threads: number): TenantCounterViews {
  const touchedBytes = threads * slots;
  return {
    slots, threads,
    touched: new Uint8Array(sab, 0, touchedBytes),
    counts: new Int32Array(sab, touchedBytes, threads * slots * TC_FIELDS),
  };
}

/** One I/O thread's writer: count() on the hot path of a tenant's acquire (no allocation). */
export class TenantCounters {
  // Constructor-set fields are `declare`d (no class field starting as undefined), so V8 keeps the arrays' exact kinds.
  declare private readonly touched: Uint8Array;
  declare private readonly counts: Int32Array;
  declare private readonly touchedAt: number;
  declare private readonly countsAt: number;

  constructor(views: TenantCounterViews, thread: number) {
    this.touched = views.touched;
    this.counts = views.counts;
    this.touchedAt = thread * views.slots;
    this.countsAt = thread * views.slots * TC_FIELDS;
  }

  /** Adds `tokens` to field `field` (TC_*) of `slot`. */
  count(slot: number, field: number, tokens: number): void {
    this.touched[this.touchedAt + slot] = 1; // before the count: the reader that clears it reads the count after
    const i = this.countsAt + slot * TC_FIELDS + field;
    this.counts[i] = (this.counts[i] + tokens) | 0;
  }

  /** A grant of `tokens` asked for by an acquire: TC_REQUESTED and TC_GRANTED, one TOUCHED store (the hot path's one call). */
  granted(slot: number, tokens: number): void {
    this.touched[this.touchedAt + slot] = 1;
    const i = this.countsAt + slot * TC_FIELDS;
    this.counts[i + TC_REQUESTED] = (this.counts[i + TC_REQUESTED] + tokens) | 0;
    this.counts[i + TC_GRANTED] = (this.counts[i + TC_GRANTED] + tokens) | 0;
  }

  /**
   * A refusal of `tokens`: denied, or (`dryRun`) granted as would_deny; and
   * refused by the tenant's own bucket when `own` (what the abuse detector
   * weighs: a polite tenant refused by a busy tier is no attacker).
   */
  refused(slot: number, tokens: number, own: boolean, dryRun: boolean): void {
    if (dryRun) {
      this.count(slot, TC_GRANTED, tokens);
      this.count(slot, TC_WOULD_DENY, tokens);
    } else this.count(slot, TC_DENIED, tokens);
    if (own) this.count(slot, TC_OWN_DENIED, tokens);
  }
}

/**
 * The main thread's view: sweep() once a tick finds the slots any thread
 * touched since the last sweep (clearing the bytes it saw set); total()
 * sums a slot's count over the threads (modulo 2^32; readers keep their own
 * previous totals and take differences).
 */
export class TenantCounterReader {
  readonly slots: number;
  private readonly threads: number;
  private readonly counts: Int32Array;
  private readonly flags: TouchedFlags;
  private readonly seen: MarkSet;
  /** note bound once (the sweep's visitor). */
  private readonly noteOf = (slot: number): void => this.note(slot);
  /** Slots touched since the sweep before: moved[0 .. movedCount). */
  moved = new Int32Array(64);
  movedCount = 0;
  /**
   * The sweep before's slots. A count a thread wrote just after its byte was
   * cleared shows only when the slot is read again: a reader that must
   * attribute counts to the tick they happened in reads these once more.
   */
  before = new Int32Array(64);
  beforeCount = 0;

  constructor(views: TenantCounterViews) {
    this.slots = views.slots;
    this.threads = views.threads;
    this.counts = views.counts;
    this.flags = new TouchedFlags(views.touched, views.slots);
    this.seen = new MarkSet(views.slots);
  }

  /** Finds the slots touched since the last sweep (each once, whichever threads touched it). */
  sweep(): void {
    [this.before, this.moved] = [this.moved, this.before];
    this.beforeCount = this.movedCount;
    this.movedCount = 0;
    this.seen.clear();
    this.flags.sweep(this.noteOf);
  }

  private note(slot: number): void {
    if (!this.seen.add(slot)) return;
    if (this.movedCount === this.moved.length) {
      const bigger = new Int32Array(Math.min(this.slots, this.moved.length * 2));
      bigger.set(this.moved);
      this.moved = bigger;
    }
    this.moved[this.movedCount++] = slot;
  }

  /** Slot `slot`'s count of `field` (TC_*) summed over the threads, modulo 2^32. */
  total(slot: number, field: number): number {
    const stride = this.slots * TC_FIELDS;
    let sum = 0;
    for (let t = 0, at = slot * TC_FIELDS + field; t < this.threads; t++, at += stride) sum = (sum + this.counts[at]) | 0;
    return sum;
  }
}
