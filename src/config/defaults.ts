// The config's numbers: the bounds every field is checked against (several
// are what shared memory and the lease table can hold; src/shm/layout.ts and
// src/io/lease-table.ts assert those relationships at load) and the default
// of every optional field. The validator that applies them is schema.ts.

import os from 'node:os';

/** Largest rate, tokens per second: the shared-memory token ceiling (shm/layout.ts MAX_TOKENS). */
export const MAX_TPS = 2_000_000;
/** Largest bucket size, tokens: the shared-memory token ceiling (shm/layout.ts MAX_TOKENS). */
export const MAX_BURST = 2_000_000;
export const MAX_CONCURRENCY = 2_147_483_647;
/** Tenants alive at once, all services together: the tenant slots are sized from the sum of `tenants.max` (shm/tenant-table.ts). */
export const MAX_TENANTS = 1_000_000;
/** Tiers of one service's tenants (each a bucket). */
export const MAX_TIERS = 16;
/** tenants.max and tenants.idle_s when not given. */
export const DEFAULT_TENANTS_MAX = 10_000;
export const DEFAULT_TENANT_IDLE_S = 300;
/** Longest tenants.idle_s: one day. */
export const MAX_TENANT_IDLE_S = 86_400;
/** A tier's `defense` when not given: an attacking tenant refills at 10 % of its tier's tps for 60 s (docs/tenants.md). */
export const DEFAULT_DEFENSE_TPS_FRACTION = 0.1;
export const DEFAULT_DEFENSE_COOLDOWN_S = 60;
/** Longest defense.cooldown_s: one day. */
export const MAX_DEFENSE_COOLDOWN_S = 86_400;
/** Pools + services + endpoints: one shared-memory bucket each. */
export const MAX_BUCKETS = 1_000_000;
export const MAX_IO_THREADS = 16;
/** The lease table packs a slot number in 20 bits of the lease id. */
export const MAX_LEASES_PER_THREAD = 1 << 20;
/** Longest controller tick: every bucket is refilled at least this often (shm/layout.ts, int32 times). */
export const MAX_TICK_MS = 3_600_000;
export const MIB = 1024 * 1024;
/** Largest auth.max_failures_per_minute: the shared failure table counts up to 2047 (shm/failure-table.ts). */
export const MAX_FAILURES_PER_MINUTE = 1000;

export const DEFAULTS = {
  listen: { host: '127.0.0.1', port: 7070 },
  tick_ms: 1000,
  data_dir: './data',
  policy: { mode: 'ppo', model: null, shadow_model: null, step_cap: 1.8, deadline_ms: 50 },
  lease_ttl_ms: 30_000,
  max_message_bytes: 65_536,
  /** Fields of the `auth` section besides its tokens (the section itself is optional: no section, no auth). */
  auth: { max_failures_per_minute: 20, metrics_open: false },
  limits: {
    max_queue_per_key: 10_000,
    max_outstanding_per_connection: 4096,
    max_leases_per_thread: MAX_LEASES_PER_THREAD,
    max_connections: 100_000,
    idle_timeout_s: 120,
    max_backpressure_bytes: 4 * MIB,
  },
  log: { level: 'info' },
  rls: { host: '127.0.0.1', unknown_keys: 'allow' },
  telemetry: { enabled: true, retention_raw_h: 24, retention_rollup_d: 30, retention_decisions_h: 168, rollup_every_s: 60 },
} as const;

/** One I/O thread per core, between 1 and MAX_IO_THREADS. */
export function defaultIoThreads(): number {
  return Math.min(MAX_IO_THREADS, Math.max(1, os.availableParallelism()));
}

/**
 * Default pool burst: 100 ms of capacity (capacity / 10), what a token-bucket
 * upstream typically holds. It sizes the pool's shared borrowable bucket (and
 * a token_bucket gate); no reserve is taken from the rate for it (see
 * docs/allocator.md, "The pool's gate").
 */
export function defaultPoolBurst(capacityTps: number): number {
  return Math.max(1, Math.ceil(capacityTps / 10));
}

/** pools[].upstream.window when not given: the sliding window, safe for any upstream that counts by second. */
export const DEFAULT_UPSTREAM_WINDOW = 'sliding_1s';
/** Largest upstream.slo_ms and upstream.timeout_ms: one hour. */
export const MAX_UPSTREAM_MS = 3_600_000;

/**
 * Default service and endpoint bucket size: 200 ms of max_tps (tps / 5), at
 * least one token: enough for callers that come in bursts a few times a
 * second to be granted at the key's rate (see docs/allocator.md).
 */
export function defaultBurst(tps: number): number {
  return Math.max(1, Math.ceil(tps / 5));
}
