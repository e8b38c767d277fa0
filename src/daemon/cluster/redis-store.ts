// The cluster's store: one ioredis client (a server, Sentinel or a Redis
// Cluster, from cluster.redis) and the share script (share.lua), run with
// EVALSHA, and with EVAL when the server does not know it (NOSCRIPT: after
// a restart or a failover). One call is one round trip for every shared
// pool; every key carries the hash tag {key_prefix}, so a Redis Cluster
// keeps them in one slot and the script stays atomic there too.
//
// Threads: main thread (cluster-node.ts calls share() after a tick and never
// awaits it inside one). Failures are fast by design: no offline queue, no
// retry of a command when the connection drops, a command timeout; the node
// runs on its lease and then its safe share while calls fail, and ioredis
// reconnects in the background.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl, type RedisTarget } from '../../config/cluster-schema.ts';
import { ConfigError } from '../../config/field-reader.ts';
import { CodedError } from '../../protocol/coded-error.ts';

/** A share call that got no usable answer: no connection in time, or an answer that is not the script's. (ioredis's own errors pass as they are.) */
export class ClusterStoreError extends CodedError {
  override readonly code = 'TPSD_CLUSTER_STORE_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'ClusterStoreError';
  }
}

/** What a node tells the script about one shared pool (tokens per second unless named otherwise). */
export interface PoolReport {
  /** capacity_tps in force on this node. */
  readonly cap: number;
  /** The share this node enforces now. */
  readonly held: number;
  /** This node's estimate of the pool's effective capacity (pool-wide capacity discovery). */
  readonly est: number;
  /** Demand by priority, CRITICAL .. LOW. */
  readonly d: readonly [number, number, number, number];
  /** Granted, throttled (upstream 429s), demand, and the pool bucket's burst (tokens). */
  readonly g: number;
  readonly t: number;
  readonly q: number;
  readonly b: number;
}

export interface ShareReport {
  readonly node: string;
  /** This process's random instance id: a restarted node never takes over its previous process's record. */
  readonly inst: string;
  readonly lease_ms: number;
  /** Delete this instance's records instead (a clean stop). */
  readonly leave?: boolean;
  readonly pools: readonly PoolReport[];
}

export interface PoolAnswer {
  /** This node's share, until its lease ends. */
  readonly grant: number;
  /** The water-fill's share for this node (grant differs while shares move). */
  readonly target: number;
  /** Live nodes sharing the pool (this one included). */
  readonly nodes: number;
  /** The pool's effective capacity: the least of the live nodes' capacities and estimates. */
  readonly eff: number;
  readonly cap: number;
  /** Sums over the live nodes' last reports: granted, throttled, demand, burst. */
  readonly g: number;
  readonly t: number;
  readonly q: number;
  readonly b: number;
}

export interface ShareAnswer {
  /** Redis's clock, ms. */
  readonly now: number;
  readonly mode: 'coordinated' | 'learning' | 'left';
  readonly learning_ms: number;
  readonly pools: readonly PoolAnswer[];
}

/** The store as the node uses it (tests and the benchmark may drive a node with it directly). */
export interface ShareStore {
  share(report: ShareReport): Promise<ShareAnswer>;
  /** Round trips made (EVALSHA, plus EVAL after NOSCRIPT). */
  readonly roundTrips: number;
  close(): Promise<void>;
}

export const SHARE_SCRIPT = readFileSync(new URL('./share.lua', import.meta.url), 'utf8');
const SHARE_SHA = createHash('sha1').update(SHARE_SCRIPT).digest('hex');

export interface RedisStoreOptions {
  readonly url: string;
  readonly keyPrefix: string;
  /** The shared pools, in report order. */
  readonly pools: readonly string[];
  /** Per command; a call that takes longer fails (the server may still run it: see share.lua's invariant). */
  readonly timeoutMs: number;
  /** Connection errors (ECONNREFUSED, ...), as ioredis reports them. */
  readonly onError: (err: Error) => void;
}

/** The Redis keys of a prefix and its pools: one meta hash, one hash per pool, one hash tag. */
export function shareKeys(prefix: string, pools: readonly string[]): string[] {
  return [`{${prefix}}:meta`, ...pools.map((p) => `{${prefix}}:pool:${p}`)];
}

