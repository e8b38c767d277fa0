// The key space: every pool, service, endpoint and tenant tier of the config
// gets one bucket index, in config order (pool, then its services, each
// followed by its endpoints, then its tiers `pool/service/~tier`). Tiers are
// buckets but not keys a client may acquire (a tenant never picks its own
// tier): lookup and lookupBytes do not find them, find() does (STATUS,
// admin). Tenants themselves are not here: they are made on first use
// (tenant-table.ts).
//
// The keys' names, hash table and per-key fields live in one shared buffer
// (key-table.ts) the main thread builds from the config (fromConfig); every
// other thread views that buffer (fromShared) instead of building its own
// copy, and keeps only what refers to config objects (the tier and tenants
// sections of the few services that have them). The BucketSpec objects are
// made when a thread first asks for `specs` (the main thread's controller
// and limits do; an I/O thread only for STATUS and /metrics); a key's name
// through key(), kept once made. Lookups by string or, on the request path,
// by the key's UTF-8 bytes straight from a message (lookupBytes) create no
// string and allocate nothing.
//
// Threads: built on the main thread; read-only afterwards except the
// per-thread caches (specs, names), each thread its own KeyIndex.

import type { PoolConfig, Priority, TenantsConfig, TierConfig, TpsdConfig } from '../config/types.ts';
import { PRIORITIES } from '../config/types.ts';
import { KeyTable, type KeyRow } from './key-table.ts';
import { GATE_TOKEN_BUCKET, GATE_WINDOW, PRIORITY_NONE } from './layout.ts';

export { FNV_OFFSET_BASIS, FNV_PRIME, hashBytes } from './key-table.ts';

/** A key as the main thread sees it: its row of the key table, its index, and the config sections it has. */
export interface BucketSpec extends Omit<KeyRow, 'isTier' | 'hasTenants'> {
  readonly index: number;
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

/** The config sections some keys refer to (tier buckets, services with tenants), by bucket index: few, so copied to each thread. */
export interface KeySections {
  readonly tiers: readonly (readonly [number, TierConfig])[];
  readonly tenants: readonly (readonly [number, TenantsConfig])[];
}

/** A KeyIndex as another thread receives it (in its workerData). */
export interface SharedKeys { readonly sab: SharedArrayBuffer; readonly sections: KeySections }

/**
 * The config an I/O or telemetry thread is given: the pools without their
 * services. Every per-key value reaches those threads through the shared key
 * table (fromShared), so the services, 100 000 objects at 100 000 keys, are
 * not copied into each thread.
 */
export function configForThreads<C extends Pick<TpsdConfig, 'pools'>>(config: C): C {
  return { ...config, pools: config.pools.map((p) => ({ ...p, services: [] })) };
}

/** Every key's row in bucket order, and the config sections of tiers and services with tenants by bucket index. */
interface Walk { rows: KeyRow[]; tiers: Map<number, TierConfig>; tenants: Map<number, TenantsConfig> }

function walk(pools: readonly PoolConfig[]): Walk {
  const w: Walk = { rows: [], tiers: new Map(), tenants: new Map() };
  const row = (r: KeyRow) => { w.rows.push(r); };
  for (const pool of pools) {
    const p = w.rows.length;
    row({
      key: pool.name, depth: 0, parent: -1, pool: p, priority: PRIORITY_NONE, burst: pool.burst, concurrency: 0,
      initialTps: pool.capacity_tps, minTps: 0, maxTps: pool.capacity_tps, gate: gateOf(pool), enforce: pool.enforce !== false,
      isTier: false, hasTenants: false,
    });
    for (const svc of pool.services) {
      const s = w.rows.length;
      if (svc.tenants) w.tenants.set(s, svc.tenants);
      const svcRate = Math.min(svc.max_tps, pool.capacity_tps);
      row({
        key: `${pool.name}/${svc.name}`, depth: 1, parent: p, pool: p, priority: priorityIndex(svc.priority), burst: svc.burst,
        concurrency: svc.concurrency, initialTps: svcRate, minTps: svc.min_tps, maxTps: svc.max_tps, gate: GATE_TOKEN_BUCKET,
        enforce: svc.enforce !== false, isTier: false, hasTenants: svc.tenants !== undefined && svc.tenants !== null,
      });
      for (const ep of svc.endpoints) {
        row({
          key: `${pool.name}/${svc.name}/${ep.name}`, depth: 2, parent: s, pool: p, priority: priorityIndex(svc.priority),
          burst: ep.burst, concurrency: ep.concurrency, initialTps: Math.min(ep.max_tps, svcRate), minTps: 0, maxTps: ep.max_tps,
          gate: GATE_TOKEN_BUCKET, enforce: ep.enforce !== false, isTier: false, hasTenants: false,
        });
      }
      for (const tier of svc.tenants?.tiers ?? []) {
        w.tiers.set(w.rows.length, tier);
        // A tier's bucket holds its share of the service (the controller sets it each tick, tier-split.ts).
        row({
          key: `${pool.name}/${svc.name}/${TIER_MARK}${tier.name}`, depth: 2, parent: s, pool: p, priority: priorityIndex(tier.priority),
          burst: Math.max(svc.burst, tier.burst), concurrency: 0, initialTps: svcRate, minTps: 0, maxTps: svc.max_tps,
          gate: GATE_TOKEN_BUCKET, enforce: tier.enforce !== false, isTier: true, hasTenants: false,
        });
      }
    }
  }
  return w;
}

/**
 * A whole number read from a Float64Array as a small integer: V8 keeps it in
 * the object (a double costs a 16-byte box per field, and the limits copied
 * from specs would carry the boxes on), as it keeps the config's numbers.
 */
function small(x: number): number {
  return x === (x | 0) ? x | 0 : x;
}

export class KeyIndex {
  /** The shared part: hand `table.sab` to another thread's fromShared. */
  readonly table: KeyTable;
  /** True when some service has tenants (keys made on first use). */
  readonly hasTenants: boolean;
  private readonly tiers: Map<number, TierConfig>;
  private readonly tenantSections: Map<number, TenantsConfig>;
  private specsMade: BucketSpec[] | null = null;
  /** Names made by key(), by bucket index (holes for keys never asked for). */
  private readonly names: (string | undefined)[];

