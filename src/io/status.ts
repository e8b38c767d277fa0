// The STATUS snapshot, built from shared memory by whichever thread is asked
// (an I/O thread for op 3 and GET /v1/status). Reads only: rates and gauges
// from the bucket state, per-tick figures from the STATS region the
// controller writes, in-flight counts from the threads' cumulative counters,
// and for shared pools the cluster figures the main thread sent after its
// last tick (DaemonStats.cluster; the lease age is taken at build time), and
// for tiers and tenant services the surge and abuse defence's counts of that
// tick (DaemonStats.tenantGuard: per tier and class, never per tenant).

import type { TpsdConfig } from '../config/types.ts';
import type { BucketTable } from '../shm/bucket-table.ts';
import { priorityName, type BucketSpec, type KeyIndex } from '../shm/key-index.ts';
import {
  C_EXPIRED_INDEX, C_GRANTS_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_OK_INDEX, C_WOULD_DENY_INDEX,
  C_RELEASED_THROTTLED_INDEX, C_RELEASED_TIMEOUT_INDEX, MODE_INDEX, MODE_NAMES, STAT_CAPACITY_INDEX,
  STAT_DEMAND_TPS_INDEX, STAT_DENIED_TPS_INDEX, STAT_EFFECTIVE_CAPACITY_INDEX, STAT_FAILED_TPS_INDEX,
  STAT_LATENCY_AVG_US_INDEX, STAT_THROTTLED_TPS_INDEX, STAT_TPS_INDEX, TICK_SEQ_INDEX, sumCounter,
  statsBase, type ShmViews,
} from '../shm/layout.ts';
import { keyVisible, type ScopedToken } from './auth.ts';
import type { ClusterMode, ClusterPoolStats, ClusterStats, ModelDriftStats, PolicyRunning, TenantGuardStats } from './messages.ts';
import { SERVER_NAME } from './server-name.ts';

const KINDS = ['pool', 'service', 'endpoint'] as const;

export interface KeyStatus {
  key: string;
  pool: string;
  kind: (typeof KINDS)[number] | 'tier';
  priority: string | null;
  limit_tps: number;
  burst: number;
  tps: number;
  demand_tps: number;
  denied_tps: number;
  throttled_tps: number;
  failed_tps: number;
  latency_avg_us: number;
  queue: number;
  in_flight: number;
  concurrency: number;
  remaining: number;
  capacity_tps: number;
  effective_capacity_tps: number;
  mode: string;
  /** A shared pool's key (kind 'pool') only: the same object as its pools[] entry. */
  cluster?: PoolClusterStatus;
  /** Tokens granted by a dry run (enforce: false) that would have been denied, since start (this key and those below it). */
  would_deny: number;
  /** A tier (`pool/service/~tier`): its live tenants; a service with tenants: the tenants it holds. */
  tenants?: number;
  /** A tier: each tenant's rate and burst; a service with tenants: its tenants.max. */
  tenant_tps?: number;
  tenant_burst?: number;
  tenants_max?: number;
  /**
   * A tier, with the surge and abuse defence running: its tenants in each
   * class now (class name -> count; normal counts only those still watched
   * after moving), and those held at the tier's defensive limit. Counts,
   * never tenant names.
   */
  tenant_classes?: Record<string, number>;
  tenants_defended?: number;
  /** A service with tenants, with the defence running: the service's own class now (normal, surge, attack). */
  class?: string;
}

/** A shared pool in a cluster, as this node sees it (PROTOCOL.md: `cluster: {nodes, share_tps, mode}`). */
export interface PoolClusterStatus {
  nodes: number;
  share_tps: number;
  mode: ClusterMode;
  node_id: string;
  /** Since this node's lease was last renewed (null: never). */
  lease_age_ms: number | null;
  lease_ms: number;
  /** The pool's effective capacity across the cluster; this node's share moves towards target_tps. */
  cluster_capacity_tps: number;
  target_tps: number;
}

