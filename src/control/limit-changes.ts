// Live limit changes and a reloaded config's per-key values, applied to the
// controller's state (main thread only, between ticks: the daemon's admin
// ops and SIGHUP run on the thread that ticks, so no tick sees half a
// change). The limits in force are the controller's (key-limits.ts); what a
// change must also reach is spread over its parts: the owning pool is woken
// and forgets its kept observations and decisions (service-observations.ts,
// pool-decisions.ts), a pool's new capacity bounds its capacity discovery
// and STATS, a service's new priority goes to shared memory at once (every
// I/O thread orders waiters by it), and a reload also sets bursts,
// concurrency, upstream.slo_ms and the tiers' defence. Kept apart from
// controller.ts because it is the one way in for changes from outside the tick.

import type { TpsdConfig } from '../config/types.ts';
import type { BucketTable } from '../shm/bucket-table.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import { STAT_CAPACITY_INDEX, STAT_EFFECTIVE_CAPACITY_INDEX, statsBase, type ShmViews } from '../shm/layout.ts';
import type { KeyLimits } from './key-limits.ts';
import type { PoolDecisions } from './pool-decisions.ts';
import { wake, type PoolState } from './pool-rest.ts';
import type { ServiceObservations } from './service-observations.ts';
import type { TenantGuard } from './tenant-guard.ts';
import type { TierSplit } from './tier-split.ts';

/** A live change of one key's limits (`tpsd limits set`); an absent field keeps its value. */
export interface LimitChange { minTps?: number; maxTps?: number; priority?: number }

/** What a change reaches: the controller's own parts, shared, not copied. */
export interface LimitChangeParts {
  views: ShmViews;
  table: BucketTable;
  keys: KeyIndex;
  /** Per bucket, the limits in force (changed here). */
  limits: KeyLimits[];
  pools: readonly PoolState[];
  /** poolOf[b]: the ordinal of bucket b's pool. */
  poolOf: Int32Array;
  observations: ServiceObservations;
  decisions: PoolDecisions;
  tiers: TierSplit;
  guard: TenantGuard | null;
}

export class LimitChanges {
  private readonly parts: LimitChangeParts;

  constructor(parts: LimitChangeParts) { this.parts = parts; }

  /**
   * Live limit changes (`tpsd limits set`; the daemon validates and persists
   * them first). From the next tick on, observations and the safety layer see
   * the new min/max/priority. A pool's new capacity (maxTps) also bounds
   * capacity discovery: a rise applies at once unless 429s had lowered the
   * effective capacity. A new priority is written to shared memory for the
   * service and its endpoints, so every I/O thread orders waiters by it at once.
   */
  set(b: number, limits: LimitChange): void {
    const { views, keys, pools, poolOf } = this.parts;
    const depth = keys.specs[b].depth;
    const live = this.parts.limits[b];
    const owner = pools[poolOf[b]];
    wake(owner);
    owner.written = false; // bursts, max_tps and priorities reach the buckets with the next write
    this.parts.observations.invalidate(owner.ordinal); // its services observe their new limits
    this.parts.decisions.invalidate(owner.ordinal); // and its guarantees, proposal and allocation follow them
    if (limits.minTps !== undefined) live.minTps = limits.minTps;
    if (limits.maxTps !== undefined) {
      const pool = depth === 0 ? pools.find((p) => p.spec.index === b) : undefined;
      if (pool !== undefined) {
        const d = pool.discovery;
        d.effectiveTps = d.effectiveTps >= live.maxTps ? limits.maxTps : Math.min(d.effectiveTps, limits.maxTps);
        views.stats[statsBase(b) + STAT_CAPACITY_INDEX] = limits.maxTps;
        views.stats[statsBase(b) + STAT_EFFECTIVE_CAPACITY_INDEX] = d.effectiveTps;
      }
      live.maxTps = limits.maxTps;
    }
    if (limits.priority !== undefined && depth === 1) {
      for (const k of pools[poolOf[b]].buckets) {
        if (k !== b && keys.specs[k].parent !== b) continue;
        this.parts.limits[k].priority = limits.priority;
        this.parts.table.setPriority(k, limits.priority);
      }
    }
  }

  /**
   * Takes the per-key values of a reloaded config with the same key set
   * (SIGHUP): minimums, maximums, capacities, priorities, bursts and
   * concurrency limits; each pool's upstream.slo_ms (the latency rule reads
   * it next tick) and the tiers' defence (tenant-guard.ts). Rates follow on
   * the next tick; live overrides are re-applied on top by the caller
   * (daemon/live-limits.ts).
   */
  reconfigure(next: KeyIndex, config: TpsdConfig): void {
    const { table, limits } = this.parts;
    for (const pool of this.parts.pools) pool.sloMs = config.pools.find((p) => p.name === pool.spec.key)?.upstream.slo_ms ?? null;
    this.parts.guard?.reconfigure(next);
    this.parts.tiers.reconfigure(next, table);
    for (const n of next.specs) {
      const b = n.index;
      this.set(b, { minTps: n.minTps, maxTps: n.maxTps, priority: n.depth === 1 ? n.priority : undefined });
      limits[b].burst = n.burst;
      limits[b].concurrency = n.concurrency;
      table.setMaxBurst(b, n.burst);
      if (n.depth > 0) table.setBurst(b, n.burst);
      table.setConcurrency(b, n.concurrency);
    }
  }
}
