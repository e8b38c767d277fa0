// Prometheus text exposition of the daemon's state, rendered from shared
// memory by the I/O thread that serves GET /metrics, plus the main thread's
// own figures (tick time, policy fallbacks, SQLite writes, the cluster's
// shares), which it sends to every I/O thread after each tick (DaemonStats).
// Label values are keys, pools, priorities, modes (shm MODE_NAMES: the
// config's running modes) and fixed enumerations: outcome, cluster mode
// (io/messages.ts CLUSTER_MODES) and fallback kind (DaemonStats.fallbacks
// holds every kind of the controller's closed list, control/decision.ts, with
// its count; io may not import control, so the list is not repeated here),
// so the label set is bounded by the config. The surge and abuse defence's
// series are per tier and class (DaemonStats.tenantGuard), never per tenant. `promtool check metrics` passes on this
// output (test/integration/metrics.test.ts).

import type { KeyIndex } from '../shm/key-index.ts';
import {
  CONNECTIONS_INDEX, C_ACQUIRES_INDEX, C_DENIED_INDEX, C_EXPIRED_INDEX, C_GRANTED_INDEX, C_GRANTS_INDEX, C_WOULD_DENY_INDEX,
  C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_OK_INDEX,
  C_RELEASED_LATE_INDEX, C_RELEASED_THROTTLED_INDEX, C_RELEASED_TIMEOUT_INDEX, C_REQUESTED_INDEX, MODE_NAMES, sumCounter, type ShmViews,
} from '../shm/layout.ts';
import { CLUSTER_MODES, type ClusterPoolStats, type ClusterStats, type DaemonStats, type TenantGuardStats } from './messages.ts';
import type { StatusSnapshot } from './status.ts';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const GAUGES: [keyof StatusSnapshot['keys'][number], string, string][] = [
  ['limit_tps', 'tpsd_limit_tps', 'Current refill rate of the key, tokens per second.'],
  ['tps', 'tpsd_granted_tps', 'Tokens granted per second during the last tick.'],
  ['demand_tps', 'tpsd_demand_tps', 'Tokens requested per second during the last tick.'],
  ['denied_tps', 'tpsd_denied_tps', 'Tokens denied per second during the last tick.'],
  ['throttled_tps', 'tpsd_throttled_tps', 'Releases reporting an upstream 429 per second during the last tick.'],
  ['queue', 'tpsd_queue_depth', 'Acquires waiting for tokens.'],
  ['in_flight', 'tpsd_in_flight', 'Leases held (granted, not yet released or expired).'],
  ['remaining', 'tpsd_tokens_available', 'Whole tokens in the bucket.'],
];

const COUNTERS: [number, string, string][] = [
  [C_REQUESTED_INDEX, 'tpsd_requested_tokens_total', 'Tokens asked for.'],
  [C_GRANTED_INDEX, 'tpsd_granted_tokens_total', 'Tokens granted.'],
  [C_DENIED_INDEX, 'tpsd_denied_tokens_total', 'Tokens denied, at once or at the wait deadline.'],
  [C_ACQUIRES_INDEX, 'tpsd_acquires_total', 'ACQUIRE requests.'],
  [C_GRANTS_INDEX, 'tpsd_leases_granted_total', 'Leases handed out.'],
  [C_EXPIRED_INDEX, 'tpsd_leases_expired_total', 'Leases never released, ended by the TTL.'],
  [C_WOULD_DENY_INDEX, 'tpsd_would_deny_tokens_total', 'Tokens a dry run (enforce: false) granted that would have been denied.'],
];


type Line = (name: string, type: string, help: string, samples: [string, number][]) => void;

/** What StatusSnapshot.policy_running can be (daemon/daemon-health.ts policyRunning): the label values of tpsd_policy_running. */
const RUNNING_POLICIES = ['ppo', 'fair', 'static'] as const;

/**
 * The exposition. `visible` (a scoped token's view) leaves out the series of
 * the keys and pools it may not see; `snapshot` is the unfiltered STATUS
 * snapshot, whose keys are in bucket order.
 */
