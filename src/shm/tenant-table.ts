// Tenants: keys `pool/service/TENANT` made on first use, in shared memory
// (the TENANTS region of layout.ts). What a tenant is and its tiers are in
// docs/tenants.md; this module holds their slots.
//
// Threads: every I/O thread and the main thread hold a TenantTable over the
// same buffer. I/O threads find tenants (every acquire of a tenant key) and
// make them (the first acquire); only the main thread forgets idle ones and
// changes a tenant's tier or its tier's rates (each I/O thread again when
// the change reaches it, for tenants it made meanwhile: setTier,
// setTierRates). Nothing here takes a lock; finding a tenant that exists is
// plain reads, one Atomics.load and a byte compare.
//
// The table: open addressing by neighbourhoods. A keyed hash of (service,
// name) picks a neighbourhood of TENANT_NEIGHBORHOOD_SLOTS slots; the tenant
// lives in any slot of it. Each slot's INDEX word is `hash & ~3 | STATE`
// (EMPTY 0, CLAIMED, LIVE, RETIRED), claimed by one compareExchange from 0,
// so the claim carries the tenant's hash: a second thread making the same
// tenant sees the claim and waits for it instead of claiming another slot.
// Why neighbourhoods and not plain linear probing: a lookup that misses ends
// after one bounded scan (32 index words, four cache lines), and the proof
// below needs a fixed set of slots per key. Why not a lock-free linked hash
// map: shared memory holds no pointers, and a fixed array with a CAS per
// slot needs no allocation and no reclamation of nodes.
//
// Never twice for the same tenant. A maker scans the neighbourhood (a LIVE
// or CLAIMED slot with its hash: found, or wait for the claim to finish),
// then claims the first EMPTY slot. Slots go from EMPTY to taken only by a
// claim, and back to EMPTY only by the main thread, which bumps the
// neighbourhood's SEQ to odd before and to even after. A maker reads SEQ
// before its scan (odd: retry) and again after its claim; if it moved, it
// retires its claim and starts over. Without a change, two makers of one
// tenant claim in scan order: the later scan sees the earlier claim (all
// Atomics are sequentially consistent), so at most one claims. With a
// change, the maker whose scan may have missed a slot that became EMPTY sees
// SEQ move and retries. test/unit/shm/tenant-table.test.ts hammers it from
// worker threads.
//
// Forgetting idle tenants (main thread, sweep(), each tick): a LIVE slot
// whose last acquire is older than its service's idle_s goes LIVE ->
// RETIRED by compareExchange; a RETIRED slot still RETIRED at the next sweep
// goes EMPTY (SEQ bumped around it). A thread that found a tenant just before
// it was retired stays safe: it remembered the slot's INDEX word and
// generation (lastWord, lastGen), takes its tokens, then checks they are
// unchanged (stillIs); if not, it gives the tokens back and looks again. The
// slot is not reused before a whole tick has passed (RETIRED is never
// claimed), so its tokens go back to the record they came from unless that
// thread stalled for more than a tick between the two reads; then the
// refund goes to the new tenant of the slot, which is made full anyway.
//
// Memory: slots are a power of two, at least twice the sum of tenants.max
// (layout.ts, tenantSlotsFor), sized at start: 8 + 96 bytes per slot.
// A neighbourhood that is full (32 tenants hashed into it while the table is
// half empty: the hash is keyed with the daemon's random seed, so a client
// cannot aim at one) answers OVERLOADED, as `max` does.

import { earn, putAt, restartAt, trim } from './bucket-cas.ts';
import {
  FAILURE_SEED_WORDS, MILLI, TENANT_FIELDS, TENANT_INDEX_FIELDS, TENANT_NAME_BYTES, TENANT_NEIGHBORHOOD_SLOTS, TI_GEN_INDEX,
  T_BURST_MILLI_INDEX, T_KEY_BYTES_INDEX, T_LAST_REFILL_MS_INDEX, T_LAST_USED_MS_INDEX, T_NAME_INDEX, T_RATE_MILLI_INDEX,
  T_SERVICE_INDEX, T_TIER_INDEX, T_TOKENS_MILLI_INDEX, type ShmViews,
} from './layout.ts';

