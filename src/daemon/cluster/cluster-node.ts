// This daemon as a node of a cluster (docs/cluster.md): the pools marked
// `shared` are divided among every daemon that names the same Redis.
//
// The hot path never sees any of this: buckets stay in this process's shared
// memory, and the controller caps each shared pool at this node's share
// through its PoolCapProvider hook (capTps, called inside the tick). After
// each tick, afterTick() sends one report (every shared pool's demand by
// priority, grants, 429s, the share held, the node's estimate of the pool's
// capacity) to the share script (share.lua via redis-store.ts) and returns
// at once; the answer (a share per pool with a lease) is applied at the next
// tick. While a call is out no other is sent, so a slow store costs skipped
// reports, never a slower tick; the lease (lease-state.ts) decides what the
// node grants when answers stop coming.
//
// The upstream's capacity is learned across the cluster: each answer carries
// the pool-wide sums of the live nodes' last reports (granted, throttled,
// demand, burst), each node runs the controller's capacity discovery on
// those sums and reports its estimate, and the script takes the least live
// estimate as the pool's capacity for everyone. 429s seen by any node thus
// shrink the pool for all; recovery is discovery's own probing, driven by
// the whole pool's traffic, and an estimate leaves with its node's record.
//
// Threads: main thread only (the tick loop and the ioredis callbacks).

import { randomBytes } from 'node:crypto';
import type { Logger } from '../../config/log.ts';
import type { TpsdConfig } from '../../config/types.ts';
import { CapacityDiscovery, DEFAULT_DISCOVERY } from '../../control/capacity-discovery.ts';
import type { PoolCapProvider } from '../../control/controller.ts';
import type { PoolDecision } from '../../control/decision.ts';
import type { ClusterMode, ClusterPoolStats, ClusterStats } from '../../io/messages.ts';
import { LeaseState, newPoolLease, type PoolLease } from './lease-state.ts';
import { RedisShareStore, type PoolAnswer, type PoolReport, type ShareAnswer, type ShareReport, type ShareStore } from './redis-store.ts';

/** A service denied more than this fraction of its demand is pressing on its share (so is one with callers waiting). */
const PRESSING_DENIED = 0.01;

export interface ClusterNodeOptions {
  /** The store (default: Redis at cluster.redis); the pools' names in report order are given. */
  store?: (pools: readonly string[]) => ShareStore;
  /** Monotonic ms (default performance.now()). */
  now?: () => number;
  /** This process's instance id (default: 8 random hex digits). */
  inst?: string;
}

/** The figures the node needs of the controller after a tick. */
export interface TickSource {
  readonly last: readonly PoolDecision[];
  readonly table: { burstTokens(b: number): number };
}

interface SharedPool {
  readonly name: string;
  capacityTps: number;
  readonly lease: PoolLease;
  /** Pool-wide capacity discovery, fed the cluster's sums. */
  readonly discovery: CapacityDiscovery;
  answer: PoolAnswer | null;
  report: PoolReport;
  /** The shares in force over the last second (rises wait for it: see ShareRises). */
  readonly rises: ShareRises;
}

export class ClusterNode implements PoolCapProvider {
  readonly leaseMs: number;
  private readonly pools: SharedPool[];
  private readonly byName = new Map<string, SharedPool>();
  private readonly lease: LeaseState;
  private readonly now: () => number;
  private readonly inst: string;
  private store: ShareStore | null = null;
  private nodeId = '';
  private pending: Promise<void> | null = null;
  private answers = 0;
  private calls = 0;
  private errors = 0;
  private skippedTicks = 0;
  private latencyLastMs = 0;
  private latencySumMs = 0;
  private renewedAtMs: number | null = null;
  private lastMode: ClusterMode = 'learning';
  private stopped = false;
  /** A call failed since the last answer (logged once). */
  private failing = false;

  constructor(private readonly config: TpsdConfig, private readonly log: Logger, private readonly o: ClusterNodeOptions = {}) {
    const c = config.cluster;
    if (c === null) throw new TypeError('ClusterNode needs a config with a cluster section');
    this.leaseMs = c.lease_ms;
    this.now = o.now ?? (() => performance.now());
    this.inst = o.inst ?? randomBytes(4).toString('hex');
    this.lease = new LeaseState({ leaseMs: c.lease_ms, tickMs: config.tick_ms, safeShare: c.safe_share }, this.now());
    this.pools = config.pools.filter((p) => p.shared === true).map((p) => ({
      name: p.name, capacityTps: p.capacity_tps, lease: newPoolLease(), answer: null, rises: new ShareRises(),
      discovery: new CapacityDiscovery(p.capacity_tps, DEFAULT_DISCOVERY),
      report: { cap: p.capacity_tps, held: 0, est: p.capacity_tps, d: [0, 0, 0, 0], g: 0, t: 0, q: 0, b: 0 },
    }));
    for (const p of this.pools) this.byName.set(p.name, p);
  }

