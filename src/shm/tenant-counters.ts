// Per-tenant counters: tokens each tenant slot (tenant-table.ts) asked for,
// was granted, was denied, and was granted by a dry run that would have
// denied them. Telemetry ranks tenants by them each tick and writes rows for
// the busiest only (daemon/tenant-rows.ts); nothing else reads them. A
// tenant's lease and the rest of its counters are on its tier's bucket.
//
// Threads: every I/O thread counts into its own block with plain stores
// (one writer per block, like the COUNTERS region of layout.ts), and sets a
// TOUCHED byte for the slot before it writes the count; the main thread
// reads the blocks, keeps the previous totals itself, and clears the
// TOUCHED bytes it saw set (the argument of control/touched-keys.ts holds:
// a count seen late lands in the next tick, never lost or counted twice).
// Counts are Int32 and wrap; the reader takes deltas modulo 2^32.
//
// Memory: one SharedArrayBuffer apart from the versioned layout, made by
// the main thread at start and given to each I/O thread: per thread, one
// byte and TC_FIELDS Int32 per tenant slot (17 bytes; 4.5 MB a thread for
// the 262 144 slots of 100 000 tenants). Slots are a power of two (at least
// 32), so each block's TOUCHED bytes are whole Uint32 words.

export const TC_REQUESTED = 0;
export const TC_GRANTED = 1;
export const TC_DENIED = 2;
export const TC_WOULD_DENY = 3;
export const TC_FIELDS = 4;

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
  private readonly touched: Uint8Array;
  private readonly counts: Int32Array;
  private readonly touchedAt: number;
  private readonly countsAt: number;

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
}