// Module-local copies of the layout's offsets: V8 folds a local const into the
// code it compiles, but reads an imported binding from its cell on every use
// (under tsx, through a getter), and these are read on every tenant acquire.
const IDX_FIELDS = TENANT_INDEX_FIELDS;
const REC_FIELDS = TENANT_FIELDS;
const GEN = TI_GEN_INDEX;
const SERVICE = T_SERVICE_INDEX;
const NAME_LEN = T_KEY_BYTES_INDEX;
const NAME = T_NAME_INDEX;
const TIER = T_TIER_INDEX;
const RATE = T_RATE_MILLI_INDEX;
const BURST = T_BURST_MILLI_INDEX;
const LAST_USED = T_LAST_USED_MS_INDEX;
const LAST_REFILL = T_LAST_REFILL_MS_INDEX;
const TOKENS = T_TOKENS_MILLI_INDEX;

const EMPTY = 0;
const CLAIMED = 1;
const LIVE = 2;
const RETIRED = 3;
const STATE_MASK = 3;
const HOOD = TENANT_NEIGHBORHOOD_SLOTS;
/** create(): no slot (the neighbourhood or the service's max is full). */
export const TENANT_FULL = -1;
/** create(): another thread is making a tenant with the same hash and has not finished; try again. */
export const TENANT_BUSY = -2;
/** Reads of a CLAIMED slot before create() sleeps on it (a claim is finished in well under a microsecond unless its thread is descheduled). */
const SPIN_LIMIT = 1 << 14;
/**
 * Then how long create() sleeps on the slot (Atomics.wait, woken by the
 * claim's end) before it gives up with TENANT_BUSY: a thread descheduled
 * mid-claim on a busy machine is back within a few milliseconds, and a
 * spurious OVERLOADED for a tenant's first request costs its client a retry.
 */
const CLAIM_WAIT_MS = 5;
/** Attempts of create() when SEQ moves under it. */
const ATTEMPTS = 8;

/** A tier's tenants' rate and burst changed by a reload (milli-tokens): setTierRates. */
export interface TierRateChange {
  /** The tier's bucket. */
  readonly tier: number;
  /** Its tenants' rate before the reload: a tenant at another rate is under a defensive limit. */
  readonly fromRateMilli: number;
  readonly rateMilli: number;
  readonly burstMilli: number;
}

export class TenantTable {
  // Fields set in the constructor are `declare`d (no class field emitted, so none starts as undefined): V8 then keeps
  // each typed array's exact kind, and the inlined hot path reads them without a check per access (as bucket-table.ts).
  declare readonly slots: number;
  declare private readonly index: Int32Array;
  declare private readonly rec: Int32Array;
  /** The records' bytes (tenant names are compared and written through it). */
  declare private readonly recBytes: Uint8Array;
  declare private readonly seq: Int32Array;
  declare private readonly serviceCount: Int32Array;
  declare readonly tierCount: Int32Array;
  declare private readonly hoodMask: number;
  declare private readonly seed: number;
  /** What find() and create() saw of the slot they returned: its INDEX word and generation (stillIs compares). */
  lastWord = 0;
  lastGen = 0;
  /** Main thread: slots seen RETIRED at the last sweep (emptied at this one). */
  private retiredSeen: Uint8Array | null = null;

  /** `claimWaitMs`: how long create() sleeps on another thread's claim (CLAIM_WAIT_MS; tests give more). */
  constructor(views: ShmViews, private readonly claimWaitMs = CLAIM_WAIT_MS) {
    this.slots = views.layout.tenantSlots;
    this.index = views.tenantIndex;
    this.rec = views.tenantRecords;
    this.recBytes = new Uint8Array(this.rec.buffer, this.rec.byteOffset, this.rec.byteLength);
    this.seq = views.tenantSeq;
    this.serviceCount = views.tenantServiceCount;
    this.tierCount = views.tenantTierCount;
    this.hoodMask = Math.max(0, this.slots / HOOD - 1);
    // The FAILURES seed is random per daemon and fixed for its life: the hash is keyed with part of it.
    this.seed = views.failureSeed[FAILURE_SEED_WORDS - 1] ^ 0x5bd1e995;
  }

