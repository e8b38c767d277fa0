// Reads the I/O threads' cumulative counters and turns them into per-tick
// deltas. Main thread only. Each thread's block has a single writer, so the
// reader sums the blocks without locks; a value read mid-tick simply lands in
// the next tick's delta, nothing is lost or counted twice.

import { COUNTER_FIELDS, type ShmViews } from '../shm/layout.ts';

export class CounterDeltas {
  private readonly views: ShmViews;
  private readonly previous: Float64Array;
  /** deltas[b * COUNTER_FIELDS + field] after the last read(). */
  readonly deltas: Float64Array;
  /** Totals since start, summed over threads, after the last read(). */
  readonly totals: Float64Array;

  constructor(views: ShmViews) {
    this.views = views;
    const n = views.layout.bucketCount * COUNTER_FIELDS;
    this.previous = new Float64Array(n);
    this.deltas = new Float64Array(n);
    this.totals = new Float64Array(n);
  }

  read(): void {
    const { counters, layout } = this.views;
    const n = layout.bucketCount * COUNTER_FIELDS;
    this.totals.fill(0);
    for (let t = 0; t < layout.threadCount; t++) {
      const off = t * n;
      for (let i = 0; i < n; i++) this.totals[i] += counters[off + i];
    }
    for (let i = 0; i < n; i++) {
      this.deltas[i] = this.totals[i] - this.previous[i];
      this.previous[i] = this.totals[i];
    }
  }

  /** read() for keys list[0 .. count) only; every other key's deltas must already be zero (touched-keys.ts). */
  readKeys(list: Int32Array, count: number): void {
    const { counters, layout } = this.views;
    const n = layout.bucketCount * COUNTER_FIELDS;
    for (let k = 0; k < count; k++) {
      const base = list[k] * COUNTER_FIELDS;
      for (let f = base; f < base + COUNTER_FIELDS; f++) {
        let total = 0;
        for (let t = 0, off = f; t < layout.threadCount; t++, off += n) total += counters[off];
        this.totals[f] = total;
        this.deltas[f] = total - this.previous[f];
        this.previous[f] = total;
      }
    }
  }

  delta(b: number, field: number): number { return this.deltas[b * COUNTER_FIELDS + field]; }
  total(b: number, field: number): number { return this.totals[b * COUNTER_FIELDS + field]; }
}
