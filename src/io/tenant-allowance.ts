// A thread's allowances of tenant tokens: when this I/O thread acquires the
// same tenant again within one clock millisecond, it takes a chunk of the
// tenant's bucket at once and serves the next acquires of that millisecond
// from what it kept, with no atomic operation; what is left goes back to the
// bucket when the millisecond ends. The same scheme configured keys have
// (shm/allowances.ts), for the tenant's own bucket (the levels above are
// served by the bucket table's allowances).
//
// Why: every tenant acquire did a compare-and-swap on the tenant's record,
// shared by every I/O thread, so a busy tenant's record moved between cores
// on each request (bench:compare's tenant scenario: a tenant decision cost
// the daemon about 0.4 us more than a configured one, most of it there).
//
// Threads: one TenantAllowance per TenantKeys, so per I/O thread, used only
// by that thread. It never grants more than the bucket gave: tokens kept are
// taken from the bucket first and go back to it (clamped to its burst) at
// the end of the millisecond, at the latest when the worker's 1 ms flush runs
// (io-worker.ts), or when another tenant needs the entry. A chunk is taken
// only if the bucket keeps at least three times the chunk after it, so a
// slow tenant is never chunked and another thread finds tokens still there;
// a tenant forgotten meanwhile gets nothing back (its slot is checked).
// Fixed-size arrays: nothing allocated per request.

import type { TenantTable } from '../shm/tenant-table.ts';

/** Entries, direct-mapped by slot (a power of two). */
const ENTRIES = 256;
/** The largest chunk, in acquires of the current size. */
const MAX_CHUNK = 32;
/** A chunk leaves at least this many times itself in the bucket. */
const LEAVE_FACTOR = 3;

export class TenantAllowance {
  /** The clock millisecond the entries belong to. */
  private ms = -1;
  private readonly slotOf = new Int32Array(ENTRIES).fill(-1);
  private readonly wordOf = new Int32Array(ENTRIES);
  private readonly genOf = new Int32Array(ENTRIES);
  /** Milli-tokens kept for the entry's tenant. */
  private readonly held = new Int32Array(ENTRIES);
  /** The size of the entry's last chunk, in acquires. */
  private readonly chunk = new Int32Array(ENTRIES);
  /** The entries in use this millisecond, the first `used` of them. */
  private readonly list = new Int32Array(ENTRIES);
  private used = 0;

  constructor(private readonly table: TenantTable) {}

  /** True while entries are in use (flush() then has work). */
  holds(): boolean { return this.used > 0; }

  /**
   * Takes `milli` for the tenant in `slot` (found with INDEX word `word`,
   * generation `gen`): from what this thread kept, else from the bucket
   * (a chunk on a repeat within the millisecond). False: the bucket does not
   * hold that many.
   */
  take(slot: number, word: number, gen: number, milli: number, now: number): boolean {
    if (now !== this.ms) this.flush(now);
    const e = slot & (ENTRIES - 1);
    if (this.slotOf[e] !== slot || this.wordOf[e] !== word || this.genOf[e] !== gen) {
      if (this.slotOf[e] >= 0) this.giveBack(e);
      else this.list[this.used++] = e;
      this.slotOf[e] = slot;
      this.wordOf[e] = word;
      this.genOf[e] = gen;
      this.chunk[e] = 1;
      return this.table.take(slot, milli, now); // the first in this millisecond: a single take
    }
    const h = this.held[e];
    if (h >= milli) {
      this.held[e] = h - milli;
      return true;
    }
    const k = Math.min(this.chunk[e] * 2, MAX_CHUNK);
    const grab = k * milli;
    if (this.table.take(slot, grab, now, LEAVE_FACTOR * grab)) {
      this.chunk[e] = k;
      this.held[e] = h + grab - milli;
      return true;
    }
    this.chunk[e] = 1;
    return this.table.take(slot, milli, now);
  }

  /** Gives every kept token back to its tenant and empties the entries; the entries now belong to `now`. */
  flush(now: number): void {
    for (let i = 0; i < this.used; i++) {
      const e = this.list[i];
      if (this.slotOf[e] >= 0) this.giveBack(e);
      this.slotOf[e] = -1;
    }
    this.used = 0;
    this.ms = now;
  }

  private giveBack(e: number): void {
    const milli = this.held[e];
    this.held[e] = 0;
    if (milli > 0 && this.table.stillIs(this.slotOf[e], this.wordOf[e], this.genOf[e])) this.table.giveBack(this.slotOf[e], milli);
  }
}
