// Which keys the controller visits this tick (main thread, once per tick):
// the keys an I/O thread touched since the last tick, each with its chain up
// to its pool (their counters moved too), and every key visited last tick
// (its deltas fall back to zero, and a late counter is read now). Everything
// else is idle: its counters, stats and row are those of the last visit, so
// reading it would find nothing new. The tick's cost follows the keys that
// moved, not the keys that exist.
//
// Threads: the I/O threads write the TOUCHED region (layout.ts), each only
// its own block, with one plain store of 1 per count or queue change
// (bucket-table.ts); the controller reads it by Uint32 word, skips zero
// words, and clears what it found with plain stores. No atomics: a store
// that is lost or seen late costs at most one tick, never a count:
//   - an I/O thread may set its flag just before the controller clears it
//     (only a flag the controller saw set is cleared, byte by byte),
//     with the counter's increment not yet visible to the controller's read.
//     The key was visited this tick, so it is visited again next tick
//     (`previous` below) and the increment, long visible by then, is read;
//   - the flag is set before the counters are written, so a flag set after
//     the clear is found next tick, with the counters it announced.
// Counters are cumulative and read whole (counter-deltas.ts), so a key read
// a tick late has its delta in the next tick's figures, as any value read
// mid-tick already had: nothing is lost or counted twice.

import type { ShmViews } from '../shm/layout.ts';
import { MarkSet } from '../shm/mark-set.ts';
import { TouchedFlags } from '../shm/touched-flags.ts';

export class TouchedKeys {
  private readonly flags: TouchedFlags;
  /** addChain bound once (the sweep's visitor; no closure per tick). */
  private readonly addChainOf = (b: number): void => this.addChain(b);
  private readonly size: number;
  private readonly parents: Int32Array;
  /** The keys already in this tick's list. */
  private readonly listed: MarkSet;
  /** This tick's keys: list[0 .. count); the first `fresh` of them were touched (or are on a touched key's chain). */
  list: Int32Array = new Int32Array(64);
  count = 0;
  private fresh = 0;
  /** Last tick's touched keys, visited once more this tick. */
  private previous: Int32Array = new Int32Array(64);
  private previousCount = 0;

  /** `parents[b]`: b's parent bucket (-1 for a pool). */
  constructor(views: ShmViews, parents: Int32Array) {
    this.size = views.layout.bucketCount;
    this.flags = new TouchedFlags(views.touched, this.size);
    this.parents = parents;
    this.listed = new MarkSet(this.size);
  }

  /** True when b is in this tick's list (after collect()). */
  has(b: number): boolean { return this.listed.has(b); }

  /** This tick's keys: touched since the last collect, with their chains, then last tick's touched keys. Clears the flags it read. */
  collect(): void {
    // Last tick's fresh keys become `previous` (the list buffer is reused for this tick).
    [this.previous, this.list] = [this.list, this.previous];
    this.previousCount = this.fresh;
    this.count = 0;
    this.listed.clear();
    // A key whose flag was seen set is visited this tick and the next.
    this.flags.sweep(this.addChainOf);
    this.fresh = this.count;
    for (let i = 0; i < this.previousCount; i++) this.addOne(this.previous[i]);
  }

  /** Every bucket (the full tick the controller runs with `incremental: false`); clears the flags. */
  all(): void {
    this.collect();
    for (let b = 0; b < this.size; b++) this.addOne(b);
  }

  private addChain(b: number): void {
    for (let cur = b; cur >= 0 && !this.listed.has(cur); cur = this.parents[cur]) this.addOne(cur);
  }

  private addOne(b: number): void {
    if (!this.listed.add(b)) return;
    if (this.count === this.list.length) {
      const grown = new Int32Array(this.list.length * 2);
      grown.set(this.list);
      this.list = grown;
    }
    this.list[this.count++] = b;
  }
}
