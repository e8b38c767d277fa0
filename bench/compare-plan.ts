// What bench:compare measures: the scenarios, the systems in each, and the
// targets from the issue, checked against the medians of the trials.

import type { LoadResult } from '../src/loadgen/run-load.ts';
import type { ClientKind } from '../src/loadgen/spec.ts';

/** 'tpsd-base': the same daemon from another checkout (bench:compare --baseline DIR), run only when given. */
export type SystemName = 'echo' | 'tpsd' | 'tpsd-base' | 'redis';

export interface RunDef {
  readonly id: string;
  readonly label: string;
  readonly system: SystemName;
  readonly client: ClientKind;
  /** The keys it acquires (`tpsd bench --keys`): absent, the 16 configured services bench/s0..s15. */
  readonly keys?: string;
}

export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly connections: number;
  readonly pipeline: number;
  readonly batch: number;
  readonly runs: readonly RunDef[];
  /** Per-trial ratios shown in the "vs" column: [run id, label, f(results of this trial)]. */
  readonly ratios: readonly { run: string; label: string; of: (r: Record<string, LoadResult>) => number }[];
}

const ECHO: RunDef = { id: 'echo', label: 'bare uWS echo server (raw client)', system: 'echo', client: 'raw' };
const TPSD_RAW: RunDef = { id: 'tpsd-raw', label: 'tpsd (raw client)', system: 'tpsd', client: 'raw' };
const TPSD_SDK: RunDef = { id: 'tpsd-sdk', label: 'tpsd (tpsd SDK, its batching)', system: 'tpsd', client: 'sdk' };
/**
 * Keys of service bench/t (bench-config.ts, `tenants`): 16 tenants, each its
 * own bucket under the tier, the service and the pool; and the service's 16
 * configured endpoints (endpoint, service, pool), the baseline through the
 * same service.
 */
const TENANT_KEYS = Array.from({ length: 16 }, (_, i) => `bench/t/c${i}`).join(',');
const ENDPOINT_KEYS = Array.from({ length: 16 }, (_, i) => `bench/t/e${i}`).join(',');
const TPSD_TENANT: RunDef = { id: 'tpsd-tenant', label: 'tpsd, 16 tenant keys bench/t/cN (raw client)', system: 'tpsd', client: 'raw', keys: TENANT_KEYS };
const TPSD_ENDPOINT: RunDef = {
  id: 'tpsd-endpoint', label: 'tpsd, 16 configured endpoints bench/t/eN (raw client)', system: 'tpsd', client: 'raw', keys: ENDPOINT_KEYS,
};
const BASE_TENANT: RunDef = { ...TPSD_TENANT, id: 'base-tenant', label: 'baseline checkout: 16 tenant keys', system: 'tpsd-base' };
const BASE_ENDPOINT: RunDef = { ...TPSD_ENDPOINT, id: 'base-endpoint', label: 'baseline checkout: 16 configured endpoints', system: 'tpsd-base' };
const RLF: RunDef = { id: 'rlf', label: 'Redis + rate-limiter-flexible (ioredis, auto-pipelining)', system: 'redis', client: 'rlf' };

