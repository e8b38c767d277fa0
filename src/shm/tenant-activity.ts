// Per-tenant activity for the surge and abuse detector (control/
// tenant-guard.ts): for each tenant slot of the tenant table, the tokens its
// acquires asked for and the tokens its own bucket denied (cumulative, int32,
// wrapping: readers take differences), and a TOUCHED byte saying the slot
// moved since the main thread last looked.
//
// Its own SharedArrayBuffer beside the main one (layout.ts), sized from the
// tenant slot count: 9 bytes a slot (2.3 MB for 262 144 slots, the table of
// 100 000 tenants), none without tenants. Kept out of the main layout so the
// detector adds no field to a tenant record (the record is a bucket plus its
// identity, read on every acquire; these counters are written on every
// acquire too, but read once a tick).
//
// Threads: every I/O thread counts (tenant-acquire.ts) with Atomics.add on
// the slot's two words, after a plain store of 1 to its TOUCHED byte (set
// first, so a flag the main thread clears is never followed by counts it
// missed for good: they are found with the next flag, or read whole next
// time the slot is visited; the counters are cumulative, nothing is lost or
// counted twice). The main thread alone reads them and clears TOUCHED
// (collect()), with plain stores of only the bytes it saw set, as
// control/touched-keys.ts does for keys.

/** Int32 words per slot: tokens asked for, tokens the tenant's own bucket denied. */
export const ACTIVITY_FIELDS = 2;
const REQUESTED = 0;
const DENIED = 1;

/** Bytes of the buffer for `slots` tenant slots (a multiple of 4: collect() reads TOUCHED by Uint32 word). */
export function tenantActivityBytes(slots: number): number {
  return slots * ACTIVITY_FIELDS * Int32Array.BYTES_PER_ELEMENT + Math.ceil(slots / 4) * 4;
}

/** The buffer for `slots` tenant slots, zeroed; null without tenants. */
export function allocateTenantActivity(slots: number): SharedArrayBuffer | null {
  return slots > 0 ? new SharedArrayBuffer(tenantActivityBytes(slots)) : null;
}

export class TenantActivity {
  readonly slots: number;
  private readonly counts: Int32Array;
  private readonly touched: Uint8Array;
  private readonly touchedWords: Uint32Array;

  constructor(sab: SharedArrayBuffer, slots: number) {
    if (sab.byteLength !== tenantActivityBytes(slots)) {
      throw new Error(`tenant activity buffer of ${sab.byteLength} bytes, ${tenantActivityBytes(slots)} expected for ${slots} slots`);
    }
    this.slots = slots;
    this.counts = new Int32Array(sab, 0, slots * ACTIVITY_FIELDS);
    const at = slots * ACTIVITY_FIELDS * Int32Array.BYTES_PER_ELEMENT;
    this.touched = new Uint8Array(sab, at, Math.ceil(slots / 4) * 4);
    this.touchedWords = new Uint32Array(sab, at, Math.ceil(slots / 4));
  }

  // --- I/O threads ------------------------------------------------------------

  /** An acquire of `tokens` on the tenant in `slot` (before its bucket is asked). */
  asked(slot: number, tokens: number): void {
    if (this.touched[slot] === 0) this.touched[slot] = 1;
    Atomics.add(this.counts, slot * ACTIVITY_FIELDS + REQUESTED, tokens);
  }

  /** The tenant's own bucket refused `tokens` (a dry run's would-deny too). */
  denied(slot: number, tokens: number): void {
    Atomics.add(this.counts, slot * ACTIVITY_FIELDS + DENIED, tokens);
  }

  // --- Main thread ------------------------------------------------------------

  /** Cumulative tokens asked for on the slot (int32, wrapping). */
  requestedTotal(slot: number): number { return Atomics.load(this.counts, slot * ACTIVITY_FIELDS + REQUESTED); }
  /** Cumulative tokens the slot's own bucket denied (int32, wrapping). */
  deniedTotal(slot: number): number { return Atomics.load(this.counts, slot * ACTIVITY_FIELDS + DENIED); }

  /** Calls fn for every slot touched since the last collect, clearing the flags it saw. */
  collect(fn: (slot: number) => void): void {
    const words = this.touchedWords;
    const bytes = this.touched;
    for (let w = 0; w < words.length; w++) {
      if (words[w] === 0) continue;
      for (let k = w * 4; k < w * 4 + 4; k++) {
        if (bytes[k] === 0) continue;
        bytes[k] = 0;
        if (k < this.slots) fn(k);
      }
    }
  }
}
