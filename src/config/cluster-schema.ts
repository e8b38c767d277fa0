// The schema of the `cluster` section (part of schema.ts's validator) and of
// the pools' `shared` flag it gives a meaning to: the Redis the daemons share
// pools through, this daemon's node id, the lease of a share and what a
// daemon grants while Redis is unreachable (docs/cluster.md). Also the one
// parser of the Redis URL forms, used here to validate and by
// daemon/cluster/redis-store.ts to connect, so both read a URL the same way.
// Pure: nothing here connects anywhere.

import { FieldReader, joinIndex, joinKey, type JsonObject } from './field-reader.ts';
import type { ClusterConfig, PoolConfig } from './types.ts';

const CLUSTER_KEYS = ['redis', 'node_id', 'lease_ms', 'safe_share', 'key_prefix'];
/** A node id names a node in Redis (and in STATUS): no '/', which separates it from the process's instance id. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;
const KEY_PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const DEFAULT_LEASE_MS = 3000;
/** A lease spans at least this many ticks: a node renews once per tick and must get at least one more try in. */
export const MIN_LEASE_TICKS = 2;
const MAX_LEASE_MS = 3_600_000;

export interface RedisHost { readonly host: string; readonly port: number }

/** Where the cluster's state lives, as ioredis needs to know it. */
export type RedisTarget =
  /** One server: the URL goes to ioredis as it is (redis:// or rediss://, db and options in it). */
  | { readonly kind: 'standalone'; readonly url: string }
  /** Sentinels that name the master `name` (redis+sentinel:// or rediss+sentinel://). */
  | { readonly kind: 'sentinel'; readonly hosts: readonly RedisHost[]; readonly name: string; readonly db: number;
      readonly username?: string; readonly password?: string; readonly tls: boolean }
  /** A Redis Cluster's seed nodes (redis+cluster:// or rediss+cluster://). */
  | { readonly kind: 'cluster'; readonly hosts: readonly RedisHost[];
      readonly username?: string; readonly password?: string; readonly tls: boolean };

export const REDIS_URL_FORMS = 'redis://[user:password@]host[:port][/db], rediss://..., '
  + 'redis+sentinel://[user:password@]host[:port][,host[:port]...]/master_name[/db] or '
  + 'redis+cluster://[user:password@]host[:port][,host[:port]...] (rediss+... for TLS)';

const MULTI_HOST = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)(?:\/([^/?#]*))?(?:\/(\d+))?$/;

/** The target a cluster.redis string names, or a reason it names none. */
export function parseRedisUrl(url: string): RedisTarget | { readonly error: string } {
  if (/^rediss?:\/\//.test(url)) {
    let u: URL;
    try { u = new URL(url); } catch { return { error: 'not a valid URL' }; }
    if (u.hostname === '') return { error: 'no host' };
    if (u.pathname.length > 1 && !/^\/\d+$/.test(u.pathname)) return { error: `the path must be a database number, found ${u.pathname}` };
    return { kind: 'standalone', url };
  }
  const m = MULTI_HOST.exec(url);
  if (m === null) return { error: 'an unknown scheme or form' };
  const [, scheme, kind, user, pass, hostList, name, db] = m;
  const defaultPort = kind === 'sentinel' ? 26379 : 6379;
  const hosts: RedisHost[] = [];
  for (const item of hostList.split(',')) {
    const h = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(item);
    const port = h?.[2] === undefined ? defaultPort : Number(h[2]);
    if (h === null || port < 1 || port > 65535) return { error: `bad host ${JSON.stringify(item)}` };
    hosts.push({ host: h[1].replace(/^\[|\]$/g, ''), port });
  }
  const auth = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass ? { password: decodeURIComponent(pass) } : {}),
  };
  const tls = scheme === 'rediss';
  if (kind === 'cluster') {
    if (name !== undefined && name !== '') return { error: 'a cluster URL takes no path' };
    return { kind: 'cluster', hosts, tls, ...auth };
  }
  if (name === undefined || name === '') return { error: 'no master name (redis+sentinel://hosts/master_name)' };
  return { kind: 'sentinel', hosts, name: decodeURIComponent(name), db: db === undefined ? 0 : Number(db), tls, ...auth };
}

/** The lease default: 3 s, or 3 ticks when ticks are longer than a second. */
export function defaultLeaseMs(tickMs: number): number {
  return Math.max(DEFAULT_LEASE_MS, 3 * tickMs);
}

/**
 * The `cluster` section (null when absent); also checks that no pool is
 * marked `shared` without one, since such a pool would silently stay local.
 */
export function readCluster(
  r: FieldReader, root: JsonObject, tickMs: number | undefined, pools: readonly PoolConfig[],
): ClusterConfig | null {
  if (root.cluster === undefined || root.cluster === null) {
    pools.forEach((p, i) => {
      if (p?.shared === true) r.failWith(joinKey(joinIndex('pools', i), 'shared'), 'false, or a cluster section to share the pool through', 'true');
    });
    return null;
  }
  const c = r.object('cluster', root.cluster, CLUSTER_KEYS);
  if (c === undefined) return null;
  const redis = r.string(c, 'cluster', 'redis');
  if (redis !== undefined) {
    const target = parseRedisUrl(redis);
    if ('error' in target) r.failWith('cluster.redis', REDIS_URL_FORMS, `${JSON.stringify(redacted(redis))} (${target.error})`);
  }
  const nodeId = c.node_id === undefined || c.node_id === null ? null
    : r.matching(c, 'cluster', 'node_id', NODE_ID_PATTERN, 'a node id of 1 to 128 characters from A-Z, a-z, 0-9, "_", ".", ":", "@", "-"');
  const tick = tickMs ?? 1;
  const minLease = Math.max(MIN_LEASE_TICKS * tick, 20);
  const leaseMs = r.number(c, 'cluster', 'lease_ms', {
    integer: true, min: minLease, max: MAX_LEASE_MS,
    expected: `an integer from ${minLease} (${MIN_LEASE_TICKS} x tick_ms, at least 20) to ${MAX_LEASE_MS}`,
  }, defaultLeaseMs(tick));
  return {
    redis, node_id: nodeId, lease_ms: leaseMs, safe_share: readSafeShare(r, c),
    key_prefix: c.key_prefix === undefined ? 'tpsd'
      : r.matching(c, 'cluster', 'key_prefix', KEY_PREFIX_PATTERN, 'a prefix of 1 to 64 characters from A-Z, a-z, 0-9, "_", ".", ":", "-"'),
  } as ClusterConfig;
}

function readSafeShare(r: FieldReader, c: JsonObject): ClusterConfig['safe_share'] {
  const v = c.safe_share;
  if (v === undefined || v === 'even') return 'even';
  if (typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= 1) return v;
  r.fail('cluster.safe_share', '"even" or a fraction of capacity > 0 and <= 1', v);
  return 'even';
}

/** A URL as it may appear in an error or a log: the password replaced. */
export function redacted(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}
