// Tenant keys on an I/O thread: `pool/service/TENANT` for a service with
// `tenants`, resolved to the tenant's slot (shm/tenant-table.ts), made on the
// first acquire in the tier an admin placed it in (or the default tier).
//
// Threads: one TenantKeys per RequestHandler (per I/O thread), used only by
// that thread. The tier assignments are the main thread's (SQLite, op 17
// TENANTS); it sends each change to every I/O thread ('tenant-tier'), which
// keeps them here for the tenants it makes, and writes the tier of a tenant
// that already lives into shared memory itself. A thread that made a tenant
// with the old tier before the change reached it fixes the slot when the
// message arrives (applyTier), so every tenant is in its assigned tier once
// every thread has the message.
//
// resolve() makes no string and allocates nothing for a tenant that exists:
// the key's bytes are copied into a scratch buffer, the service found by its
// bytes (KeyIndex.lookupBytes), the name checked byte by byte, the tenant
// found by its hash. Only making a tenant builds its name as a string, to
// look up its tier.

import { MAX_KEY_BYTES } from '../protocol/opcodes.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import { MILLI } from '../shm/layout.ts';
import { TENANT_BUSY, TENANT_FULL, TenantTable, type TierRateChange } from '../shm/tenant-table.ts';
import type { TenantCounters } from '../shm/tenant-counters.ts';
import type { RequestKey } from './request-reader.ts';

/** resolve(): the key names no tenant (no service with tenants, or a name outside [A-Za-z0-9_.:@-]{1,64}). */
export const NOT_TENANT = -1;
/** resolve(): the service's tenants.max is reached (or the tenant's neighbourhood is full). */
export const TENANTS_FULL = -2;
/** resolve(): another thread is making this tenant right now. */
export const TENANT_BEING_MADE = -3;

const SLASH = 0x2f;
/** The lookup memo's entries (a power of two), in sets of MEMO_WAYS. */
const MEMO_ENTRIES = 4096;
/**
 * Entries a key may sit in (a power of two). Direct-mapped (1), a public
 * API's 1000 busy tenants in turn left about a quarter of them evicting each
 * other on every request, each then paying the whole lookup; in sets of 4
 * next to each other, under 1 % do.
 */
const MEMO_WAYS = 4;
const MAX_NAME_BYTES = 64;
/** NAME_BYTE[b] = 1 when byte b may appear in a tenant name: A-Z a-z 0-9 _ . : @ - */
const NAME_BYTE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-') NAME_BYTE[c.charCodeAt(0)] = 1;

/** A tier's bucket, its tenants' rate and burst in milli-tokens. */
interface TierRates { readonly rateMilli: Int32Array; readonly burstMilli: Int32Array }

/** `service index/name`: the assignments' map key. */
export function assignmentKey(service: number, name: string): string {
  return `${service}/${name}`;
}

export class TenantKeys {
  readonly table: TenantTable;
  private readonly scratch = new Uint8Array(MAX_KEY_BYTES * 3);
  /** Per bucket: tenants.max of a service with tenants, else 0. */
  private readonly maxOf: Int32Array;
  /** Per service bucket with tenants: its default tier's bucket. */
  private readonly defaultTier: Int32Array;
  private readonly rates: TierRates;
  /** Tier assignments: assignmentKey -> tier bucket. */
  private readonly assigned = new Map<string, number>();
  private readonly keys: KeyIndex;
  /** The slot resolve() returned: the INDEX word and generation it saw (TenantTable.stillIs). */
  word = 0;
  gen = 0;
  /**
   * This thread's memo of recent lookups, direct-mapped by a hash of the
   * whole key: each entry a slot and what it held when found (INDEX word,
   * generation). A hit is checked against the slot itself (still that
   * tenant: stillIs, then its name and its service's key compared with the
   * key's bytes), instead of the service lookup, the keyed hash and the
   * neighbourhood scan. 20 bytes an entry.
   */
  private readonly memoLen = new Int32Array(MEMO_ENTRIES);
  /** The whole key's hash, compared before anything else (most entries of a set hold other keys). */
  private readonly memoHash = new Int32Array(MEMO_ENTRIES);
  /** The way of a set the next new entry replaces when none is free (round robin over every set). */
  private memoVictim = 0;
  private readonly memoSlot = new Int32Array(MEMO_ENTRIES);
  private readonly memoWord = new Int32Array(MEMO_ENTRIES);
  private readonly memoGen = new Int32Array(MEMO_ENTRIES);
  /** Each tenant service's key bytes (null for other buckets), to check a memo hit's prefix. */
  private readonly serviceKey: (Uint8Array | null)[];

  /** This thread's per-tenant counters (telemetry of the busiest tenants, the abuse detector); null when none were given. */
  readonly counters: TenantCounters | null;

  constructor(keys: KeyIndex, table: TenantTable, counters: TenantCounters | null = null) {
    this.keys = keys;
    this.table = table;
    this.counters = counters;
    const n = keys.size;
    this.maxOf = new Int32Array(n);
    this.defaultTier = new Int32Array(n).fill(-1);
    this.rates = { rateMilli: new Int32Array(n), burstMilli: new Int32Array(n) };
    this.serviceKey = new Array<Uint8Array | null>(n).fill(null);
    for (let b = 0; b < n; b++) {
      const tenants = keys.tenantsOf(b);
      if (tenants !== null) {
        this.serviceKey[b] = new TextEncoder().encode(keys.key(b));
        this.maxOf[b] = tenants.max;
        this.defaultTier[b] = keys.find(`${keys.key(b)}/~${tenants.default_tier}`);
      }
      const tier = keys.tierOf(b);
      if (tier !== null) {
        this.rates.rateMilli[b] = Math.round(tier.tps * MILLI);
        this.rates.burstMilli[b] = Math.round(tier.burst * MILLI);
      }
    }
  }

