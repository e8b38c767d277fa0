// Leases of one I/O thread. Owned by that thread alone (no shared memory, no
// locks): the thread that granted a lease is the only one that can end it, so
// any thread can tell from an id alone whether the lease could be its own.
//
// Every operation is O(1) (growing the arrays is amortised: they double up to
// the limit and never shrink), also when the table is full, so a client that
// acquires and never releases cannot slow the thread down. A lease is a slot
// in typed arrays (no object per lease). Live slots sit on one of two
// intrusive doubly-linked lists (prev/next), in creation order: PLAIN for
// leases that hold no concurrency slot, HELD for those that do; free slots
// sit on a third, singly-linked one.
// - RELEASE unlinks its slot.
// - Expiry: every lease gets the same TTL, so creation order is expiry order
//   and a sweep pops each list's head while it is due. After a reload that
//   shortens lease_ttl_ms from T1 to T2, a lease made within T1 of the reload
//   can wait behind older leases of its list: it ends at most T1 - T2 late
//   (never later than the leases made before the reload), plus the sweep
//   interval; leases made later are on time again. A longer TTL keeps the
//   order.
// - Full (limits.max_leases_per_thread): the head of PLAIN, the oldest lease
//   holding no concurrency slot, is ended to make room, counted as expired,
//   so an acquire-only client cannot lock the table for a TTL; when every
//   lease holds a concurrency slot, a new one is refused (OVERLOADED).
//
// Ids: id = nonce * NONCE_UNIT + slot * THREAD_LIMIT + thread, slot < 2^20,
// thread < 16, nonce in 1 .. 2^29 - 1 (29 random bits per lease; ids < 2^53,
// asserted below, so they are exact in JSON). The nonce is drawn for each
// lease from a buffer of crypto.randomFillSync bytes refilled every 4096
// leases (~5 ns per lease against ~2 ns for a seeded xorshift-style PRNG; a
// PRNG's state can be rebuilt from one's own lease ids, which would predict
// everyone else's), and differs from the nonce of the slot's previous lease:
// a late double release never ends the lease that took its slot, and an id
// from an older lease of the slot matches with probability 2^-29.
//
// Owners: a lease belongs to whoever acquired it, an Int32. A WebSocket
// connection is connOwner(connId), 1 .. 2^31 - 1 (ids wrap after 2^31 - 1
// connections of one thread, never within a TTL). RELEASE by any other owner
// is refused exactly as an unknown id is, so no reply tells whether an id
// exists. OWNER_ANYONE (0) is the hook for a lease "held by whoever holds its
// id" (HTTP with auth off); negative owners are free for another kind (HTTP
// tokens). A closed connection's leases are kept until their TTL: the call
// they guard may still be running upstream, so its concurrency slot stays
// taken; nobody else can release them.
//
// Why keys without a concurrency limit still get a stored lease: a stateless
// id (its fields checked by a keyed MAC) would cost no table, but 53 bits do
// not hold a bucket (20 bits), an expiry, the thread and >= 24 MAC bits; and
// nothing stateless can refuse a second RELEASE of the same id, so a client
// could report one lease's outcome (429, say) any number of times and steer
// the controller's capacity discovery. At ~30 bytes per slot the table costs
// at most 30 MiB per thread, and the eviction above keeps it from refusing.

import { randomFillSync } from 'node:crypto';
import { MAX_IO_THREADS, MAX_LEASES_PER_THREAD } from '../config/defaults.ts';
import { INT32_MAX, assertConstants } from '../shm/layout.ts';

export const THREAD_LIMIT = MAX_IO_THREADS;
export const SLOT_LIMIT = MAX_LEASES_PER_THREAD;
/** id / NONCE_UNIT is the nonce: slot and thread sit below it. */
export const NONCE_UNIT = SLOT_LIMIT * THREAD_LIMIT;
const NONCE_BITS = 29;
const NONCE_LIMIT = 2 ** NONCE_BITS;
assertConstants(NONCE_LIMIT * NONCE_UNIT <= 2 ** 53, 'lease ids < 2^53: NONCE_LIMIT * SLOT_LIMIT * THREAD_LIMIT <= 2^53');
assertConstants(NONCE_BITS >= 24, 'a lease id carries at least 24 random bits (PROTOCOL.md)');
assertConstants(NONCE_LIMIT - 1 <= INT32_MAX && SLOT_LIMIT <= INT32_MAX, 'nonces and slots fit an Int32Array');