export function renderMetrics(snapshot: StatusSnapshot, keys: KeyIndex, views: ShmViews, daemon: DaemonStats | null = null,
  visible: (key: string) => boolean = () => true): string {
  const lines: string[] = [];
  // Made for this exposition, not kept (an I/O thread keeps no spec objects: shm/key-index.ts).
  const specs = Array.from({ length: keys.size }, (_, b) => keys.spec(b)).filter((spec) => visible(spec.key));
  const pools = snapshot.pools.filter((p) => visible(p.name));
  const metric: Line = (name, type, help, samples) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
  };
  const labels = snapshot.keys.map((k) =>
    `key="${esc(k.key)}",pool="${esc(k.pool)}",kind="${k.kind}",priority="${k.priority ?? 'NONE'}"`);
  lines.push('# HELP tpsd_up 1 while the daemon serves.', '# TYPE tpsd_up gauge', 'tpsd_up 1');
  lines.push('# HELP tpsd_connections Open protocol connections.', '# TYPE tpsd_connections gauge',
    `tpsd_connections ${Atomics.load(views.header, CONNECTIONS_INDEX)}`);
  lines.push('# HELP tpsd_pool_capacity_tps Configured capacity of the pool.', '# TYPE tpsd_pool_capacity_tps gauge');
  for (const p of pools) lines.push(`tpsd_pool_capacity_tps{pool="${esc(p.name)}"} ${p.capacity_tps}`);
  lines.push('# HELP tpsd_pool_effective_capacity_tps Capacity after upstream 429 discovery.', '# TYPE tpsd_pool_effective_capacity_tps gauge');
  for (const p of pools) lines.push(`tpsd_pool_effective_capacity_tps{pool="${esc(p.name)}"} ${p.effective_capacity_tps}`);
  for (const [field, name, help] of GAUGES) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const spec of specs) lines.push(`${name}{${labels[spec.index]}} ${snapshot.keys[spec.index][field] as number}`);
  }
  for (const [field, name, help] of COUNTERS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const spec of specs) lines.push(`${name}{${labels[spec.index]}} ${sumCounter(views, spec.index, field)}`);
  }
  // Tenants: per tier (and per service with tenants), never per tenant.
  const tenantKeys = specs.filter((spec) => snapshot.keys[spec.index].tenants !== undefined);
  if (tenantKeys.length > 0) {
    lines.push('# HELP tpsd_tenants Live tenants of a tier; tenants held by a service with tenants.', '# TYPE tpsd_tenants gauge');
    for (const spec of tenantKeys) lines.push(`tpsd_tenants{${labels[spec.index]}} ${snapshot.keys[spec.index].tenants}`);
  }
  if (daemon?.tenantGuard !== undefined) renderGuard(metric, daemon.tenantGuard, visible);
  lines.push('# HELP tpsd_release_latency_seconds Upstream call latency reported in RELEASE.', '# TYPE tpsd_release_latency_seconds summary');
  for (const spec of specs) {
    lines.push(`tpsd_release_latency_seconds_sum{${labels[spec.index]}} ${sumCounter(views, spec.index, C_LATENCY_SUM_US_INDEX) / 1e6}`);
    lines.push(`tpsd_release_latency_seconds_count{${labels[spec.index]}} ${sumCounter(views, spec.index, C_LATENCY_COUNT_INDEX)}`);
  }
  lines.push('# HELP tpsd_release_late_total RELEASEs whose latency passed the pool\'s upstream.slo_ms (0 without one).',
    '# TYPE tpsd_release_late_total counter');
  for (const spec of specs) lines.push(`tpsd_release_late_total{${labels[spec.index]}} ${sumCounter(views, spec.index, C_RELEASED_LATE_INDEX)}`);
  const outcomes: [number, string][] = [[C_RELEASED_OK_INDEX, 'ok'], [C_RELEASED_FAILED_INDEX, 'failed'], [C_RELEASED_THROTTLED_INDEX, 'throttled'],
    [C_RELEASED_TIMEOUT_INDEX, 'timeout']];
  lines.push('# HELP tpsd_releases_total RELEASEs by reported outcome.', '# TYPE tpsd_releases_total counter');
  for (const spec of specs) {
    for (const [field, outcome] of outcomes) {
      lines.push(`tpsd_releases_total{${labels[spec.index]},outcome="${outcome}"} ${sumCounter(views, spec.index, field)}`);
    }
  }
  metric('tpsd_policy_mode', 'gauge', 'The policy mode in force (1) among all modes.',
    MODE_NAMES.map((m) => [`{mode="${m}"}`, snapshot.mode === m ? 1 : 0]));
  if (snapshot.policy_running !== undefined) {
    metric('tpsd_policy_running', 'gauge', 'The policy whose allocation really applies (1): fair when the mode asks for PPO and no model loaded.',
      RUNNING_POLICIES.map((p) => [`{policy="${p}"}`, snapshot.policy_running === p ? 1 : 0]));
  }
  if (daemon !== null) renderDaemon(metric, daemon);
  return lines.join('\n') + '\n';
}