  /** The keyed hash of tenant `b[start, end)` of service bucket `service`. */
  hash(service: number, b: Uint8Array, start: number, end: number): number {
    let h = Math.imul(this.seed ^ (service + 1), 0x9e3779b1);
    for (let i = start; i < end; i++) h = Math.imul(h ^ b[i], 0x01000193);
    h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The LIVE slot of tenant `b[start, end)` of `service` with hash h, or -1. Sets lastWord and lastGen. */
  find(service: number, b: Uint8Array, start: number, end: number, h: number): number {
    const idx = this.index;
    const want = (h & ~STATE_MASK) | LIVE;
    const first = (h & this.hoodMask) * HOOD;
    for (let k = 0; k < HOOD; k++) {
      const slot = first + k;
      if (idx[slot * IDX_FIELDS] !== want) continue;
      const word = Atomics.load(idx, slot * IDX_FIELDS); // orders the record's reads after its publication
      if (word !== want || !this.holds(slot, service, b, start, end)) continue;
      this.lastWord = word;
      this.lastGen = idx[slot * IDX_FIELDS + GEN];
      return slot;
    }
    return -1;
  }

  /** True when `slot` is still what find() or create() returned (not retired, not reused). */
  stillIs(slot: number, word: number, gen: number): boolean {
    // Plain reads: called after the take's compareExchange, which orders them after it.
    const i = slot * IDX_FIELDS;
    return this.index[i] === word && this.index[i + GEN] === gen;
  }

  private holds(slot: number, service: number, b: Uint8Array, start: number, end: number): boolean {
    return this.rec[slot * REC_FIELDS + SERVICE] === service && this.nameIs(slot, b, start, end);
  }

  /**
   * Finds or makes the tenant (I/O threads): a new one in `tier` with that
   * tier's rate and burst (milli-tokens), full. The slot, TENANT_FULL
   * (`maxTenants` of the service held, or its neighbourhood full) or
   * TENANT_BUSY. Sets lastWord and lastGen.
   */
  create(service: number, b: Uint8Array, start: number, end: number, h: number, maxTenants: number,
    tier: number, rateMilli: number, burstMilli: number, now: number): number {
    const idx = this.index;
    const hood = h & this.hoodMask;
    const first = hood * HOOD;
    const tag = h & ~STATE_MASK;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const seq = Atomics.load(this.seq, hood);
      if ((seq & 1) !== 0) continue; // the main thread is emptying a slot here
      let empty = -1;
      let claimed = -1;
      for (let k = 0; k < HOOD; k++) {
        const slot = first + k;
        const word = Atomics.load(idx, slot * IDX_FIELDS);
        if (word === EMPTY) { if (empty < 0) empty = slot; continue; }
        if ((word & ~STATE_MASK) !== tag) continue;
        if ((word & STATE_MASK) === LIVE && this.holds(slot, service, b, start, end)) {
          this.lastWord = word;
          this.lastGen = idx[slot * IDX_FIELDS + GEN];
          return slot;
        }
        if ((word & STATE_MASK) === CLAIMED) claimed = slot;
      }
      if (claimed >= 0) { // maybe this tenant, being made by another thread
        if (!this.awaitClaim(claimed)) return TENANT_BUSY;
        continue;
      }
      if (empty < 0) return TENANT_FULL;
      if (Atomics.add(this.serviceCount, service, 1) >= maxTenants) {
        Atomics.sub(this.serviceCount, service, 1);
        return TENANT_FULL;
      }
      if (Atomics.compareExchange(idx, empty * IDX_FIELDS, EMPTY, tag | CLAIMED) !== EMPTY) {
        Atomics.sub(this.serviceCount, service, 1);
        continue;
      }
      const gen = (idx[empty * IDX_FIELDS + GEN] + 1) | 0;
      Atomics.store(idx, empty * IDX_FIELDS + GEN, gen);
      this.write(empty, service, b, start, end, tier, rateMilli, burstMilli, now);
      if (Atomics.load(this.seq, hood) !== seq) {
        // A slot of this neighbourhood became EMPTY since the scan: it may hold a claim of this tenant now. Start over.
        Atomics.store(idx, empty * IDX_FIELDS, tag | RETIRED);
        Atomics.notify(idx, empty * IDX_FIELDS);
        continue;
      }
      Atomics.add(this.tierCount, tier, 1);
      Atomics.store(idx, empty * IDX_FIELDS, tag | LIVE);
      Atomics.notify(idx, empty * IDX_FIELDS); // a thread sleeping on this claim (awaitClaim)
      this.lastWord = tag | LIVE;
      this.lastGen = gen;
      return empty;
    }
    return TENANT_BUSY;
  }