/** Owner of a lease any caller may release (HTTP with auth off); a caller with this owner releases only such leases. */
export const OWNER_ANYONE = 0;
const CONN_OWNERS = INT32_MAX;

/**
 * The owner of the leases a connection acquires: a WebSocket's connId (1, 2,
 * ...) becomes 1 .. 2^31 - 1; an HTTP or gRPC caller's connId is already its
 * owner (0 = anyone, negative = a token's; io/caller.ts) and passes through.
 */
export function connOwner(connId: number): number {
  return connId <= 0 ? connId : ((connId - 1) % CONN_OWNERS) + 1;
}

/** Fills `out` with random bits (crypto.randomFillSync by default; tests pass a seeded one). */
export type RandomFill = (out: Uint32Array) => void;
const RANDOM_WORDS = 4096;
const cryptoFill: RandomFill = (out) => { randomFillSync(out); };

const NIL = -1;
const FREE = 0;
const PLAIN = 1;
const HELD = 2;

export class LeaseTable {
  private readonly thread: number;
  private readonly maxSlots: number;
  private readonly fill: RandomFill;
  private readonly random = new Uint32Array(RANDOM_WORDS);
  private randomAt = RANDOM_WORDS;
  private bucket: Int32Array;
  private owner: Int32Array;
  private nonce: Int32Array;
  private slotMask: Uint8Array;
  private expiresAt: Float64Array;
  /** FREE, PLAIN or HELD: the list the slot is on. */
  private list: Uint8Array;
  private prev: Int32Array;
  private next: Int32Array;
  /** Head and tail slot of each list, by list (FREE uses the head only). */
  private readonly heads = new Int32Array(3).fill(NIL);
  private readonly tails = new Int32Array(3).fill(NIL);
  /** Slots ever handed out; those above are free without being on FREE. */
  private used = 0;
  /** Leases currently held. */
  active = 0;
  /**
   * Bucket of the lease that the last create() ended early to make room
   * (the oldest one holding no concurrency slot), or -1.
   */
  lastEvicted = -1;
  /** Slot mask of the lease the last successful release() ended. */
  lastMask = 0;

  constructor(thread: number, maxSlots: number, initialSlots = 1024, fill: RandomFill = cryptoFill) {
    if (thread < 0 || thread >= THREAD_LIMIT) throw new Error(`thread ${thread} out of range 0..${THREAD_LIMIT - 1}`);
    this.thread = thread;
    this.maxSlots = Math.min(maxSlots, SLOT_LIMIT);
    this.fill = fill;
    const n = Math.max(1, Math.min(initialSlots, this.maxSlots));
    this.bucket = new Int32Array(n);
    this.owner = new Int32Array(n);
    this.nonce = new Int32Array(n);
    this.slotMask = new Uint8Array(n);
    this.expiresAt = new Float64Array(n);
    this.list = new Uint8Array(n);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
  }

  static threadOf(id: number): number { return id % THREAD_LIMIT; }

  /** Doubles the arrays, up to maxSlots; false when they are at it. */
  private grow(): boolean {
    const old = this.bucket.length;
    if (old >= this.maxSlots) return false;
    const n = Math.min(old * 2, this.maxSlots);
    const i32 = (a: Int32Array) => { const b = new Int32Array(n); b.set(a); return b; };
    this.bucket = i32(this.bucket);
    this.owner = i32(this.owner);
    this.nonce = i32(this.nonce);
    this.prev = i32(this.prev);
    this.next = i32(this.next);
    const m = new Uint8Array(n); m.set(this.slotMask); this.slotMask = m;
    const l = new Uint8Array(n); l.set(this.list); this.list = l;
    const e = new Float64Array(n); e.set(this.expiresAt); this.expiresAt = e;
    return true;
  }

