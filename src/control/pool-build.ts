// The controller's pools as the key index lays them out (main thread only,
// once, in the controller's constructor, before any I/O thread takes a
// token from the buckets it writes). Each pool (a depth-0 key) gets its
// services and their endpoints (tenant tiers are left to tier-split.ts),
// its buckets' ordinal in poolOf, its capacity discovery and upstream.slo_ms,
// the services' initial rates as its allocation, and its gate written at the
// configured capacity, capped by the cluster hook (pool-gate.ts), with
// STATS capacity and effective capacity. Kept apart from controller.ts: it
// is construction, not the tick.

import type { TpsdConfig } from '../config/types.ts';
import type { BucketTable } from '../shm/bucket-table.ts';
import type { BucketSpec, KeyIndex } from '../shm/key-index.ts';
import { STAT_CAPACITY_INDEX, STAT_EFFECTIVE_CAPACITY_INDEX, statsBase, type ShmViews } from '../shm/layout.ts';
import { CapacityDiscovery, DEFAULT_DISCOVERY, type DiscoveryOptions } from './capacity-discovery.ts';
import type { PoolGate } from './pool-gate.ts';
import { HINT_MEMORY_TICKS, type PoolState } from './pool-rest.ts';

/** The endpoint list of every service without endpoints (frozen: nothing adds to it). */
const NO_ENDPOINTS = Object.freeze([]) as unknown as BucketSpec[];

/** What the pools are built from (the controller's parts). */
export interface PoolBuildParts {
  views: ShmViews;
  keys: KeyIndex;
  config: TpsdConfig;
  table: BucketTable;
  gate: PoolGate;
  discovery: DiscoveryOptions | undefined;
  /** The clock's now, ms, read once per pool for its gate's first write. */
  nowMs: () => number;
}

/** Builds every pool in key order into `pools`, filling poolOf[b] with bucket b's pool ordinal, and writes their gates. */
export function buildPools(parts: PoolBuildParts, pools: PoolState[], poolOf: Int32Array): void {
  const { views, keys, config, table, gate } = parts;
  // Children by parent in one pass (a per-pool filter is quadratic in the key count).
  const children = new Map<number, BucketSpec[]>();
  for (const spec of keys.specs) {
    if (spec.parent < 0 || spec.tier !== null) continue; // tiers are divided by the controller's TierSplit
    const list = children.get(spec.parent);
    if (list) list.push(spec); else children.set(spec.parent, [spec]);
  }
  for (const spec of keys.specs) {
    if (spec.depth !== 0) continue;
    const services = children.get(spec.index) ?? [];
    const endpoints = services.map((s) => children.get(s.index) ?? NO_ENDPOINTS); // one shared empty list, not one per service
    const buckets = Int32Array.from([spec, ...services, ...endpoints.flat()], (s) => s.index);
    const ordinal = pools.length;
    for (const b of buckets) poolOf[b] = ordinal;
    const startTps = gate.capped(spec.key, spec.maxTps);
    pools.push({
      ordinal, spec, services, endpoints, buckets,
      discovery: new CapacityDiscovery(spec.maxTps, parts.discovery ?? DEFAULT_DISCOVERY),
      sloMs: config.pools.find((p) => p.name === spec.key)?.upstream.slo_ms ?? null,
      alloc: Float64Array.from(services, (s) => table.rateTps(s.index)),
      effectiveTps: startTps, burst: gate.gateBurst(spec.index, startTps), atRest: false, sinceGrants: HINT_MEMORY_TICKS, written: false,
    });
    gate.writeInitialPool(spec.index, services, startTps, parts.nowMs());
    const s = statsBase(spec.index);
    views.stats[s + STAT_CAPACITY_INDEX] = spec.maxTps;
    views.stats[s + STAT_EFFECTIVE_CAPACITY_INDEX] = startTps;
  }
}