  /** Names this node (cluster.node_id, else `defaultNodeId`), connects and joins at once. */
  start(defaultNodeId: string): void {
    const c = this.config.cluster!;
    this.nodeId = c.node_id ?? defaultNodeId;
    if (this.pools.length === 0) return; // nothing shared: no store needed
    // An answer is worth waiting for as long as it leaves some of its lease (which counts from the send) to use.
    const timeoutMs = Math.max(1, Math.floor(Math.max(c.lease_ms / 2, c.lease_ms - 2 * this.config.tick_ms)));
    const names = this.pools.map((p) => p.name);
    this.store = this.o.store?.(names) ?? new RedisShareStore({
      url: c.redis, keyPrefix: c.key_prefix, pools: names, timeoutMs,
      onError: (err) => this.log.debug({ err: err.message }, 'cluster store connection error'),
    });
    this.log.info({ node_id: this.nodeId, inst: this.inst, pools: names, lease_ms: c.lease_ms }, 'joining the cluster');
    this.send();
  }

  /** The controller's pool cap hook: a shared pool runs on this node's share, never above what discovery allows. */
  capTps(poolKey: string, effectiveTps: number): number {
    const pool = this.byName.get(poolKey);
    if (pool === undefined) return effectiveTps;
    const now = this.now();
    const share = this.lease.shareTps(pool.lease, pool.capacityTps, now);
    return Math.min(effectiveTps, pool.rises.cap(share, pool.lease.nodesSeen, now));
  }

  /**
   * The pool bucket's burst on this node: its share of the configured one.
   * The bucket refills at the cap less its burst (so no second admits more
   * than the cap), and n nodes each holding the whole burst would leave n
   * bursts of the capacity unused.
   */
  burstTokens(poolKey: string, burst: number): number {
    const pool = this.byName.get(poolKey);
    if (pool === undefined) return burst;
    return Math.max(1, Math.ceil(burst * Math.min(1, pool.lease.heldTps / pool.capacityTps)));
  }

  /** After each controller tick: the report of its figures goes out unless a call is still out. */
  afterTick(source: TickSource): void {
    if (this.store === null || this.stopped) return;
    this.noteMode();
    for (const rec of source.last) {
      const pool = this.byName.get(rec.obs.key);
      if (pool !== undefined) pool.report = this.poolReport(pool, rec, source.table.burstTokens(rec.obs.bucket));
    }
    if (this.pending !== null) { this.skippedTicks++; return; }
    this.send();
  }