  /** Builds the key table from `pools` (main thread); `shared` (fromShared): views another thread's instead. */
  constructor(pools: readonly PoolConfig[], shared?: { sab: SharedArrayBuffer; sections: KeySections }) {
    const w = shared === undefined ? walk(pools)
      : { rows: [], tiers: new Map(shared.sections.tiers), tenants: new Map(shared.sections.tenants) };
    const table = shared === undefined ? KeyTable.build(w.rows) : new KeyTable(shared.sab);
    this.table = table;
    this.tiers = w.tiers;
    this.tenantSections = w.tenants;
    this.hasTenants = w.tenants.size > 0;
    this.names = new Array<string | undefined>(table.size);
  }

  /** Builds the shared table from the config (main thread). */
  static fromConfig(config: Pick<TpsdConfig, 'pools'>): KeyIndex {
    return new KeyIndex(config.pools);
  }

  /** Views the key table another thread built (`shared()` of its KeyIndex): the config's services are not needed. */
  static fromShared(shared: SharedKeys): KeyIndex {
    return new KeyIndex([], shared);
  }

  /** What another thread's fromShared takes: the table's buffer and the few config sections keys refer to. */
  shared(): SharedKeys {
    return { sab: this.table.sab, sections: { tiers: [...this.tiers], tenants: [...this.tenantSections] } };
  }

  get size(): number { return this.table.size; }

  /** Every key's spec, in bucket order (made on first use, then kept). */
  get specs(): readonly BucketSpec[] {
    if (this.specsMade === null) this.specsMade = Array.from({ length: this.size }, (_, i) => this.makeSpec(i, this.key(i)));
    return this.specsMade;
  }

  /** Key i's spec: the kept one when `specs` was made, else a new one (not kept: for a walk over every key). */
  spec(i: number): BucketSpec {
    return this.specsMade?.[i] ?? this.makeSpec(i, this.names[i] ?? this.table.name(i));
  }

  private makeSpec(i: number, key: string): BucketSpec {
    const t = this.table;
    return {
      index: i, key, depth: t.depth(i), parent: t.parentOf(i), pool: t.poolOf(i), priority: t.priority(i), burst: small(t.burst(i)),
      concurrency: t.concurrencyOf(i), initialTps: small(t.initialTps(i)), minTps: small(t.minTps(i)), maxTps: small(t.maxTps(i)), gate: t.gate(i),
      enforce: t.enforce(i), tier: this.tiers.get(i) ?? null, tenants: this.tenantSections.get(i) ?? null,
    };
  }

  /** Key i's name (made once per key, then kept). */
  key(i: number): string {
    return this.names[i] ??= this.table.name(i);
  }

  poolOf(i: number): number { return this.table.poolOf(i); }
  /** false: a dry run key. */
  enforce(i: number): boolean { return this.table.enforce(i); }
  /** 1 per bucket whose config says enforce: false (a dry run), or null when every bucket enforces (what an I/O thread reads on a refusal). */
  dryRunFlags(): Uint8Array | null {
    const flags = new Uint8Array(this.size);
    let any = 0;
    for (let b = 0; b < this.size; b++) any |= flags[b] = this.table.enforce(b) ? 0 : 1;
    return any === 0 ? null : flags;
  }
  /** Key i's `tenants` section (a service with tenants), or null. */
  tenantsOf(i: number): TenantsConfig | null { return this.tenantSections.get(i) ?? null; }
  /** Key i's tier config (a tier bucket), or null. */
  tierOf(i: number): TierConfig | null { return this.tiers.get(i) ?? null; }

  /** Bucket index of a key a client may acquire (not a tier), or -1. */
  lookup(key: string): number {
    const i = this.table.find(key);
    return i < 0 || this.table.isTier(i) ? -1 : i;
  }

  /** Bucket index of any configured key, tiers included, or -1. */
  find(key: string): number {
    return this.table.find(key);
  }

  /** Bucket index of the key (not a tier) whose UTF-8 bytes are b[start, end), or -1. Creates no string. */
  lookupBytes(b: Uint8Array, start: number, end: number): number {
    const i = this.table.findBytes(b, start, end);
    return i < 0 || this.table.isTier(i) ? -1 : i;
  }

  /** lookupBytes() with the bytes' hash given (hashBytes(b, start, end)). */
  lookupHashed(b: Uint8Array, start: number, end: number, h: number): number {
    const i = this.table.findHashed(b, start, end, h);
    return i < 0 || this.table.isTier(i) ? -1 : i;
  }
}