  /** A new lease of `owner`, or 0 when the table is full of leases holding concurrency slots. */
  create(bucket: number, slotMask: number, expiresAtMs: number, owner: number): number {
    this.lastEvicted = -1;
    let slot = this.heads[FREE];
    if (slot !== NIL) this.heads[FREE] = this.next[slot];
    else if (this.used < this.bucket.length || this.grow()) slot = this.used++;
    else {
      slot = this.heads[PLAIN];
      if (slot === NIL) return 0;
      this.lastEvicted = this.bucket[slot];
      this.unlink(slot);
      this.active--;
    }
    const nonce = this.drawNonce(this.nonce[slot]);
    this.nonce[slot] = nonce;
    this.bucket[slot] = bucket;
    this.owner[slot] = owner;
    this.slotMask[slot] = slotMask;
    this.expiresAt[slot] = expiresAtMs;
    this.append(slot, slotMask === 0 ? PLAIN : HELD);
    this.active++;
    return nonce * NONCE_UNIT + slot * THREAD_LIMIT + this.thread;
  }

  /** 29 random bits, never 0 and never `previous`. */
  private drawNonce(previous: number): number {
    if (this.randomAt === RANDOM_WORDS) { this.fill(this.random); this.randomAt = 0; }
    const n = this.random[this.randomAt++] >>> (32 - NONCE_BITS);
    return n === 0 || n === previous ? (previous % (NONCE_LIMIT - 1)) + 1 : n;
  }

  private append(slot: number, list: number): void {
    const tail = this.tails[list];
    this.list[slot] = list;
    this.prev[slot] = tail;
    this.next[slot] = NIL;
    if (tail === NIL) this.heads[list] = slot; else this.next[tail] = slot;
    this.tails[list] = slot;
  }

  private unlink(slot: number): void {
    const list = this.list[slot], p = this.prev[slot], n = this.next[slot];
    if (p === NIL) this.heads[list] = n; else this.next[p] = n;
    if (n === NIL) this.tails[list] = p; else this.prev[n] = p;
  }

  private retire(slot: number): void {
    this.unlink(slot);
    this.list[slot] = FREE;
    this.next[slot] = this.heads[FREE];
    this.heads[FREE] = slot;
    this.active--;
  }

  /** The slot of a live lease with this id that `owner` may end, or -1. */
  private slotOf(id: number, owner: number): number {
    if (!Number.isSafeInteger(id) || id <= 0 || id % THREAD_LIMIT !== this.thread) return -1;
    const slot = Math.floor(id / THREAD_LIMIT) % SLOT_LIMIT;
    if (slot >= this.used || this.list[slot] === FREE || this.nonce[slot] !== Math.floor(id / NONCE_UNIT)) return -1;
    const o = this.owner[slot];
    return o === owner || o === OWNER_ANYONE ? slot : -1;
  }

  /**
   * Ends a lease of `owner`. Returns the lease's bucket (its slot mask in
   * `lastMask`), or -1, changing nothing, for any id that is not a live lease
   * of `owner`.
   */
  release(id: number, owner: number): number {
    const slot = this.slotOf(id, owner);
    if (slot < 0) return -1;
    this.lastMask = this.slotMask[slot];
    this.retire(slot);
    return this.bucket[slot];
  }

  /** Ends every lease due by `nowMs` (see the header), calling `onExpired` for each. */
  expire(nowMs: number, onExpired: (bucket: number, slotMask: number) => void): number {
    return this.sweep(PLAIN, nowMs, onExpired) + this.sweep(HELD, nowMs, onExpired);
  }

  private sweep(list: number, nowMs: number, onExpired: (bucket: number, slotMask: number) => void): number {
    let n = 0;
    for (let s = this.heads[list]; s !== NIL && this.expiresAt[s] <= nowMs; s = this.heads[list]) {
      this.retire(s);
      onExpired(this.bucket[s], this.slotMask[s]);
      n++;
    }
    return n;
  }
}
