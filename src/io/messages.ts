// Typed messages between the main thread and the I/O worker threads.
//
// Admin requests (op 16 LIMITS) are checked for shape and authorization by
// the I/O thread that received them, then forwarded to the main thread, which
// owns the limits, the controller and the database; the answer comes back as
// an 'admin-reply' to the same thread, which sends it on the connection.

import type { MessagePort } from 'node:worker_threads';
import type { TpsdConfig } from '../config/types.ts';
import type { SharedKeys } from '../shm/key-index.ts';
import type { TierRateChange } from '../shm/tenant-table.ts';

/** Given to each I/O worker at start. */
export interface IoWorkerData {
  /** Module the bootstrap loads (see thread-bootstrap.mjs). */
  readonly entry: string;
  readonly sab: SharedArrayBuffer;
  readonly bucketCount: number;
  readonly threadCount: number;
  /** Tenant slots in shared memory (layout.ts tenantSlotsFor; 0 without tenants). */
  readonly tenantSlots?: number;
  /** The tier assignments at start (SQLite), for the tenants this thread makes. */
  readonly tenantTiers?: readonly TenantTier[];
  /** Per-tenant counters (shm/tenant-counters.ts; absent without tenants). */
  readonly tenantCounters?: SharedArrayBuffer | null;
  readonly thread: number;
  readonly config: TpsdConfig;
  /**
   * The main thread's keys (KeyIndex.shared()), viewed, not rebuilt per
   * thread; `config` then has its pools without services (configForThreads).
   * Absent (test stand-ins), the thread builds its own from config.pools.
   */
  readonly keys?: SharedKeys;
  readonly port: number;
  readonly epochHrMs: number;
  readonly startedAtMs: number;
  /** The policy that applies at start (later ones come with each tick's DaemonHealth). */
  readonly policy: PolicyRunning;
  /** This thread's ends of the channels to the other I/O threads (relay-links.ts); null for itself. */
  readonly relayPorts: readonly (MessagePort | null)[];
}

/**
 * Which policy really applies and, when the mode asks for PPO and it does not
 * run, why (the model file is missing or unusable). Decided on the main
 * thread (daemon/daemon-health.ts); STATUS, /readyz and /metrics show it.
 */
export interface PolicyRunning {
  /** policy.mode of the config. */
  readonly mode: string;
  /** The policy whose allocation applies: 'ppo', 'fair' or 'static' (shadow applies fair). */
  readonly running: string;
  /** Why PPO is not used although the mode asks for it; null when it is, or is not asked for. */
  readonly fallbackReason: string | null;
}

/** The main thread's view of the daemon's health, sent to every I/O thread with each tick's figures. */
export interface DaemonHealth {
  /** Why telemetry is not being written (/readyz answers 503 with it); null while writes succeed. */
  readonly telemetryProblem: string | null;
  readonly policy: PolicyRunning;
}

/** A tenant's tier assignment: service bucket, tenant name, tier bucket (-1: back to the default tier). */
export interface TenantTier {
  readonly service: number;
  readonly name: string;
  readonly tier: number;
}

/** An admin request after the I/O thread's checks (see io/admin-op.ts). */
export interface AdminRequest {
  /** limits: op 16 LIMITS; tenants: op 17 TENANTS; approvals: op 18 APPROVALS. */
  readonly op: 'limits' | 'tenants' | 'approvals';
  readonly action: 'get' | 'set' | 'rm' | 'list' | 'approve' | 'reject';
  /** null: every key (get only). */
  readonly key: string | null;
  /** set: field -> value. */
  readonly changes: Record<string, unknown>;
  /** rm: the fields to remove; empty means all of the key's overrides. */
  readonly fields: string[];
  /** Who asked, for the audit trail (HELLO name, thread and connection; never the token). */
  readonly actor: string;
  /** TENANTS list: at most this many entries (default and cap in daemon/tenant-admin.ts). */
  readonly limit?: number;
  /** APPROVALS approve / reject: the pending change's id. */
  readonly changeId?: string;
}

/**
 * A node's modes in a cluster (daemon/cluster): `coordinated` (a share
 * leased from the store), `safe` (the store unreachable: the safe share),
 * `learning` (the store lost its state, or the node has just started: no
 * more than it holds). The STATUS `cluster.mode` and /metrics label values.
 */
export const CLUSTER_MODES = ['coordinated', 'safe', 'learning'] as const;
export type ClusterMode = (typeof CLUSTER_MODES)[number];

/** One shared pool as this node sees it, after its last tick. */
export interface ClusterPoolStats {
  readonly pool: string;
  /** Live nodes sharing the pool (this one included), or the count last seen. */
  readonly nodes: number;
  /** This node's share in force, tokens/s. */
  readonly shareTps: number;
  /** The water-fill's share for this node in the last answer (the share moves towards it). */
  readonly targetTps: number;
  /** The pool's effective capacity across the cluster (least of the nodes' estimates). */
  readonly clusterCapacityTps: number;
}