  /** Waits (bounded: a spin, then a sleep on the word) until `slot` is no longer CLAIMED; false if it still is. */
  private awaitClaim(slot: number): boolean {
    const at = slot * IDX_FIELDS;
    for (let i = 0; i < SPIN_LIMIT; i++) {
      if ((Atomics.load(this.index, at) & STATE_MASK) !== CLAIMED) return true;
    }
    const until = performance.now() + this.claimWaitMs;
    for (let left = this.claimWaitMs; left > 0; left = until - performance.now()) {
      const word = Atomics.load(this.index, at);
      if ((word & STATE_MASK) !== CLAIMED) return true;
      Atomics.wait(this.index, at, word, left);
    }
    return (Atomics.load(this.index, at) & STATE_MASK) !== CLAIMED;
  }

  private write(slot: number, service: number, b: Uint8Array, start: number, end: number, tier: number,
    rateMilli: number, burstMilli: number, now: number): void {
    const r = slot * REC_FIELDS;
    const rec = this.rec;
    rec[r + SERVICE] = service;
    rec[r + NAME_LEN] = end - start;
    this.recBytes.set(b.subarray(start, end), (r + NAME) * 4);
    rec[r + TIER] = tier;
    rec[r + RATE] = rateMilli;
    rec[r + BURST] = burstMilli;
    rec[r + TOKENS] = burstMilli;
    rec[r + LAST_REFILL] = now;
    rec[r + LAST_USED] = now;
  }

  /** The tenant's service (bucket index). */
  serviceOf(slot: number): number { return this.rec[slot * REC_FIELDS + SERVICE]; }

  /** True when the tenant's name is b[start, end) (whatever its service). */
  nameIs(slot: number, b: Uint8Array, start: number, end: number): boolean {
    const r = slot * REC_FIELDS;
    const len = end - start;
    if (this.rec[r + NAME_LEN] !== len) return false;
    const rb = this.recBytes;
    const at = (r + NAME) * 4;
    for (let i = 0; i < len; i++) if (rb[at + i] !== b[start + i]) return false;
    return true;
  }

  /** The tenant's tier (bucket index). */
  tierOf(slot: number): number { return this.rec[slot * REC_FIELDS + TIER]; }
  /** The tenant's bucket size, milli-tokens. */
  burstMilli(slot: number): number { return this.rec[slot * REC_FIELDS + BURST]; }
  /** The tenant's refill rate, milli-tokens per second (a tier's, or a defensive limit's). */
  rateMilli(slot: number): number { return Atomics.load(this.rec, slot * REC_FIELDS + RATE); }

