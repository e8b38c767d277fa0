// The key space: every pool, service, endpoint and tenant tier of the config
// gets one bucket index, in config order (pool, then its services, each
// followed by its endpoints, then its tiers `pool/service/~tier`). Every
// thread builds the same index from the same config, so an index means the
// same key everywhere without sharing strings. Tiers are buckets but not
// keys a client may acquire (a tenant never picks its own tier): lookup and
// lookupBytes do not find them, find() does (STATUS, admin). Tenants
// themselves are not here: they are made on first use (tenant-table.ts).
//
// Keys are found by string (lookup) or, on the request path, by their UTF-8
// bytes straight from a message (lookupBytes): an open-addressing table
// (linear probing, FNV-1a hash) over one buffer holding every key's bytes,
// built once; a lookup creates no string and allocates nothing. Read-only
// after construction, so every thread may use its own copy freely.

import type { PoolConfig, Priority, TenantsConfig, TierConfig, TpsdConfig } from '../config/types.ts';
import { PRIORITIES } from '../config/types.ts';
import { GATE_TOKEN_BUCKET, GATE_WINDOW, PRIORITY_NONE } from './layout.ts';

export interface BucketSpec {
  readonly index: number;
  readonly key: string;
  readonly depth: 0 | 1 | 2;
  readonly parent: number;
  /** Bucket index of the pool this key belongs to. */
  readonly pool: number;
  /** 0 CRITICAL .. 3 LOW; PRIORITY_NONE for pools. */
  readonly priority: number;
  readonly burst: number;
  readonly concurrency: number;
  /** The rate the bucket starts with, tokens/s, before the first tick. */
  readonly initialTps: number;
  /** The config entry: a pool, service or endpoint. */
  readonly minTps: number;
  readonly maxTps: number;
  /** Pools: how the gate counts (GATE_WINDOW or GATE_TOKEN_BUCKET, from upstream.window); others GATE_TOKEN_BUCKET. */
  readonly gate: number;
  /** false: a dry run (acquires it would deny are granted and counted as would_deny). */
  readonly enforce: boolean;
  /** A tier bucket (`pool/service/~name`): its config; null for every other key. */
  readonly tier: TierConfig | null;
  /** A service with tenants: its `tenants` section; null otherwise. */
  readonly tenants: TenantsConfig | null;
}

/** The first character of a tier's last key segment: never in a tenant's or a configured name. */
export const TIER_MARK = '~';

/** A pool's gate: a token bucket for a token_bucket upstream, else a sliding 1 s window (also for fixed_1s: its phase is unknown). */
export function gateOf(pool: PoolConfig): number {
  return pool.upstream?.window === 'token_bucket' ? GATE_TOKEN_BUCKET : GATE_WINDOW;
}

export function priorityIndex(p: Priority): number {
  return PRIORITIES.indexOf(p);
}

export function priorityName(i: number): Priority | null {
  return i >= 0 && i < PRIORITIES.length ? PRIORITIES[i] : null;
}

export class KeyIndex {
  readonly specs: readonly BucketSpec[];
  private readonly byKey: Map<string, number>;
  /** Every key's UTF-8 bytes, back to back; key i is keyBytes[keyStart[i] .. keyStart[i + 1]). */
  private readonly keyBytes: Uint8Array;
  private readonly keyStart: Int32Array;
  /** Open-addressing slots: bucket index + 1, 0 when empty; slotHash holds the key's full hash. */
  private readonly slots: Int32Array;
  private readonly slotHash: Int32Array;
  private readonly slotMask: number;