const p50 = (r: LoadResult) => r.latencyMs.p50;
const p99 = (r: LoadResult) => r.latencyMs.p99;
const dps = (r: LoadResult) => r.decisionsPerSec;
const mps = (r: LoadResult) => r.messagesPerSec;

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'c1', title: 'Concurrency 1: 1 connection, 1 request in flight, 1 acquire per message (round trip)',
    connections: 1, pipeline: 1, batch: 1, runs: [ECHO, TPSD_RAW, TPSD_SDK, RLF],
    ratios: [
      { run: 'tpsd-raw', label: 'p50 / echo p50', of: (r) => p50(r['tpsd-raw']) / p50(r.echo) },
      { run: 'tpsd-sdk', label: 'p50 / echo p50', of: (r) => p50(r['tpsd-sdk']) / p50(r.echo) },
      { run: 'rlf', label: 'p50 / echo p50', of: (r) => p50(r.rlf) / p50(r.echo) },
    ],
  },
  {
    id: 'pipelined', title: '64 connections x 32 in flight, 1 acquire per message, the same raw client for both',
    connections: 64, pipeline: 32, batch: 1, runs: [ECHO, TPSD_RAW],
    ratios: [{ run: 'tpsd-raw', label: 'messages/s / echo', of: (r) => mps(r['tpsd-raw']) / mps(r.echo) }],
  },
  {
    id: 'own-client', title: '64 connections x 32 in flight, each system through its own client',
    connections: 64, pipeline: 32, batch: 1, runs: [TPSD_SDK, RLF],
    ratios: [
      { run: 'tpsd-sdk', label: 'decisions/s / Redis+RLF', of: (r) => dps(r['tpsd-sdk']) / dps(r.rlf) },
      { run: 'tpsd-sdk', label: 'p99 / Redis+RLF p99', of: (r) => p99(r['tpsd-sdk']) / p99(r.rlf) },
    ],
  },
  {
    id: 'tenant', title: 'Tenant keys against configured endpoints of the same service: batches of 64, 16 connections x 2 messages in flight (issue 16)',
    connections: 16, pipeline: 2, batch: 64, runs: [TPSD_ENDPOINT, TPSD_TENANT, BASE_ENDPOINT, BASE_TENANT],
    ratios: [
      { run: 'base-tenant', label: 'decisions/s / configured endpoints', of: (r) => dps(r['base-tenant']) / dps(r['base-endpoint']) },
      { run: 'base-tenant', label: 'endpoints\' daemon CPU per decision / tenants\'', of: (r) => cpuRatio(r['base-tenant'], r['base-endpoint']) },
      { run: 'tpsd-tenant', label: 'decisions/s / configured endpoints', of: (r) => dps(r['tpsd-tenant']) / dps(r['tpsd-endpoint']) },
      { run: 'tpsd-tenant', label: 'endpoints\' daemon CPU per decision / tenants\'', of: (r) => cpuRatio(r['tpsd-tenant'], r['tpsd-endpoint']) },
    ],
  },
  {
    id: 'batched', title: 'Batches of 64 acquires per message: 16 connections x 2 messages in flight (2048 acquires in flight)',
    connections: 16, pipeline: 2, batch: 64, runs: [ECHO, TPSD_RAW, RLF],
    ratios: [
      { run: 'tpsd-raw', label: 'decisions/s / echo', of: (r) => dps(r['tpsd-raw']) / dps(r.echo) },
      { run: 'tpsd-raw', label: 'decisions/s / Redis+RLF', of: (r) => dps(r['tpsd-raw']) / dps(r.rlf) },
    ],
  },
];

export interface Target {
  readonly what: string;
  /** Per-trial value (from that trial's results of the scenario). */
  readonly scenario: string;
  readonly value: (r: Record<string, LoadResult>) => number | null;
  readonly format: (v: number) => string;
  readonly met: (v: number) => boolean;
}

const x = (v: number) => `${v.toFixed(2)}x`;
const us = (v: number) => `${v.toFixed(2)} us`;
const serverUs = (r: LoadResult | undefined) => r?.cpu.server?.usPerDecision ?? null;
/** A's daemon CPU per decision over B's, inverted: the throughput ratio the daemon's cost allows (B / A). */
const cpuRatio = (a: LoadResult | undefined, b: LoadResult | undefined) => {
  const ua = serverUs(a), ub = serverUs(b);
  return ua === null || ub === null || ua <= 0 ? NaN : ub / ua;
};

export const TARGETS: readonly Target[] = [
  {
    what: 'concurrency 1: tpsd round-trip p50 within 1.15x of the bare echo', scenario: 'c1',
    value: (r) => p50(r['tpsd-raw']) / p50(r.echo), format: x, met: (v) => v <= 1.15,
  },
  {
    what: "64 x 32 in flight, 1 acquire per message: tpsd >= 0.8x the echo's messages/s", scenario: 'pipelined',
    value: (r) => mps(r['tpsd-raw']) / mps(r.echo), format: x, met: (v) => v >= 0.8,
  },
  {
    what: '64 x 32 through own clients: tpsd SDK >= 5x the decisions/s of Redis + rate-limiter-flexible', scenario: 'own-client',
    value: (r) => dps(r['tpsd-sdk']) / dps(r.rlf), format: x, met: (v) => v >= 5,
  },
  {
    what: '64 x 32 through own clients: tpsd p99 lower than Redis + rate-limiter-flexible (ratio < 1)', scenario: 'own-client',
    value: (r) => p99(r['tpsd-sdk']) / p99(r.rlf), format: x, met: (v) => v < 1,
  },
  {
    what: 'batched (64 per message): daemon CPU <= 1 us per decision', scenario: 'batched',
    value: (r) => serverUs(r['tpsd-raw']), format: us, met: (v) => v <= 1,
  },
  {
    what: 'unbatched (64 x 32, 1 per message): daemon CPU <= 5 us per decision', scenario: 'pipelined',
    value: (r) => serverUs(r['tpsd-raw']), format: us, met: (v) => v <= 5,
  },
  {
    what: 'tenant keys: daemon CPU per decision of a configured endpoint of the same service / of a tenant key >= 0.8 (batched 64)', scenario: 'tenant',
    value: (r) => { const v = cpuRatio(r['tpsd-tenant'], r['tpsd-endpoint']); return Number.isNaN(v) ? null : v; }, format: x, met: (v) => v >= 0.8,
  },
  {
    what: 'through the SDK (64 x 32; the SDK batches a tick\'s calls): daemon CPU per decision (no target)', scenario: 'own-client',
    value: (r) => serverUs(r['tpsd-sdk']), format: us, met: () => true,
  },
];