  /**
   * Refills the tenant's bucket and takes `milli` if it then holds that
   * many; marks it used at `now`. The refill and the take are one CAS on the
   * tokens (earn() then takeAt() were two whenever a millisecond had passed,
   * which for a tenant among many busy ones is nearly every request); the
   * refill's interval is claimed first by CAS on LAST_REFILL, as earn() does,
   * so each millisecond is credited once.
   */
  take(slot: number, milli: number, now: number): boolean {
    const r = slot * REC_FIELDS;
    const rec = this.rec;
    if (rec[r + LAST_USED] !== now) rec[r + LAST_USED] = now;
    let add = 0;
    const last = rec[r + LAST_REFILL];
    const elapsed = (now - last) | 0;
    if (elapsed > 0) {
      const earned = Math.floor((elapsed * rec[r + RATE]) / 1000);
      if (earned > 0 && Atomics.compareExchange(rec, r + LAST_REFILL, last, now) === last) add = earned;
    }
    const burst = rec[r + BURST];
    let cur = rec[r];
    for (;;) {
      const have = add === 0 ? cur : Math.max(cur, Math.min(burst, cur + add)); // never lowers what it holds
      if (have < milli && have === cur) return false; // too few and nothing earned: nothing to write
      const next = have >= milli ? have - milli : have;
      const seen = Atomics.compareExchange(rec, r, cur, next);
      if (seen === cur) return have >= milli;
      cur = seen;
    }
  }

  /** Marks the tenant used at `now` (a waiter of it is still waiting: not idle). */
  touch(slot: number, now: number): void {
    const i = slot * REC_FIELDS + LAST_USED;
    if (this.rec[i] !== now) this.rec[i] = now;
  }

  /** Gives back what take() took (the grant failed further up). */
  giveBack(slot: number, milli: number): void {
    putAt(this.rec, slot * REC_FIELDS, milli, 0);
  }

  /** Milliseconds until the tenant's bucket holds `milli` (after a failed take). */
  retryAfterMs(slot: number, milli: number): number {
    const r = slot * REC_FIELDS;
    const rate = this.rec[r + RATE];
    if (rate <= 0) return 1000;
    return Math.max(1, Math.ceil((Math.max(0, milli - Atomics.load(this.rec, r)) * 1000) / rate));
  }

  /** Whole tokens left in the tenant's bucket. */
  remaining(slot: number): number {
    const milli = this.rec[slot * REC_FIELDS]; // a figure for the reply: a plain read
    return milli > 0 ? Math.floor(milli / MILLI) : 0;
  }

  // --- Main thread only -----------------------------------------------------

  /**
   * Moves a live tenant to another tier: its rate and burst from now on, its
   * tokens trimmed to the burst. The main thread does it for a tier change,
   * and each I/O thread again when the change reaches it (TenantKeys): the
   * tier moves by compareExchange, so the tier counts move once.
   */
  setTier(slot: number, tier: number, rateMilli: number, burstMilli: number, now: number): void {
    const r = slot * REC_FIELDS;
    earn(this.rec, r, now, 0); // what the old rate earned so far; the new one counts from now
    restartAt(this.rec, r, now); // or from a later time a thread ahead of this one already claimed
    const before = Atomics.load(this.rec, r + TIER);
    if (before !== tier && Atomics.compareExchange(this.rec, r + TIER, before, tier) === before) {
      Atomics.sub(this.tierCount, before, 1);
      Atomics.add(this.tierCount, tier, 1);
    }
    Atomics.store(this.rec, r + RATE, rateMilli);
    Atomics.store(this.rec, r + BURST, burstMilli);
    trim(this.rec, r, burstMilli);
  }