  constructor(pools: readonly PoolConfig[]) {
    const specs: BucketSpec[] = [];
    for (const pool of pools) {
      const p = specs.length;
      specs.push({
        index: p, key: pool.name, depth: 0, parent: -1, pool: p, priority: PRIORITY_NONE,
        burst: pool.burst, concurrency: 0, initialTps: pool.capacity_tps,
        minTps: 0, maxTps: pool.capacity_tps, gate: gateOf(pool), enforce: pool.enforce !== false, tier: null, tenants: null,
      });
      for (const svc of pool.services) {
        const s = specs.length;
        const svcRate = Math.min(svc.max_tps, pool.capacity_tps);
        specs.push({
          index: s, key: `${pool.name}/${svc.name}`, depth: 1, parent: p, pool: p,
          priority: priorityIndex(svc.priority), burst: svc.burst, concurrency: svc.concurrency,
          initialTps: svcRate, minTps: svc.min_tps, maxTps: svc.max_tps, gate: GATE_TOKEN_BUCKET,
          enforce: svc.enforce !== false, tier: null, tenants: svc.tenants ?? null,
        });
        for (const ep of svc.endpoints) {
          specs.push({
            index: specs.length, key: `${pool.name}/${svc.name}/${ep.name}`, depth: 2, parent: s, pool: p,
            priority: priorityIndex(svc.priority), burst: ep.burst, concurrency: ep.concurrency,
            initialTps: Math.min(ep.max_tps, svcRate), minTps: 0, maxTps: ep.max_tps, gate: GATE_TOKEN_BUCKET,
            enforce: ep.enforce !== false, tier: null, tenants: null,
          });
        }
        for (const tier of svc.tenants?.tiers ?? []) {
          // A tier's bucket holds its share of the service (the controller sets it each tick, tier-split.ts).
          specs.push({
            index: specs.length, key: `${pool.name}/${svc.name}/${TIER_MARK}${tier.name}`, depth: 2, parent: s, pool: p,
            priority: priorityIndex(tier.priority), burst: Math.max(svc.burst, tier.burst), concurrency: 0,
            initialTps: svcRate, minTps: 0, maxTps: svc.max_tps, gate: GATE_TOKEN_BUCKET,
            enforce: tier.enforce !== false, tier, tenants: null,
          });
        }
      }
    }
    this.specs = specs;
    this.byKey = new Map(specs.map((s) => [s.key, s.index]));
    this.hasTenants = specs.some((s) => s.tenants !== null);
    const encoded = specs.map((s) => textEncoder.encode(s.key));
    this.keyStart = new Int32Array(specs.length + 1);
    for (let i = 0; i < encoded.length; i++) this.keyStart[i + 1] = this.keyStart[i] + encoded[i].length;
    this.keyBytes = new Uint8Array(this.keyStart[specs.length]);
    for (let i = 0; i < encoded.length; i++) this.keyBytes.set(encoded[i], this.keyStart[i]);
    // At most half full, so a miss ends at an empty slot after a short probe.
    let size = 8;
    while (size < specs.length * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.slotHash = new Int32Array(size);
    this.slotMask = size - 1;
    for (let i = 0; i < encoded.length; i++) {
      if (specs[i].tier !== null) continue; // not acquirable
      const h = hashBytes(encoded[i], 0, encoded[i].length);
      let at = h & this.slotMask;
      while (this.slots[at] !== 0) at = (at + 1) & this.slotMask;
      this.slots[at] = i + 1;
      this.slotHash[at] = h;
    }
  }

  static fromConfig(config: TpsdConfig): KeyIndex {
    return new KeyIndex(config.pools);
  }

  get size(): number { return this.specs.length; }

  /** True when some service has tenants (keys made on first use). */
  readonly hasTenants: boolean;

  /** Bucket index of a key a client may acquire (not a tier), or -1. */
  lookup(key: string): number {
    const i = this.byKey.get(key);
    return i === undefined || this.specs[i].tier !== null ? -1 : i;
  }

  /** Bucket index of any configured key, tiers included, or -1. */
  find(key: string): number {
    const i = this.byKey.get(key);
    return i === undefined ? -1 : i;
  }

  /** Bucket index of the key whose UTF-8 bytes are b[start, end), or -1. Creates no string. */
  lookupBytes(b: Uint8Array, start: number, end: number): number {
    const len = end - start;
    const h = hashBytes(b, start, end);
    const slots = this.slots, mask = this.slotMask, kb = this.keyBytes, ks = this.keyStart;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const v = slots[at];
      if (v === 0) return -1;
      if (this.slotHash[at] !== h) continue;
      const k = v - 1;
      const from = ks[k];
      if (ks[k + 1] - from !== len) continue;
      let i = 0;
      while (i < len && kb[from + i] === b[start + i]) i++;
      if (i === len) return k;
    }
  }
}

const textEncoder = new TextEncoder();

/** 32-bit FNV-1a of b[start, end), as an int32. */
export function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h;
}
