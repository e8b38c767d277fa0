// The effective configuration after defaults are applied and the file is
// validated (schema.ts; defaults and bounds in defaults.ts). Every object
// here is frozen once loaded.

export const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The policy modes a config may name (policy.mode); 'fair' is another name for 'fallback'. */
export const POLICY_MODES = ['ppo', 'shadow', 'fallback', 'fair', 'static'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];
const MODE_ALIASES = { fair: 'fallback' } as const;
/** A mode as it runs and is reported (STATUS, /metrics): POLICY_MODES without the aliases. */
export type RunningMode = Exclude<PolicyMode, keyof typeof MODE_ALIASES>;
export const RUNNING_MODES: readonly RunningMode[] = POLICY_MODES.filter((m): m is RunningMode => !(m in MODE_ALIASES));
export function runningMode(mode: PolicyMode): RunningMode {
  return mode in MODE_ALIASES ? MODE_ALIASES[mode as keyof typeof MODE_ALIASES] : mode as RunningMode;
}

export interface EndpointConfig {
  readonly name: string;
  /** Hard ceiling of the endpoint's refill rate, tokens per second. */
  readonly max_tps: number;
  /** Bucket size in tokens; default max(1, ceil(max_tps / 5)): 200 ms of refill. */
  readonly burst: number;
  /** Max leases held at once; 0 means unlimited. */
  readonly concurrency: number;
  /** false: a dry run, acquires this key would deny are granted and counted as would_deny. Absent: true (the effective config shows it only when false). */
  readonly enforce?: boolean;
}

/** One tier of a service's tenants (`pool/service/~name`): its share's priority and each tenant's rate. */
export interface TierConfig {
  readonly name: string;
  readonly priority: Priority;
  /** Each tenant of the tier refills at this rate, tokens per second. */
  readonly tps: number;
  /** Each tenant's bucket size, tokens; default as for services (tps / 5, at least 1). */
  readonly burst: number;
  readonly enforce?: boolean;
  /**
   * What one request of the tier is worth (any unit, the same across a
   * service's tiers); absent: not set. Where set, the tier split weighs the
   * tiers of a priority class by it (control/tier-split.ts).
   */
  readonly value_per_request?: number;
  /** What a tenant the detector classes as an attacker gets (control/tenant-guard.ts). */
  readonly defense: DefenseConfig;
}

/** A tier's defensive limit: an attacking tenant refills at tps_fraction x the tier's tps for cooldown_s seconds. */
export interface DefenseConfig {
  /** In (0, 1]: a flagged tenant never gets more than its tier. */
  readonly tps_fraction: number;
  readonly cooldown_s: number;
}

/** A service's tenants: keys `pool/service/TENANT` made on first use (docs/tenants.md). */
export interface TenantsConfig {
  readonly tiers: readonly TierConfig[];
  /** The tier of a tenant no admin has placed. */
  readonly default_tier: string;
  /** Tenants alive at once; a new one beyond it is OVERLOADED. */
  readonly max: number;
  /** A tenant with no acquire for this long is forgotten, seconds. */
  readonly idle_s: number;
}

export interface ServiceConfig {
  readonly name: string;
  readonly priority: Priority;
  readonly min_tps: number;
  readonly max_tps: number;
  readonly burst: number;
  readonly concurrency: number;
  readonly endpoints: readonly EndpointConfig[];
  readonly enforce?: boolean;
  /** Keys one level below made on first use; absent or null: none. */
  readonly tenants?: TenantsConfig | null;
}

/** How the upstream counts its limit (pools[].upstream.window); see docs/allocator.md "The pool's gate". */
export const UPSTREAM_WINDOWS = ['sliding_1s', 'fixed_1s', 'token_bucket'] as const;
export type UpstreamWindow = (typeof UPSTREAM_WINDOWS)[number];

export interface UpstreamConfig {
  /** sliding_1s (default): no 1 s interval may exceed capacity_tps; fixed_1s: calendar seconds; token_bucket: rate + `burst`. */
  readonly window: UpstreamWindow;
  /** The latency the upstream should answer within, ms; null when not set. */
  readonly slo_ms: number | null;
  /** The callers' deadline, ms; null when not set. */
  readonly timeout_ms: number | null;
}

export interface PoolConfig {
  readonly name: string;
  /** The upstream API's limit as the operator configured it. */
  readonly capacity_tps: number;
  /**
   * Tokens the pool hands out at once beyond its rate; default max(1, ceil(capacity_tps / 10)): 100 ms of capacity.
   * The size of its shared borrowable bucket, and for a token_bucket upstream its gate's (at most the upstream's burst).
   */
  readonly burst: number;
  readonly upstream: UpstreamConfig;
  /** Shared with every daemon of the `cluster` section (daemon/cluster); the validator sets it, default false. */
  readonly shared?: boolean;
  readonly enforce?: boolean;
  readonly services: readonly ServiceConfig[];
}

