// Per-tenant telemetry rows, bounded: each tick, for each service with
// tenants, rows for at most TOP_TENANTS_PER_SERVICE tenants, those that
// asked for the most tokens during the tick (ties: the one seen first).
// Tiers (`pool/service/~tier`) are configured keys and get their rows from
// tick-recorder.ts every tick they move, with every tenant's traffic in
// them; these rows say who the traffic came from. A tenant outside the top
// of a tick writes nothing for it, so rows per tick are bounded by the
// config whatever the number of tenants (docs/tenants.md).
//
// Where the figures come from: the per-tenant counters the I/O threads
// write (shm/tenant-counters.ts). Only tenants the tick's sweep found
// touched are read, and those of the sweep before once more (a count
// written after its byte was cleared shows then); everything else did not
// move. Cost per tick: the sweep's pass over the TOUCHED words (slots x
// threads / 4, shared with the abuse defence), then the tenants that moved,
// each pushed into its service's bounded min-heap (log TOP steps).
//
// Threads: main thread only, called by TickRecorder after each controller
// tick. Names are read from the tenant table (tenant-table.ts nameOf) for
// the rows written only.

import type { KeyIndex } from '../shm/key-index.ts';
import { MILLI } from '../shm/layout.ts';
import { TC_DENIED, TC_FIELDS, TC_GRANTED, TC_REQUESTED, TC_WOULD_DENY, type TenantCounterReader } from '../shm/tenant-counters.ts';
import type { TenantTable } from '../shm/tenant-table.ts';
import { ROW, ROW_FIELDS } from '../storage/telemetry-store.ts';
import { MarkSet } from '../shm/mark-set.ts';

/** Tenants of one service written per tick (the busiest by tokens asked for). */
export const TOP_TENANTS_PER_SERVICE = 20;

/** One tick's tenant rows: the service bucket and name of each, ROW_FIELDS values each. */
export interface TenantRowBatch {
  count: number;
  services: Int32Array;
  names: string[];
  values: Float64Array;
}

export const NO_TENANT_ROWS: TenantRowBatch = { count: 0, services: new Int32Array(0), names: [], values: new Float64Array(0) };

/** A bounded min-heap by requested tokens: the `cap` largest seen. */
class TopHeap {
  size = 0;
  readonly slots: Int32Array;
  /** TC_FIELDS deltas per entry. */
  readonly deltas: Float64Array;

  constructor(readonly cap: number) {
    this.slots = new Int32Array(cap);
    this.deltas = new Float64Array(cap * TC_FIELDS);
  }

  private key(i: number): number { return this.deltas[i * TC_FIELDS + TC_REQUESTED]; }

  /** Offers a tenant with its deltas (d[0 .. TC_FIELDS)); kept if the heap has room or it asked for more than the least kept. */
  offer(slot: number, d: Float64Array): void {
    if (this.size < this.cap) {
      this.put(this.size, slot, d);
      this.up(this.size++);
    } else if (d[TC_REQUESTED] > this.key(0)) {
      this.put(0, slot, d);
      this.down(0);
    }
  }

  private put(i: number, slot: number, d: Float64Array): void {
    this.slots[i] = slot;
    for (let f = 0; f < TC_FIELDS; f++) this.deltas[i * TC_FIELDS + f] = d[f];
  }

  private swap(a: number, b: number): void {
    const s = this.slots[a]; this.slots[a] = this.slots[b]; this.slots[b] = s;
    for (let f = 0; f < TC_FIELDS; f++) {
      const x = this.deltas[a * TC_FIELDS + f];
      this.deltas[a * TC_FIELDS + f] = this.deltas[b * TC_FIELDS + f];
      this.deltas[b * TC_FIELDS + f] = x;
    }
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.key(p) <= this.key(i)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < this.size && this.key(l) < this.key(m)) m = l;
      if (r < this.size && this.key(r) < this.key(m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

export class TenantRows {
  /** Totals (summed over threads, modulo 2^32) when each slot was last read. */
  private readonly previous: Int32Array;
  private readonly seen: MarkSet;
  /** Heap of each service bucket with tenants (null for other buckets). */
  private readonly heaps: (TopHeap | null)[];
  private readonly serviceList: number[] = [];
  private readonly d = new Float64Array(TC_FIELDS);

  /** `counts` is swept by the controller's tick, before this reads it. */
  constructor(private readonly counts: TenantCounterReader, private readonly table: TenantTable, keys: KeyIndex,
    top = TOP_TENANTS_PER_SERVICE) {
    this.previous = new Int32Array(counts.slots * TC_FIELDS);
    this.seen = new MarkSet(counts.slots);
    this.heaps = keys.specs.map((s) => (s.tenants !== null ? new TopHeap(top) : null));
    for (const s of keys.specs) if (s.tenants !== null) this.serviceList.push(s.index);
  }

  /** This tick's rows: the busiest tenants of each service since the last call (the slots of this sweep and the one before). */
  collect(): TenantRowBatch {
    this.seen.clear();
    const c = this.counts;
    for (let k = 0; k < c.movedCount; k++) this.visit(c.moved[k]);
    for (let k = 0; k < c.beforeCount; k++) this.visit(c.before[k]);
    return this.emit();
  }

  private visit(slot: number): void {
    if (this.seen.add(slot)) this.read(slot);
  }

  /** The slot's deltas since it was last read, offered to its service's heap when it moved. */
  private read(slot: number): void {
    const { previous, d } = this;
    let moved = false;
    for (let f = 0; f < TC_FIELDS; f++) {
      const total = this.counts.total(slot, f);
      const delta = (total - previous[slot * TC_FIELDS + f]) | 0;
      previous[slot * TC_FIELDS + f] = total;
      d[f] = delta;
      if (delta !== 0) moved = true;
    }
    if (!moved) return;
    this.heaps[this.table.serviceOf(slot)]?.offer(slot, d);
  }

  private emit(): TenantRowBatch {
    let count = 0;
    for (const s of this.serviceList) count += this.heaps[s]!.size;
    if (count === 0) return NO_TENANT_ROWS;
    const services = new Int32Array(count);
    const names: string[] = [];
    const values = new Float64Array(count * ROW_FIELDS);
    let r = 0;
    for (const s of this.serviceList) {
      const h = this.heaps[s]!;
      for (let i = 0; i < h.size; i++, r++) {
        const slot = h.slots[i];
        const o = r * ROW_FIELDS;
        const e = i * TC_FIELDS;
        services[r] = s;
        names.push(this.table.nameOf(slot));
        values[o + ROW.REQUESTED] = h.deltas[e + TC_REQUESTED];
        values[o + ROW.GRANTED] = h.deltas[e + TC_GRANTED];
        values[o + ROW.DENIED] = h.deltas[e + TC_DENIED];
        values[o + ROW.WOULD_DENY] = h.deltas[e + TC_WOULD_DENY];
        values[o + ROW.LIMIT_TPS] = this.table.rateMilli(slot) / MILLI;
      }
      h.size = 0;
    }
    return { count, services, names, values };
  }
}