/** The surge and abuse defence: counters per tier and class, never per tenant (tiers and classes are bounded by the config). */
function renderGuard(metric: Line, g: TenantGuardStats, visible: (key: string) => boolean): void {
  const tiers = g.tiers.filter((t) => visible(t.tier));
  const perClass = (f: (t: TenantGuardStats['tiers'][number]) => readonly number[]): [string, number][] =>
    tiers.flatMap((t) => g.classes.map((c, i): [string, number] => [`{tier="${esc(t.tier)}",class="${esc(c)}"}`, f(t)[i]]));
  metric('tpsd_tenant_class_changes_total', 'counter', 'Tenants the surge and abuse detector moved into a class, by tier and class.', perClass((t) => t.changes));
  metric('tpsd_tenants_classed', 'gauge', 'Tenants in a class now, by tier (normal: only those still watched after moving).', perClass((t) => t.current));
  metric('tpsd_tenant_defenses_total', 'counter', 'Defensive limits on attacking tenants, applied and lifted, by tier.',
    tiers.flatMap((t): [string, number][] => [[`{tier="${esc(t.tier)}",action="applied"}`, t.applied], [`{tier="${esc(t.tier)}",action="lifted"}`, t.lifted]]));
  metric('tpsd_tenants_defended', 'gauge', 'Tenants under a defensive limit now, by tier.', tiers.map((t) => [`{tier="${esc(t.tier)}"}`, t.defended]));
  const services = g.services.filter((s) => visible(s.service));
  metric('tpsd_service_class', 'gauge', 'The class of a service with tenants (1) among normal, surge, attack.',
    services.flatMap((s) => g.classes.map((c, i): [string, number] => [`{key="${esc(s.service)}",class="${esc(c)}"}`, s.cls === i ? 1 : 0])));
  metric('tpsd_tenant_events_dropped_total', 'counter', 'Detector audit rows not written (more than the per-tick cap); the limits applied.', [['', g.droppedEvents]]);
}