type Client = Redis | Cluster;

export class RedisShareStore implements ShareStore {
  roundTrips = 0;
  private readonly client: Client;
  private readonly keys: string[];
  /** Until the first connection is ready, a call waits for it (up to its timeout); afterwards calls fail fast while down. */
  private firstReady: Promise<void> | null;

  constructor(private readonly o: RedisStoreOptions) {
    this.keys = shareKeys(o.keyPrefix, o.pools);
    this.client = openClient(o.url, o.timeoutMs);
    this.client.on('error', o.onError);
    this.firstReady = new Promise<void>((resolve) => this.client.once('ready', () => { this.firstReady = null; resolve(); }));
  }

  async share(report: ShareReport): Promise<ShareAnswer> {
    if (this.firstReady !== null) await this.readyWithin(this.firstReady);
    const arg = JSON.stringify(report);
    let reply: unknown;
    this.roundTrips++;
    try {
      reply = await this.client.evalsha(SHARE_SHA, this.keys.length, ...this.keys, arg);
    } catch (err) {
      if (!/^NOSCRIPT/.test((err as Error)?.message ?? '')) throw err;
      this.roundTrips++;
      reply = await this.client.eval(SHARE_SCRIPT, this.keys.length, ...this.keys, arg);
    }
    return readAnswer(reply, report.pools.length);
  }

  async close(): Promise<void> {
    try { await this.client.quit(); } catch { this.client.disconnect(); }
  }

  private readyWithin(ready: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ClusterStoreError(`not connected to the cluster's Redis within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    });
    return Promise.race([ready, late]).finally(() => clearTimeout(timer));
  }
}

const POOL_ANSWER_FIELDS = ['grant', 'target', 'nodes', 'eff', 'cap', 'g', 't', 'q', 'b'] as const;
const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The script's JSON reply, checked: a mode, and per pool reported an answer of finite, non-negative numbers. */
export function readAnswer(reply: unknown, pools: number): ShareAnswer {
  let a: ShareAnswer;
  try { a = JSON.parse(String(reply)) as ShareAnswer; } catch { a = {} as ShareAnswer; }
  const list = Array.isArray(a.pools) ? a.pools : [];
  const ok = isAmount(a.now) && (a.mode === 'left' || ((a.mode === 'coordinated' || a.mode === 'learning') && list.length === pools
    && list.every((p) => POOL_ANSWER_FIELDS.every((f) => isAmount(p?.[f])))));
  if (!ok) throw new ClusterStoreError(`the share script answered ${String(reply).slice(0, 200)}`);
  return { ...a, pools: list };
}

const RETRY_MS = (times: number): number => Math.min(1000, 50 * 2 ** Math.min(times, 5));

function openClient(url: string, timeoutMs: number): Client {
  const target = parseRedisUrl(url);
  if ('error' in target) throw new ConfigError([`cluster.redis: ${target.error}`]); // validated with the config already
  const common: RedisOptions = {
    enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: timeoutMs, connectTimeout: Math.max(timeoutMs, 1000),
    retryStrategy: RETRY_MS, autoResubscribe: false, autoResendUnfulfilledCommands: false, connectionName: 'tpsd-cluster',
  };
  return clientFor(target, common);
}

function clientFor(target: RedisTarget, common: RedisOptions): Client {
  if (target.kind === 'standalone') return new Redis(target.url, common);
  const auth = { username: target.username, password: target.password, ...(target.tls ? { tls: {} } : {}) };
  if (target.kind === 'sentinel') {
    return new Redis({
      ...common, ...auth, sentinels: target.hosts.map((h) => ({ ...h })), name: target.name, db: target.db,
      sentinelPassword: target.password, enableTLSForSentinelMode: target.tls, sentinelRetryStrategy: RETRY_MS,
    });
  }
  return new Cluster(target.hosts.map((h) => ({ ...h })), {
    enableOfflineQueue: false, clusterRetryStrategy: RETRY_MS, redisOptions: { ...common, ...auth },
  });
}