  /**
   * The slot of the tenant the key names, made if new (with `now` as its
   * first use), or NOT_TENANT, TENANTS_FULL, TENANT_BEING_MADE. Sets word
   * and gen for TenantTable.stillIs.
   */
  resolve(key: RequestKey, now: number): number {
    const b = this.scratch;
    const n = key.copyBytes(b);
    let m = 0x811c9dc5 | 0;
    for (let i = 0; i < n; i++) m = Math.imul(m ^ b[i], 0x01000193);
    m = Math.imul(m ^ (m >>> 15), 0x2c1b3c6d);
    m ^= m >>> 13;
    const set = m & (MEMO_ENTRIES - MEMO_WAYS);
    for (let e = set; e < set + MEMO_WAYS; e++) {
      if (this.memoHash[e] === m && this.memoLen[e] === n && this.memoHit(e, b, n)) {
        this.word = this.memoWord[e];
        this.gen = this.memoGen[e];
        return this.memoSlot[e];
      }
    }
    const slot = this.lookup(b, n, now);
    if (slot >= 0) this.remember(set, m, n, slot);
    return slot;
  }

  /** Puts a found tenant in memo set `set`: a free or stale way, else the next victim. */
  private remember(set: number, hash: number, n: number, slot: number): void {
    let e = -1;
    for (let w = set; w < set + MEMO_WAYS; w++) {
      if (this.memoLen[w] === 0 || !this.table.stillIs(this.memoSlot[w], this.memoWord[w], this.memoGen[w])) { e = w; break; }
    }
    if (e < 0) e = set + (this.memoVictim++ & (MEMO_WAYS - 1));
    this.memoHash[e] = hash;
    this.memoLen[e] = n;
    this.memoSlot[e] = slot;
    this.memoWord[e] = this.word;
    this.memoGen[e] = this.gen;
  }

  /** True when memo entry e's slot is still the tenant whose key is b[0, n). */
  private memoHit(e: number, b: Uint8Array, n: number): boolean {
    const t = this.table;
    const slot = this.memoSlot[e];
    if (!t.stillIs(slot, this.memoWord[e], this.memoGen[e])) return false;
    const service = t.serviceOf(slot);
    const sk = this.serviceKey[service];
    if (sk === null || sk === undefined) return false;
    const len = sk.length;
    if (n <= len + 1 || b[len] !== SLASH) return false;
    for (let i = 0; i < len; i++) if (sk[i] !== b[i]) return false;
    return t.holdsName(slot, b, len + 1, n);
  }

  /** resolve() without the memo: the key's n bytes are in `b`. */
  private lookup(b: Uint8Array, n: number, now: number): number {
    let slash = n - 1;
    while (slash >= 0 && b[slash] !== SLASH) slash--;
    const len = n - slash - 1;
    if (slash <= 0 || len < 1 || len > MAX_NAME_BYTES) return NOT_TENANT;
    const service = this.keys.lookupBytes(b, 0, slash);
    if (service < 0 || this.maxOf[service] === 0) return NOT_TENANT;
    const t = this.table;
    const h = t.hash(service, b, slash + 1, n);
    let slot = t.find(service, b, slash + 1, n, h); // a name in the table was checked when it was made
    if (slot < 0) {
      for (let i = slash + 1; i < n; i++) if (NAME_BYTE[b[i]] === 0) return NOT_TENANT;
      const tier = this.tierFor(service, b, slash + 1, n);
      slot = t.create(service, b, slash + 1, n, h, this.maxOf[service], tier,
        this.rates.rateMilli[tier], this.rates.burstMilli[tier], now);
      if (slot === TENANT_FULL) return TENANTS_FULL;
      if (slot === TENANT_BUSY) return TENANT_BEING_MADE;
    }
    this.word = t.lastWord;
    this.gen = t.lastGen;
    return slot;
  }

  /** The tier a new tenant starts in: its assignment, or its service's default tier. */
  private tierFor(service: number, b: Uint8Array, start: number, end: number): number {
    if (this.assigned.size > 0) {
      const tier = this.assigned.get(assignmentKey(service, latin1(b, start, end)));
      if (tier !== undefined) return tier;
    }
    return this.defaultTier[service];
  }

  /**
   * An assignment from the main thread (tier -1: back to the default tier):
   * kept for tenants made from now on, and written to the tenant's slot if
   * it lives (the main thread wrote it too; this fixes a tenant this thread
   * made with the old tier before the message arrived).
   */
  applyTier(service: number, name: string, tier: number, now: number): void {
    if (tier < 0) this.assigned.delete(assignmentKey(service, name));
    else this.assigned.set(assignmentKey(service, name), tier);
    const target = tier < 0 ? this.defaultTier[service] : tier;
    const bytes = new TextEncoder().encode(name);
    const slot = this.table.findByName(service, bytes);
    if (slot >= 0 && this.table.tierOf(slot) !== target) {
      this.table.setTier(slot, target, this.rates.rateMilli[target], this.rates.burstMilli[target], now);
    }
  }

  /**
   * Tiers' new rates from a reload (the main thread rewrote the live
   * tenants): kept for the tenants this thread makes from now on, and
   * written to those it made at the old rate before the message arrived.
   */
  setTierRates(changes: readonly TierRateChange[], now: number): void {
    for (const c of changes) {
      this.rates.rateMilli[c.tier] = c.rateMilli;
      this.rates.burstMilli[c.tier] = c.burstMilli;
      this.table.setTierRates(c, now);
    }
  }
}

/** A tenant name's bytes (ASCII, checked) as a string. */
function latin1(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]);
  return s;
}