export interface StatusSnapshot {
  server: string;
  v: 1;
  mode: string;
  tick_ms: number;
  tick: number;
  /** The I/O thread that built this snapshot (-1: another thread). */
  io_thread: number;
  uptime_s: number;
  /** The policy that really applies ('ppo', 'fair', 'static'), which may differ from `mode` (no model). */
  policy_running?: string;
  /** Why the mode's PPO does not apply (the model file is missing or unusable); null when it does or is not asked for. */
  fallback_reason?: string | null;
  /** Drift of live observations from the model's training distribution (control/model-drift.ts); absent before the first tick. */
  model_drift?: { score: number; feature: string; retrain_due: boolean; threshold: number; ticks: number };
  pools: {
    name: string; capacity_tps: number; effective_capacity_tps: number; mode: string; tps: number; demand_tps: number;
    cluster?: PoolClusterStatus;
  }[];
  keys: KeyStatus[];
}

const round = (x: number) => Math.round(x * 100) / 100;
const NO_SHARED: ReadonlyMap<string, ClusterPoolStats | null> = new Map();

/** The shared pools by name, with their figures (null before the main thread's first). */
function sharedPools(config: TpsdConfig, cluster: ClusterStats | null): ReadonlyMap<string, ClusterPoolStats | null> {
  if (config.cluster === null) return NO_SHARED;
  if (cluster !== null) return new Map(cluster.pools.map((p) => [p.pool, p]));
  return new Map(config.pools.filter((p) => p.shared === true).map((p) => [p.name, null]));
}

type GuardTier = TenantGuardStats['tiers'][number];
interface GuardByKey { readonly classes: readonly string[]; readonly tiers: ReadonlyMap<string, GuardTier>; readonly services: ReadonlyMap<string, number> }
const NO_GUARD: GuardByKey = { classes: [], tiers: new Map(), services: new Map() };

/** The defence's counts by tier key and each tenant service's class by key (maps: keys may be any string). */
function guardByKey(g: TenantGuardStats | null): GuardByKey {
  if (g === null) return NO_GUARD;
  return { classes: g.classes, tiers: new Map(g.tiers.map((t) => [t.tier, t])), services: new Map(g.services.map((s) => [s.service, s.cls])) };
}

/** A tier's or tenant service's fields: its tenants (shared memory), and the defence's counts of the last tick when it runs. */
function addTenantFields(entry: KeyStatus, spec: BucketSpec, views: ShmViews, defence: GuardByKey): void {
  if (spec.tier !== null) {
    entry.tenants = Atomics.load(views.tenantTierCount, spec.index);
    entry.tenant_tps = spec.tier.tps;
    entry.tenant_burst = spec.tier.burst;
    const t = defence.tiers.get(spec.key);
    if (t !== undefined) {
      entry.tenant_classes = Object.fromEntries(defence.classes.map((c, i) => [c, t.current[i] ?? 0]));
      entry.tenants_defended = t.defended;
    }
  } else if (spec.tenants !== null) {
    entry.tenants = Atomics.load(views.tenantServiceCount, spec.index);
    entry.tenants_max = spec.tenants.max;
    const cls = defence.services.get(spec.key);
    if (cls !== undefined) entry.class = defence.classes[cls] ?? 'normal';
  }
}

/** Leases held on bucket b, from the counters of every thread. */
function inFlightFromCounters(views: ShmViews, b: number): number {
  const n = sumCounter(views, b, C_GRANTS_INDEX) - sumCounter(views, b, C_RELEASED_OK_INDEX)
    - sumCounter(views, b, C_RELEASED_FAILED_INDEX) - sumCounter(views, b, C_RELEASED_THROTTLED_INDEX)
    - sumCounter(views, b, C_RELEASED_TIMEOUT_INDEX) - sumCounter(views, b, C_EXPIRED_INDEX);
  return Math.max(0, n);
}

/**
 * A shared pool's `cluster` object from the main thread's last figures
 * (null: not a shared pool). Before the first tick's figures arrive, a
 * shared pool is shown as the daemon starts it: no share yet, learning.
 */
export function poolClusterStatus(
  config: TpsdConfig, cluster: ClusterStats | null, shared: ReadonlyMap<string, ClusterPoolStats | null>, pool: string,
  capacityTps: number, nowMs = Date.now(),
): PoolClusterStatus | null {
  if (config.cluster === null || !shared.has(pool)) return null;
  const p = shared.get(pool) ?? null;
  if (cluster === null || p === null) {
    return {
      nodes: 0, share_tps: 0, mode: 'learning', node_id: config.cluster.node_id ?? '', lease_age_ms: null,
      lease_ms: config.cluster.lease_ms, cluster_capacity_tps: capacityTps, target_tps: 0,
    };
  }
  return {
    nodes: p.nodes, share_tps: round(p.shareTps), mode: cluster.mode, node_id: cluster.nodeId,
    lease_age_ms: cluster.renewedAtMs === null ? null : Math.max(0, nowMs - cluster.renewedAtMs), lease_ms: cluster.leaseMs,
    cluster_capacity_tps: round(p.clusterCapacityTps), target_tps: round(p.targetTps),
  };
}

