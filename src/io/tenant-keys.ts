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
// resolve() makes no string and allocates nothing for a tenant that exists.
// It reads the key's bytes where they are (in the message, for a flat
// request) with the hash the key table's lookup made of them
// (RequestKey.utf8), and looks in this thread's memo of recent tenants
// first: a hit is a few loads and a compare of the key's bytes. A miss finds
// the service by its bytes (KeyIndex.lookupBytes) and the tenant by its
// keyed hash (TenantTable.find), the name checked byte by byte. Only making a
// tenant builds its name as a string, to look up its tier.

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
/** Int32s per memo entry (M_* fields; a power of two, so a set of entries is whole cache lines). */
const MEMO_STRIDE = 8;
const M_HASH = 0;
const M_LEN = 1;
const M_SLOT = 2;
const M_WORD = 3;
const M_GEN = 4;
/** Where the tenant's service key starts in serviceKeys, and its length (the key's '/' is there). */
const M_SERVICE_AT = 5;
const M_SERVICE_LEN = 6;
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
  // Fields set in the constructor are `declare`d (no class field emitted, so none starts as undefined): V8 then keeps
  // each typed array's exact kind, and the inlined hot path reads them without a check per access (as bucket-table.ts).
  declare readonly table: TenantTable;
  /** Per bucket: tenants.max of a service with tenants, else 0. */
  declare private readonly maxOf: Int32Array;
  /** Per service bucket with tenants: its default tier's bucket. */
  declare private readonly defaultTier: Int32Array;
  declare private readonly rates: TierRates;
  /** Tier assignments: assignmentKey -> tier bucket. */
  private readonly assigned = new Map<string, number>();
  declare private readonly keys: KeyIndex;
  /** The slot resolve() returned: the INDEX word and generation it saw (TenantTable.stillIs). */
  word = 0;
  gen = 0;
  /**
   * This thread's memo of recent lookups, in sets of MEMO_WAYS entries
   * picked by a hash of the whole key; an entry is MEMO_STRIDE Int32s (one
   * array, a set's four entries in two cache lines): the key's hash and
   * length, the slot and what it held when found (INDEX word, generation),
   * and where its service's key is in serviceKeys. A hit is checked against
   * the slot itself (still that tenant: stillIs, then the key's bytes
   * compared with its service's key and its name), instead of the service
   * lookup, the keyed hash and the neighbourhood scan. 32 bytes an entry.
   */
  private readonly memo = new Int32Array(MEMO_ENTRIES * MEMO_STRIDE);
  /** The way of a set the next new entry replaces when none is free (round robin over every set). */
  private memoVictim = 0;
  /** The keys of the services with tenants, one after another (a memo hit compares its key's prefix here). */
  declare private readonly serviceKeys: Uint8Array;
  /** Service bucket -> where its key starts in serviceKeys. */
  private readonly serviceKeyAt = new Map<number, number>();

  /** This thread's per-tenant counters (telemetry of the busiest tenants, the abuse detector); null when none were given. */
  declare readonly counters: TenantCounters | null;

  constructor(keys: KeyIndex, table: TenantTable, counters: TenantCounters | null = null) {
    this.keys = keys;
    this.table = table;
    this.counters = counters;
    const n = keys.size;
    this.maxOf = new Int32Array(n);
    this.defaultTier = new Int32Array(n).fill(-1);
    this.rates = { rateMilli: new Int32Array(n), burstMilli: new Int32Array(n) };
    const serviceKeys: Uint8Array[] = [];
    let at = 0;
    for (let b = 0; b < n; b++) {
      const tenants = keys.tenantsOf(b);
      if (tenants !== null) {
        const bytes = new TextEncoder().encode(keys.key(b));
        serviceKeys.push(bytes);
        this.serviceKeyAt.set(b, at);
        at += bytes.length;
        this.maxOf[b] = tenants.max;
        this.defaultTier[b] = keys.find(`${keys.key(b)}/~${tenants.default_tier}`);
      }
      const tier = keys.tierOf(b);
      if (tier !== null) {
        this.rates.rateMilli[b] = Math.round(tier.tps * MILLI);
        this.rates.burstMilli[b] = Math.round(tier.burst * MILLI);
      }
    }
    for (let e = M_LEN; e < this.memo.length; e += MEMO_STRIDE) this.memo[e] = -1; // free: no key's length
    this.serviceKeys = new Uint8Array(at);
    at = 0;
    for (const k of serviceKeys) { this.serviceKeys.set(k, at); at += k.length; }
  }

  /**
   * The slot of the tenant the key names, made if new (with `now` as its
   * first use), or NOT_TENANT, TENANTS_FULL, TENANT_BEING_MADE. Sets word
   * and gen for TenantTable.stillIs. The caller checked key.tooLong().
   */
  resolve(key: RequestKey, now: number): number {
    const b = key.utf8();
    const at = key.utf8Start();
    const n = key.utf8Length();
    let m = key.utf8Hash();
    m = Math.imul(m ^ (m >>> 15), 0x2c1b3c6d);
    m ^= m >>> 13;
    const memo = this.memo;
    const set = (m & (MEMO_ENTRIES - MEMO_WAYS)) * MEMO_STRIDE;
    for (let e = set; e < set + MEMO_WAYS * MEMO_STRIDE; e += MEMO_STRIDE) {
      if (memo[e + M_HASH] === m && memo[e + M_LEN] === n && this.memoHit(e, b, at, n)) {
        this.word = memo[e + M_WORD];
        this.gen = memo[e + M_GEN];
        return memo[e + M_SLOT];
      }
    }
    const slot = this.lookup(b, at, at + n, now);
    if (slot >= 0) this.remember(set, m, n, slot);
    return slot;
  }

  /** Puts a found tenant in the memo set at `set`: a free or stale way, else the next victim. */
  private remember(set: number, hash: number, n: number, slot: number): void {
    const memo = this.memo;
    let e = -1;
    for (let w = set; w < set + MEMO_WAYS * MEMO_STRIDE; w += MEMO_STRIDE) {
      if (memo[w + M_LEN] < 0 || !this.table.stillIs(memo[w + M_SLOT], memo[w + M_WORD], memo[w + M_GEN])) { e = w; break; }
    }
    if (e < 0) e = set + (this.memoVictim++ & (MEMO_WAYS - 1)) * MEMO_STRIDE;
    const service = this.table.serviceOf(slot);
    memo[e + M_HASH] = hash;
    memo[e + M_LEN] = n;
    memo[e + M_SLOT] = slot;
    memo[e + M_WORD] = this.word;
    memo[e + M_GEN] = this.gen;
    memo[e + M_SERVICE_AT] = this.serviceKeyAt.get(service) ?? 0;
    memo[e + M_SERVICE_LEN] = this.keys.table.bytes(service).length;
  }

  /**
   * True when memo entry e's slot is still the tenant whose key is
   * b[at, at + n) (the entry's length is n): the slot unchanged since the
   * entry was made, so its name and service are the entry's; then the key's
   * bytes are that service's key, '/', and that name.
   */
  private memoHit(e: number, b: Uint8Array, at: number, n: number): boolean {
    const t = this.table;
    const memo = this.memo;
    const slot = memo[e + M_SLOT];
    if (!t.stillIs(slot, memo[e + M_WORD], memo[e + M_GEN])) return false;
    const sk = this.serviceKeys;
    const from = memo[e + M_SERVICE_AT];
    const len = memo[e + M_SERVICE_LEN];
    for (let i = 0; i < len; i++) if (sk[from + i] !== b[at + i]) return false;
    if (b[at + len] !== SLASH) return false;
    return t.nameIs(slot, b, at + len + 1, at + n);
  }

  /** resolve() without the memo: the key's bytes are b[start, end). */
  private lookup(b: Uint8Array, start: number, end: number, now: number): number {
    let slash = end - 1;
    while (slash >= start && b[slash] !== SLASH) slash--;
    const len = end - slash - 1;
    if (slash <= start || len < 1 || len > MAX_NAME_BYTES) return NOT_TENANT;
    const service = this.keys.lookupBytes(b, start, slash);
    if (service < 0 || this.maxOf[service] === 0) return NOT_TENANT;
    const t = this.table;
    const h = t.hash(service, b, slash + 1, end);
    let slot = t.find(service, b, slash + 1, end, h); // a name in the table was checked when it was made
    if (slot < 0) {
      for (let i = slash + 1; i < end; i++) if (NAME_BYTE[b[i]] === 0) return NOT_TENANT;
      const tier = this.tierFor(service, b, slash + 1, end);
      slot = t.create(service, b, slash + 1, end, h, this.maxOf[service], tier,
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