/** What Envoy's rate limit service answers for a descriptor that names no configured key. */
export const RLS_UNKNOWN_KEYS = ['allow', 'deny'] as const;

/** Envoy's rate limit service over gRPC (src/io/rls/), served by I/O thread 0. */
export interface RlsConfig {
  readonly host: string;
  readonly port: number;
  /** allow: OK with no limit (as envoyproxy/ratelimit does); deny: OVER_LIMIT. */
  readonly unknown_keys: (typeof RLS_UNKNOWN_KEYS)[number];
}

export interface AuthToken {
  readonly token: string;
  /** Key prefixes this token may use, each on path-segment boundaries (`pay` = `pay/`); an empty list means every key. */
  readonly keys: readonly string[];
  readonly admin: boolean;
}

export interface TpsdConfig {
  readonly listen: { readonly host: string; readonly port: number };
  readonly io_threads: number;
  readonly tick_ms: number;
  readonly data_dir: string;
  readonly policy: {
    readonly mode: PolicyMode;
    /** Path of the model file; null means the shipped default model. */
    readonly model: string | null;
    /** Shadow mode only: the model that proposes beside the live policy (a candidate); null: policy.model. */
    readonly shadow_model: string | null;
    /** Per-tick growth cap of a service's allocation (multiplier). */
    readonly step_cap: number;
    /** Deadline of one policy inference, milliseconds. */
    readonly deadline_ms: number;
  };
  readonly lease_ttl_ms: number;
  readonly max_message_bytes: number;
  /** null: no authentication. */
  readonly auth: {
    readonly tokens: readonly AuthToken[];
    /** Failed authentications (HELLO or bearer) one client address may make per minute; 0: no per-address limit. */
    readonly max_failures_per_minute: number;
    /** true: GET /metrics needs no token. */
    readonly metrics_open: boolean;
  } | null;
  readonly limits: {
    /** Waiting requests per key (all threads together). */
    readonly max_queue_per_key: number;
    /** Requests of one connection waiting for an answer. */
    readonly max_outstanding_per_connection: number;
    /** Leases held at once per I/O thread. */
    readonly max_leases_per_thread: number;
    readonly max_connections: number;
    readonly idle_timeout_s: number;
    /** Unsent bytes buffered for one connection before it is dropped. */
    readonly max_backpressure_bytes: number;
  };
  readonly log: { readonly level: string };
  /** The SQLite telemetry database in data_dir (src/storage). */
  readonly telemetry: {
    /** false: no database is opened (limit overrides are then not persisted). */
    readonly enabled: boolean;
    /** Hours per-tick rows are kept before they are rolled up into 1-minute rows. */
    readonly retention_raw_h: number;
    /** Days 1-minute rows are kept. */
    readonly retention_rollup_d: number;
    /** Hours per-tick policy decisions are kept (limit changes are kept for good). */
    readonly retention_decisions_h: number;
    /** Seconds between roll-up / retention passes. */
    readonly rollup_every_s: number;
  };
  readonly pools: readonly PoolConfig[];
  /** null: Envoy's rate limit service is not served. */
  readonly rls: RlsConfig | null;
  /** Pools marked `shared` are divided among the daemons naming the same Redis; null: no cluster (cluster-schema.ts). */
  readonly cluster: ClusterConfig | null;
  /** Human approval of large limit changes (governance-schema.ts; docs/governance.md); null: off. */
  readonly governance: GovernanceConfig | null;
}

/** The `governance` section. */
export interface GovernanceConfig {
  /** A step ratio (> 1): an operator's change by more than this factor, or a tier's rise above it, waits for approval. */
  readonly approve_above: number;
}

/** The `cluster` section (cluster-schema.ts validates it; docs/cluster.md). */
export interface ClusterConfig {
  /** redis://, rediss://, redis+sentinel:// or redis+cluster:// URL. */
  readonly redis: string;
  /** This daemon's name among the nodes; null: `<hostname>:<bound port>`, resolved at start. */
  readonly node_id: string | null;
  /** How long a share lasts without renewal, ms. */
  readonly lease_ms: number;
  /** What a node grants per shared pool while the store is unreachable: 'even' (capacity / nodes last seen) or a fraction of capacity. */
  readonly safe_share: 'even' | number;
  /** Prefix of every Redis key (a hash tag: all keys in one Redis Cluster slot). */
  readonly key_prefix: string;
}