  /**
   * A tier's new rate and burst (a reload, daemon/reload.ts) for every live
   * tenant in it: one refilling at the tier's old rate (`change.fromRateMilli`)
   * refills at the new one from `now` (what it earned until now at the old);
   * one held at another rate (a defensive limit: tenant-guard.ts rewrites it
   * from the new tps at its next tick) keeps its rate. Each takes the new
   * burst, what it holds trimmed to it. The main thread at the reload, and
   * each I/O thread when the change reaches it (for tenants it made at the
   * old rate meanwhile): a full scan of the slots, once per reload. Returns
   * how many tenants changed.
   */
  setTierRates(change: TierRateChange, now: number): number {
    const { tier, fromRateMilli, rateMilli, burstMilli } = change;
    let changed = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      if ((Atomics.load(this.index, slot * IDX_FIELDS) & STATE_MASK) !== LIVE) continue;
      const r = slot * REC_FIELDS;
      if (Atomics.load(this.rec, r + TIER) !== tier) continue;
      const rate = Atomics.load(this.rec, r + RATE);
      const nextRate = rate === fromRateMilli ? rateMilli : rate;
      if (nextRate === rate && Atomics.load(this.rec, r + BURST) === burstMilli) continue;
      this.setTier(slot, tier, nextRate, burstMilli, now);
      changed++;
    }
    return changed;
  }

  /** The LIVE slot of a tenant by name (main thread, admin), or -1. */
  findByName(service: number, name: Uint8Array): number {
    return this.find(service, name, 0, name.length, this.hash(service, name, 0, name.length));
  }

  /**
   * Forgets idle tenants (main thread, once per tick): LIVE ones unused for
   * idleMsOf(service) go RETIRED; those already RETIRED at the last sweep go
   * EMPTY, SEQ bumped around. Returns how many were retired.
   */
  sweep(now: number, idleMsOf: (service: number) => number): number {
    const idx = this.index;
    const seen = this.retiredSeen ??= new Uint8Array(this.slots);
    let retired = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      const word = idx[slot * IDX_FIELDS];
      const state = word & STATE_MASK;
      if (state === EMPTY || state === CLAIMED) { seen[slot] = 0; continue; }
      const r = slot * REC_FIELDS;
      if (state === RETIRED) {
        if (seen[slot] === 0) { seen[slot] = 1; continue; }
        seen[slot] = 0;
        const hood = (slot / HOOD) | 0;
        Atomics.add(this.seq, hood, 1);
        Atomics.store(idx, slot * IDX_FIELDS, EMPTY);
        Atomics.add(this.seq, hood, 1);
        Atomics.sub(this.serviceCount, this.rec[r + SERVICE], 1);
        continue;
      }
      const service = this.rec[r + SERVICE];
      if (((now - this.rec[r + LAST_USED]) | 0) < idleMsOf(service)) continue;
      if (Atomics.compareExchange(idx, slot * IDX_FIELDS, word, (word & ~STATE_MASK) | RETIRED) !== word) continue;
      Atomics.sub(this.tierCount, this.rec[r + TIER], 1);
      seen[slot] = 1;
      retired++;
    }
    return retired;
  }

  /** True while the slot holds a LIVE tenant (main thread: the surge and abuse detector). */
  isLive(slot: number): boolean { return (Atomics.load(this.index, slot * TENANT_INDEX_FIELDS) & STATE_MASK) === LIVE; }
  /** The slot's generation, bumped each time a tenant is made in it: a detector's state is for one generation. */
  genOf(slot: number): number { return Atomics.load(this.index, slot * TENANT_INDEX_FIELDS + TI_GEN_INDEX); }

  /** Tenants held by a service (claimed, live, or retired and not yet emptied). */
  heldBy(service: number): number { return Atomics.load(this.serviceCount, service); }

  /** Calls fn for every live tenant of `service` (main thread: admin list, tests). */
  forEachLive(service: number, fn: (slot: number, name: string, tier: number) => void): void {
    for (let slot = 0; slot < this.slots; slot++) {
      if ((Atomics.load(this.index, slot * IDX_FIELDS) & STATE_MASK) !== LIVE) continue;
      const r = slot * REC_FIELDS;
      if (this.rec[r + SERVICE] !== service) continue;
      fn(slot, this.nameOf(slot), this.rec[r + TIER]);
    }
  }

  nameOf(slot: number): string {
    const r = slot * REC_FIELDS;
    const at = (r + NAME) * 4;
    return textDecoder.decode(this.recBytes.slice(at, at + this.rec[r + NAME_LEN]));
  }
}

const textDecoder = new TextDecoder();
/** The largest tenant name, bytes (TENANT_NAME_BYTES of a record). */
export const MAX_TENANT_NAME_BYTES = TENANT_NAME_BYTES;
