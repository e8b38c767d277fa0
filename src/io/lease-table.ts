// Leases of one I/O thread. Owned by that thread alone (no shared memory).
//
// A lease is a slot in typed arrays (no object per lease). Its id packs the
// slot, a generation that changes each time the slot is reused (so a stale or
// forged id is UNKNOWN_LEASE, never someone else's lease) and the thread
// number (so any thread can tell whose lease an id is):
//
//   id = ((generation * SLOT_LIMIT) + slot) * THREAD_LIMIT + thread
//
// ids stay below 2^53. Every lease has the same TTL, so leases expire in the
// order they were made: a FIFO of (slot, generation) is the expiry schedule
// and sweeping it costs O(expired).

import { MAX_IO_THREADS, MAX_LEASES_PER_THREAD } from '../config/defaults.ts';
import { INT32_MAX, assertConstants } from '../shm/layout.ts';

export const THREAD_LIMIT = MAX_IO_THREADS;
export const SLOT_LIMIT = MAX_LEASES_PER_THREAD;
const GENERATION_LIMIT = 1 << 28;
// The largest id is GENERATION_LIMIT x SLOT_LIMIT x THREAD_LIMIT - 1 (JSON and
// slotOf() take only safe integers); generations and slots sit in Int32Arrays.
assertConstants(GENERATION_LIMIT * SLOT_LIMIT * THREAD_LIMIT <= 2 ** 53,
  'lease ids < 2^53: GENERATION_LIMIT * SLOT_LIMIT * THREAD_LIMIT <= 2^53');
assertConstants(GENERATION_LIMIT <= INT32_MAX && SLOT_LIMIT <= INT32_MAX, 'GENERATION_LIMIT and SLOT_LIMIT fit an Int32Array');

export interface ExpiredLease {
  bucket: number;
  slotMask: number;
}

export class LeaseTable {
  private readonly thread: number;
  private readonly maxSlots: number;
  private bucket: Int32Array;
  private generation: Int32Array;
  private slotMask: Uint8Array;
  private expiresAt: Float64Array;
  private free: Int32Array;
  private freeCount = 0;
  private used = 0; // slots ever handed out (high-water mark)
  // FIFO of (slot, generation) in creation order.
  private fifoSlot: Int32Array;
  private fifoGen: Int32Array;
  private head = 0;
  private count = 0;
  /** Leases currently held. */
  active = 0;

  constructor(thread: number, maxSlots: number, initialSlots = 1024) {
    if (thread < 0 || thread >= THREAD_LIMIT) throw new Error(`thread ${thread} out of range 0..${THREAD_LIMIT - 1}`);
    this.thread = thread;
    this.maxSlots = Math.min(maxSlots, SLOT_LIMIT);
    const n = Math.min(initialSlots, this.maxSlots);
    this.bucket = new Int32Array(n);
    this.generation = new Int32Array(n).fill(1);
    this.slotMask = new Uint8Array(n);
    this.expiresAt = new Float64Array(n);
    this.free = new Int32Array(n);
    this.fifoSlot = new Int32Array(n);
    this.fifoGen = new Int32Array(n);
  }

  static threadOf(id: number): number { return id % THREAD_LIMIT; }

  private grow(): boolean {
    const old = this.bucket.length;
    if (old >= this.maxSlots) return false;
    const n = Math.min(old * 2, this.maxSlots);
    const grow32 = (a: Int32Array, fill = 0) => { const b = new Int32Array(n).fill(fill); b.set(a); return b; };
    this.bucket = grow32(this.bucket);
    this.generation = grow32(this.generation, 1);
    const m = new Uint8Array(n); m.set(this.slotMask); this.slotMask = m;
    const e = new Float64Array(n); e.set(this.expiresAt); this.expiresAt = e;
    this.free = grow32(this.free);
    // Unroll the ring into the new arrays.
    const fs = new Int32Array(n), fg = new Int32Array(n);
    for (let i = 0; i < this.count; i++) {
      const j = (this.head + i) % old;
      fs[i] = this.fifoSlot[j]; fg[i] = this.fifoGen[j];
    }
    this.fifoSlot = fs; this.fifoGen = fg; this.head = 0;
    return true;
  }

  /**
   * Bucket of the lease that the last create() ended early to make room, or
   * -1. When the table is full, the oldest lease that holds no concurrency
   * slot is ended as if its TTL had run out: a client that acquires and never
   * releases cannot lock the table for a whole TTL.
   */
  lastEvicted = -1;