function renderDaemon(metric: Line, d: DaemonStats): void {
  metric('tpsd_ticks_total', 'counter', 'Controller ticks run.', [['', d.ticks]]);
  metric('tpsd_tick_overruns_total', 'counter', 'Ticks skipped because the previous one was still running.', [['', d.tickOverruns]]);
  metric('tpsd_tick_last_duration_seconds', 'gauge', 'Duration of the last controller tick.', [['', d.tickLastMs / 1000]]);
  metric('tpsd_tick_duration_seconds', 'summary', 'Duration of controller ticks.', [['_sum', d.tickSumMs / 1000], ['_count', d.ticks]]);
  metric('tpsd_policy_fallbacks_total', 'counter', 'Ticks where the policy output was unusable and fair applied, by kind.',
    Object.entries(d.fallbacks).map(([kind, n]) => [`{kind="${esc(kind)}"}`, n]));
  metric('tpsd_shadow_regret', 'gauge', 'Shadow mode: accumulated priority-weighted service PPO would have added over fair (fraction of capacity).', [['', d.shadowRegret]]);
  if (d.drift !== undefined) {
    metric('tpsd_model_drift', 'gauge', 'Largest standardised mean shift of a PPO input feature from the model\'s training distribution (training standard deviations; 0 without a model).', [['', d.drift.score]]);
    metric('tpsd_model_retrain_due', 'gauge', `1 when the drift stayed above ${d.drift.threshold} for a window of ticks: retrain (tpsd train --from-history).`, [['', d.drift.retrainDue ? 1 : 0]]);
  }
  metric('tpsd_model_info', 'gauge', 'The PPO model in use (version label).', [[`{version="${esc(d.model)}"}`, 1]]);
  metric('tpsd_limit_overrides', 'gauge', 'Live limit overrides in force (tpsd limits set).', [['', d.overrides]]);
  if (d.cluster != null) renderCluster(metric, d.cluster);
  const q = d.sqlite;
  metric('tpsd_sqlite_enabled', 'gauge', '1 when telemetry is written to SQLite.', [['', q.enabled ? 1 : 0]]);
  if (!q.enabled) return;
  metric('tpsd_sqlite_write_last_seconds', 'gauge', 'Time of the last per-tick telemetry transaction (on the writer thread).', [['', q.writeLastMs / 1000]]);
  metric('tpsd_sqlite_write_seconds', 'summary', 'Time of per-tick telemetry transactions.', [['_sum', q.writeSumMs / 1000], ['_count', q.writes]]);
  metric('tpsd_sqlite_rows_written_total', 'counter', 'Telemetry, decision and tick rows written.', [['', q.rows]]);
  metric('tpsd_sqlite_errors_total', 'counter', 'Failed telemetry writes (that tick\'s rows are lost; the daemon keeps serving).', [['', q.errors]]);
  metric('tpsd_sqlite_dropped_ticks_total', 'counter', 'Ticks whose rows were dropped because the writer thread was behind.', [['', q.droppedTicks]]);
  metric('tpsd_sqlite_rollup_seconds', 'summary', 'Time of retention passes (roll-up and deletion).', [['_sum', q.rollupSumMs / 1000], ['_count', q.rollups]]);
  metric('tpsd_sqlite_rolled_up_rows_total', 'counter', 'Per-tick rows rolled up into 1-minute rows.', [['', q.rolledUpRows]]);
  metric('tpsd_sqlite_deleted_rows_total', 'counter', 'Rows deleted by retention.', [['', q.deletedRows]]);
  metric('tpsd_sqlite_database_bytes', 'gauge', 'Size of the database file and its WAL.', [['', q.dbBytes]]);
}

/** Shared pools in a cluster (daemon/cluster): labels are the configured shared pools and the fixed modes. */
function renderCluster(metric: Line, c: ClusterStats, nowMs = Date.now()): void {
  const per = (f: (p: ClusterPoolStats) => number): [string, number][] => c.pools.map((p) => [`{pool="${esc(p.pool)}"}`, f(p)]);
  metric('tpsd_cluster_nodes', 'gauge', 'Daemons sharing the pool (live in the last answer, or last seen).', per((p) => p.nodes));
  metric('tpsd_cluster_share_tps', 'gauge', 'This daemon\'s share of the pool in force, tokens per second.', per((p) => p.shareTps));
  metric('tpsd_cluster_target_tps', 'gauge', 'The share the cluster\'s water-fill gives this daemon (the share moves towards it).', per((p) => p.targetTps));
  metric('tpsd_cluster_capacity_tps', 'gauge', 'The pool\'s effective capacity across the cluster (least of the daemons\' estimates).', per((p) => p.clusterCapacityTps));
  const ageS = c.renewedAtMs === null ? -1 : Math.max(0, nowMs - c.renewedAtMs) / 1000;
  metric('tpsd_cluster_lease_age_seconds', 'gauge', 'Since this daemon\'s shares were last renewed (-1: never).', per(() => ageS));
  metric('tpsd_cluster_mode', 'gauge', 'The cluster mode in force (1) among coordinated, safe, learning.',
    c.pools.flatMap((p) => CLUSTER_MODES.map((m): [string, number] => [`{pool="${esc(p.pool)}",mode="${m}"}`, c.mode === m ? 1 : 0])));
  metric('tpsd_cluster_store_calls_total', 'counter', 'Share script calls made to the store.', [['', c.calls]]);
  metric('tpsd_cluster_store_errors_total', 'counter', 'Share script calls that failed or timed out.', [['', c.errors]]);
  metric('tpsd_cluster_store_round_trips_total', 'counter', 'Round trips to the store (EVALSHA, and EVAL after NOSCRIPT).', [['', c.roundTrips]]);
  metric('tpsd_cluster_store_latency_seconds', 'summary', 'Time of answered share calls.', [['_sum', c.latencySumMs / 1000], ['_count', c.calls - c.errors - (c.pending ? 1 : 0)]]);
  metric('tpsd_cluster_skipped_reports_total', 'counter', 'Ticks that sent no report because the previous call was still out.', [['', c.skippedTicks]]);
}
