// Prometheus text exposition of the daemon's state, rendered from shared
// memory by the I/O thread that serves GET /metrics. Label values are keys
// and priorities from the config, so the label set is bounded by the config.

import type { KeyIndex } from '../shm/key-index.ts';
import {
  CONNECTIONS_INDEX, C_ACQUIRES_INDEX, C_DENIED_INDEX, C_EXPIRED_INDEX, C_GRANTED_INDEX, C_GRANTS_INDEX,
  C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_OK_INDEX,
  C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX, counterBase, type ShmViews,
} from '../shm/layout.ts';
import type { StatusSnapshot } from './status.ts';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function sumCounter(views: ShmViews, b: number, field: number): number {
  let n = 0;
  for (let t = 0; t < views.layout.threadCount; t++) n += views.counters[counterBase(t, b, views.layout.bucketCount) + field];
  return n;
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
  [C_LATENCY_SUM_US_INDEX, 'tpsd_release_latency_microseconds_sum', 'Sum of latencies reported in RELEASE.'],
  [C_LATENCY_COUNT_INDEX, 'tpsd_release_latency_microseconds_count', 'RELEASEs reporting a latency.'],
];

export function renderMetrics(snapshot: StatusSnapshot, keys: KeyIndex, views: ShmViews): string {
  const lines: string[] = [];
  const labels = snapshot.keys.map((k) =>
    `key="${esc(k.key)}",pool="${esc(k.pool)}",kind="${k.kind}",priority="${k.priority ?? 'NONE'}"`);
  lines.push('# HELP tpsd_up 1 while the daemon serves.', '# TYPE tpsd_up gauge', 'tpsd_up 1');
  lines.push('# HELP tpsd_connections Open protocol connections.', '# TYPE tpsd_connections gauge',
    `tpsd_connections ${Atomics.load(views.header, CONNECTIONS_INDEX)}`);
  lines.push('# HELP tpsd_pool_capacity_tps Configured capacity of the pool.', '# TYPE tpsd_pool_capacity_tps gauge');
  for (const p of snapshot.pools) lines.push(`tpsd_pool_capacity_tps{pool="${esc(p.name)}"} ${p.capacity_tps}`);
  lines.push('# HELP tpsd_pool_effective_capacity_tps Capacity after upstream 429 discovery.', '# TYPE tpsd_pool_effective_capacity_tps gauge');
  for (const p of snapshot.pools) lines.push(`tpsd_pool_effective_capacity_tps{pool="${esc(p.name)}"} ${p.effective_capacity_tps}`);
  for (const [field, name, help] of GAUGES) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    snapshot.keys.forEach((k, i) => lines.push(`${name}{${labels[i]}} ${k[field] as number}`));
  }
  for (const [field, name, help] of COUNTERS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${name.endsWith('_total') ? 'counter' : 'untyped'}`);
    for (const spec of keys.specs) lines.push(`${name}{${labels[spec.index]}} ${sumCounter(views, spec.index, field)}`);
  }
  const outcomes: [number, string][] = [[C_RELEASED_OK_INDEX, 'ok'], [C_RELEASED_FAILED_INDEX, 'failed'], [C_RELEASED_THROTTLED_INDEX, 'throttled']];
  lines.push('# HELP tpsd_releases_total RELEASEs by reported outcome.', '# TYPE tpsd_releases_total counter');
  for (const spec of keys.specs) {
    for (const [field, outcome] of outcomes) {
      lines.push(`tpsd_releases_total{${labels[spec.index]},outcome="${outcome}"} ${sumCounter(views, spec.index, field)}`);
    }
  }
  return lines.join('\n') + '\n';
}