  /** A new lease id, or 0 when the table is full of leases holding concurrency slots. */
  create(bucket: number, slotMask: number, expiresAtMs: number): number {
    let slot: number;
    this.lastEvicted = -1;
    if (this.freeCount === 0 && this.used === this.bucket.length && !this.grow()) this.evictOldestWithoutSlot();
    if (this.freeCount > 0) slot = this.free[--this.freeCount];
    else {
      if (this.used === this.bucket.length) return 0;
      slot = this.used++;
    }
    // The FIFO can hold stale entries of released leases; it never holds more
    // entries than slots, because each slot has at most one live entry plus
    // stale ones that are dropped when they reach the head.
    if (this.count === this.fifoSlot.length) this.compactFifo();
    const gen = this.generation[slot];
    this.bucket[slot] = bucket;
    this.slotMask[slot] = slotMask;
    this.expiresAt[slot] = expiresAtMs;
    const tail = (this.head + this.count) % this.fifoSlot.length;
    this.fifoSlot[tail] = slot;
    this.fifoGen[tail] = gen;
    this.count++;
    this.active++;
    return (gen * SLOT_LIMIT + slot) * THREAD_LIMIT + this.thread;
  }

  private evictOldestWithoutSlot(): void {
    const len = this.fifoSlot.length;
    for (let i = 0; i < this.count; i++) {
      const j = (this.head + i) % len;
      const s = this.fifoSlot[j];
      if (this.generation[s] === this.fifoGen[j] && this.expiresAt[s] > 0 && this.slotMask[s] === 0) {
        this.lastEvicted = this.bucket[s];
        this.retire(s);
        return;
      }
    }
  }

  /**
   * Drops FIFO entries of leases already ended. Copies into fresh arrays: in
   * place, writing from 0 while reading from a wrapped head would overwrite
   * entries not yet read, and their leases would never expire.
   */
  private compactFifo(): void {
    const len = this.fifoSlot.length;
    const slots = new Int32Array(len), gens = new Int32Array(len);
    let w = 0;
    for (let i = 0; i < this.count; i++) {
      const j = (this.head + i) % len;
      const s = this.fifoSlot[j], g = this.fifoGen[j];
      if (this.generation[s] === g && this.expiresAt[s] > 0) {
        slots[w] = s; gens[w] = g; w++;
      }
    }
    this.fifoSlot = slots;
    this.fifoGen = gens;
    this.head = 0;
    this.count = w;
  }

  private slotOf(id: number): number {
    if (!Number.isSafeInteger(id) || id <= 0 || id % THREAD_LIMIT !== this.thread) return -1;
    const rest = Math.floor(id / THREAD_LIMIT);
    const slot = rest % SLOT_LIMIT;
    const gen = Math.floor(rest / SLOT_LIMIT);
    if (slot >= this.used || this.generation[slot] !== gen || this.expiresAt[slot] === 0) return -1;
    return slot;
  }

  private retire(slot: number): void {
    this.expiresAt[slot] = 0;
    const g = this.generation[slot] + 1;
    this.generation[slot] = g >= GENERATION_LIMIT ? 1 : g;
    this.free[this.freeCount++] = slot;
    this.active--;
  }

  /**
   * Ends a lease. Returns the lease's bucket, or -1 for an unknown id; the
   * lease's slot mask is left in `lastMask`.
   */
  lastMask = 0;
  release(id: number): number {
    const slot = this.slotOf(id);
    if (slot < 0) return -1;
    const b = this.bucket[slot];
    this.lastMask = this.slotMask[slot];
    this.retire(slot);
    return b;
  }

  /** Ends every lease that expired by `nowMs`, calling `onExpired` for each. */
  expire(nowMs: number, onExpired: (bucket: number, slotMask: number) => void): number {
    let n = 0;
    const len = this.fifoSlot.length;
    while (this.count > 0) {
      const s = this.fifoSlot[this.head], g = this.fifoGen[this.head];
      const live = this.generation[s] === g && this.expiresAt[s] > 0;
      if (live && this.expiresAt[s] > nowMs) break;
      this.head = (this.head + 1) % len;
      this.count--;
      if (live) {
        onExpired(this.bucket[s], this.slotMask[s]);
        this.retire(s);
        n++;
      }
    }
    return n;
  }
}