  /** A clean stop (after the I/O threads stopped granting): this node's records go at once, so its shares return now. */
  async leave(): Promise<void> {
    this.stopped = true;
    const store = this.store;
    if (store === null) return;
    await this.pending;
    try {
      await store.share({ node: this.nodeId, inst: this.inst, lease_ms: this.leaseMs, leave: true, pools: this.pools.map((p) => p.report) });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not leave the cluster; this node\'s shares return when its lease ends');
    }
    await store.close();
  }

  stats(): ClusterStats {
    const pools: ClusterPoolStats[] = this.pools.map((p) => ({
      pool: p.name, nodes: p.lease.nodesSeen, shareTps: p.lease.heldTps, targetTps: p.answer?.target ?? 0,
      clusterCapacityTps: p.answer?.eff ?? p.capacityTps,
    }));
    return {
      nodeId: this.nodeId, mode: this.lease.mode(this.now()), renewedAtMs: this.renewedAtMs, leaseMs: this.leaseMs,
      calls: this.calls, errors: this.errors, roundTrips: this.store?.roundTrips ?? 0, latencyLastMs: this.latencyLastMs,
      latencySumMs: this.latencySumMs, skippedTicks: this.skippedTicks, pending: this.pending !== null, pools,
    };
  }

  /**
   * What this node claims per priority: a service whose callers wait or are
   * denied claims up to its max_tps (callers that wait for a permit before
   * asking again arrive only as fast as they are served, so their arrivals
   * understate what they want); any other claims its arrivals.
   */
  private poolReport(pool: SharedPool, rec: PoolDecision, burst: number): PoolReport {
    const d: [number, number, number, number] = [0, 0, 0, 0];
    for (const s of rec.obs.services) {
      const pressing = s.queue > 0 || s.deniedTps > PRESSING_DENIED * s.demandTps;
      d[Math.min(3, Math.max(0, s.priority))] += pressing ? s.maxTps : Math.min(s.demandTps, s.maxTps);
    }
    pool.capacityTps = rec.obs.capacityTps;
    return {
      cap: rec.obs.capacityTps, held: pool.lease.heldTps, est: pool.discovery.effectiveTps, d,
      g: rec.obs.grantedTps, t: rec.obs.throttledTps, q: rec.obs.totalDemandTps, b: burst,
    };
  }

  private send(): void {
    const store = this.store!;
    const report: ShareReport = { node: this.nodeId, inst: this.inst, lease_ms: this.leaseMs, pools: this.pools.map((p) => p.report) };
    const sentAtMs = this.now();
    this.calls++;
    this.pending = store.share(report).then(
      (answer) => this.onAnswer(sentAtMs, answer),
      (err) => this.onFailure(err as Error),
    ).finally(() => { this.pending = null; });
  }

  private onAnswer(sentAtMs: number, a: ShareAnswer): void {
    const latencyMs = this.now() - sentAtMs;
    this.latencyLastMs = latencyMs;
    this.latencySumMs += latencyMs;
    if (a.mode === 'left') return;
    if (this.failing) this.log.info({ latency_ms: Math.round(latencyMs) }, 'cluster store answers again');
    this.failing = false;
    this.lease.renewed(sentAtMs, a.mode);
    this.renewedAtMs = Date.now();
    this.answers++;
    const tickS = this.config.tick_ms / 1000;
    this.pools.forEach((p, i) => {
      const x = a.pools[i];
      p.answer = x;
      p.lease.grantTps = x.grant;
      p.lease.nodesSeen = x.nodes;
      p.discovery.update({ tick: this.answers, capacityTps: x.cap, grantedTps: x.g, throttledTps: x.t, demandTps: x.q, reserveTps: x.b, tickS });
    });
  }

  private onFailure(err: Error): void {
    this.errors++;
    this.lease.failed(this.now());
    if (!this.failing) {
      this.failing = true;
      this.log.warn({ err: err.message }, 'cluster store call failed; running on the lease, then the safe share');
    } else {
      this.log.debug({ err: err.message }, 'cluster store call failed');
    }
  }

  /** Logs each change of mode once. */
  private noteMode(): void {
    const mode = this.lease.mode(this.now());
    if (mode === this.lastMode) return;
    const shares = Object.fromEntries(this.pools.map((p) => [p.name, Math.round(p.lease.heldTps)]));
    (mode === 'safe' ? this.log.warn : this.log.info).call(this.log, { from: this.lastMode, mode, shares }, `cluster mode ${mode}`);
    this.lastMode = mode;
  }
}

/**
 * A rise of this node's share applies once it has held for a whole second;
 * a cut applies at once. The store moves a share from one live node to
 * another as soon as the first shrinks, but what that node granted in the
 * last second still counts against the upstream's window: taking the share
 * up at once could pass the capacity in the second the share moves (a
 * rejoining node, measured 638 of 600 in a second). When the pool's node
 * count fell, the share comes from a node that stopped reporting a lease ago,
 * whose grants are older than the window: the rise applies at once.
 */
export class ShareRises {
  private readonly atMs: number[] = [];
  private readonly tps: number[] = [];
  private nodes = 0;

  /** The share to run on at `nowMs`, given the store's share and node count. */
  cap(shareTps: number, nodes: number, nowMs: number): number {
    const peerLeft = nodes < this.nodes;
    this.nodes = nodes;
    if (peerLeft) { this.atMs.length = 0; this.tps.length = 0; }
    const n = this.tps.length;
    if (n === 0 || this.tps[n - 1] !== shareTps) { this.atMs.push(nowMs); this.tps.push(shareTps); }
    // Keep the share in force at the window's start and every one since.
    while (this.atMs.length > 1 && this.atMs[1] <= nowMs - SHARE_WINDOW_MS) { this.atMs.shift(); this.tps.shift(); }
    let min = Infinity;
    for (const x of this.tps) if (x < min) min = x;
    return min;
  }
}

/** How long a take counts against an upstream's window (a second, and the daemon's millisecond of slack). */
const SHARE_WINDOW_MS = 1001;