/**
 * The snapshot as `viewer` may see it: only the keys it may use (an admin
 * token: every key), and only the pools whose own key is among them. A null
 * viewer (auth off) sees everything. `cluster`: the main thread's cluster
 * figures after its last tick (DaemonStats.cluster), for shared pools.
 */
export function buildStatus(
  config: TpsdConfig, keys: KeyIndex, table: BucketTable, views: ShmViews, startedAtMs: number, thread = -1,
  viewer: ScopedToken | null = null,
  policy: PolicyRunning | null = null,
  cluster: ClusterStats | null = null,
  drift: ModelDriftStats | null = null,
  guard: TenantGuardStats | null = null,
): StatusSnapshot {
  const mode = MODE_NAMES[Atomics.load(views.header, MODE_INDEX)] ?? 'static';
  const shared = sharedPools(config, cluster);
  const st = views.stats;
  const out: KeyStatus[] = [];
  const pools: StatusSnapshot['pools'] = [];
  const defence = guardByKey(guard);
  for (let k = 0; k < keys.size; k++) {
    const spec = keys.spec(k); // made for this snapshot, not kept (an I/O thread keeps no spec objects)
    if (viewer !== null && !keyVisible(viewer, spec.key)) continue;
    const b = spec.index;
    const s = statsBase(b);
    const ps = statsBase(spec.pool);
    const conc = table.concurrency(b);
    const entry: KeyStatus = {
      key: spec.key,
      pool: keys.key(spec.pool),
      kind: spec.tier !== null ? 'tier' : KINDS[spec.depth],
      // From shared memory: a live `tpsd limits set --priority` shows at once.
      priority: spec.depth === 0 ? null : priorityName(table.priority(b)),
      limit_tps: round(table.rateTps(b)),
      burst: table.burstTokens(b),
      tps: round(st[s + STAT_TPS_INDEX]),
      demand_tps: round(st[s + STAT_DEMAND_TPS_INDEX]),
      denied_tps: round(st[s + STAT_DENIED_TPS_INDEX]),
      throttled_tps: round(st[s + STAT_THROTTLED_TPS_INDEX]),
      failed_tps: round(st[s + STAT_FAILED_TPS_INDEX]),
      latency_avg_us: round(st[s + STAT_LATENCY_AVG_US_INDEX]),
      queue: table.queue(b),
      in_flight: conc > 0 ? table.inFlight(b) : inFlightFromCounters(views, b),
      concurrency: conc,
      remaining: table.remaining(b),
      capacity_tps: st[ps + STAT_CAPACITY_INDEX],
      effective_capacity_tps: round(st[ps + STAT_EFFECTIVE_CAPACITY_INDEX]),
      mode,
      would_deny: sumCounter(views, b, C_WOULD_DENY_INDEX),
    };
    if (spec.tier !== null || spec.tenants !== null) addTenantFields(entry, spec, views, defence);
    out.push(entry);
    if (spec.depth === 0) {
      const clusterStatus = poolClusterStatus(config, cluster, shared, spec.key, entry.capacity_tps);
      if (clusterStatus !== null) entry.cluster = clusterStatus;
      pools.push({
        name: spec.key, capacity_tps: entry.capacity_tps, effective_capacity_tps: entry.effective_capacity_tps,
        mode, tps: entry.tps, demand_tps: entry.demand_tps, ...(clusterStatus === null ? {} : { cluster: clusterStatus }),
      });
    }
  }
  return {
    server: SERVER_NAME, v: 1, mode, tick_ms: config.tick_ms, tick: Atomics.load(views.header, TICK_SEQ_INDEX), io_thread: thread,
    uptime_s: Math.round((Date.now() - startedAtMs) / 1000),
    ...(policy === null ? {} : { policy_running: policy.running, fallback_reason: policy.fallbackReason }),
    ...(drift === null ? {} : { model_drift: { score: round(drift.score), feature: drift.feature, retrain_due: drift.retrainDue, threshold: drift.threshold, ticks: drift.ticks } }),
    pools, keys: out,
  };
}