/** The cluster's figures (daemon/cluster/cluster-node.ts), part of DaemonStats; STATUS and /metrics show them. */
export interface ClusterStats {
  readonly nodeId: string;
  readonly mode: ClusterMode;
  /** Date.now() when the lease was last renewed; null before the first answer. */
  readonly renewedAtMs: number | null;
  readonly leaseMs: number;
  /** Share calls made, failed, and their Redis round trips. */
  readonly calls: number;
  readonly errors: number;
  readonly roundTrips: number;
  readonly latencyLastMs: number;
  readonly latencySumMs: number;
  /** Ticks that sent no report because the previous call was still out (a slow store). */
  readonly skippedTicks: number;
  readonly pending: boolean;
  /** The shared pools, in config order (a list: pool names are not safe as object keys, "__proto__" is a valid one). */
  readonly pools: readonly ClusterPoolStats[];
}

/** control/model-drift.ts DriftStatus, as the I/O threads get it. */
export interface ModelDriftStats {
  readonly score: number;
  readonly feature: string;
  readonly ticks: number;
  readonly retrainDue: boolean;
  readonly threshold: number;
}

/** The surge and abuse defence's counts (control/tenant-guard.ts), part of DaemonStats. */
export interface TenantGuardStats {
  /** The class names, in the order of the arrays below (normal, surge, attack). */
  readonly classes: readonly string[];
  readonly tiers: readonly {
    readonly tier: string;
    /** Entries into each class since start. */
    readonly changes: readonly number[];
    /** Tenants in each class now (normal: the ones still watched). */
    readonly current: readonly number[];
    /** Tenants under a defensive limit now; limits applied and lifted since start. */
    readonly defended: number;
    readonly applied: number;
    readonly lifted: number;
  }[];
  /** Each tenant service's class now (an index into classes). */
  readonly services: readonly { readonly service: string; readonly cls: number }[];
  /** Audit rows not written because a tick had more than the cap (the limits applied all the same). */
  readonly droppedEvents: number;
}

/** The daemon's own figures, sent to every I/O thread after each tick for /metrics (with DaemonHealth). */
export interface DaemonStats {
  readonly ticks: number;
  /** Ticks skipped because the previous one was still running. */
  readonly tickOverruns: number;
  readonly tickLastMs: number;
  readonly tickSumMs: number;
  /** Policy fallbacks by kind: missing_model, deadline, busy, invalid_output, error. */
  readonly fallbacks: Readonly<Record<string, number>>;
  readonly shadowRegret: number;
  readonly model: string;
  /** Drift of live observations from the model's training distribution (control/model-drift.ts); absent without a controller. */
  readonly drift?: ModelDriftStats;
  readonly overrides: number;
  readonly sqlite: {
    readonly enabled: boolean;
    readonly writes: number;
    readonly writeLastMs: number;
    readonly writeSumMs: number;
    readonly rows: number;
    readonly errors: number;
    /** Ticks not written because the writer thread was behind. */
    readonly droppedTicks: number;
    readonly rollups: number;
    readonly rollupSumMs: number;
    readonly rolledUpRows: number;
    readonly deletedRows: number;
    readonly dbBytes: number;
  };
  /** With tenants: the surge and abuse defence's counts. */
  readonly tenantGuard?: TenantGuardStats;
  /** With a `cluster` section: this node's view of its shared pools. */
  readonly cluster?: ClusterStats | null;
}

export type MainToWorker =
  /** Stop: close the listen socket, answer waiters SHUTTING_DOWN, close connections. */
  | { readonly type: 'stop' }
  /** A reloaded config with the same key set (SIGHUP), and its dry-run buckets (KeyIndex.dryRunFlags: the threads' key table keeps the start's). */
  | { readonly type: 'config'; readonly config: TpsdConfig; readonly dryRun: Uint8Array | null }
  /** The answer to an 'admin' message: a protocol status and the reply body (or error message). */
  | { readonly type: 'admin-reply'; readonly reqId: number; readonly status: number; readonly body: unknown }
  | { readonly type: 'daemon-stats'; readonly stats: DaemonStats; readonly health: DaemonHealth }
  /** A tenant's tier changed (op 17 TENANTS set or rm). */
  | ({ readonly type: 'tenant-tier' } & TenantTier)
  /** Tiers' tps or burst changed by a reload (SIGHUP): for the tenants the thread makes and holds. */
  | { readonly type: 'tier-rates'; readonly tiers: readonly TierRateChange[] };

export type WorkerToMain =
  | { readonly type: 'listening'; readonly port: number }
  /** host, port, reason: when the address that failed is not listen.host:port (rls). */
  | { readonly type: 'listen-failed'; readonly message: string; readonly host?: string; readonly port?: number; readonly reason?: string }
  | { readonly type: 'stopped'; readonly connectionsClosed: number }
  | { readonly type: 'admin'; readonly reqId: number; readonly request: AdminRequest };
