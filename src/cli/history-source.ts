// The recorded history of every pool, for `tpsd train --from-history` and
// `tpsd model eval` (CLI process, main thread; the database opened
// read-only): per pool, its granted and 429'd rates and average latency, and
// per service the demand, in equal buckets over the window; priorities,
// minimums, maximums and the SLO from the daemon's config (keys it no longer
// names get MEDIUM, 0 and the pool's capacity); a tenant service's tiers
// that the config still names and that have rows, with their priority,
// value_per_request and demand. Pure data out: the scenarios
// are built in ../train/history-scenarios.ts.

import { existsSync } from 'node:fs';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigFile } from '../config/load.ts';
import type { ServiceConfig, TpsdConfig } from '../config/types.ts';
import type { Db } from '../storage/db.ts';
import { allKeys, bucketize, rates, readPoints, recordedRange, type KeyInfo } from '../storage/queries.ts';
import type { HistoryPool, HistoryTier } from '../train/history-scenarios.ts';
import type { ParsedArgs } from './args.ts';
import { openHistory, SYSTEM_CONFIG } from './data-source.ts';
import { EXIT } from './terminal.ts';

/** At most this many buckets per pool (a day at one a minute). */
export const MAX_BUCKETS = 1440;

export interface History {
  db: Db;
  config: TpsdConfig;
  pools: HistoryPool[];
  fromMs: number;
  toMs: number;
}

/** The daemon's config: --config, else the system one when present, else the shipped one. */
export function daemonConfig(args: ParsedArgs, verb: string): TpsdConfig | number {
  const file = args.string('config') ?? (existsSync(SYSTEM_CONFIG) ? SYSTEM_CONFIG : DEFAULT_CONFIG_PATH);
  try {
    return loadConfigFile(file, {}, {});
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`tpsd ${verb}: ${err.message}\n`);
    return EXIT.FAILURE;
  }
}

/** The configured tiers of service `key` that have rows, each with its demand over the n buckets from `from`. */
function tierHistory(db: Db, sc: ServiceConfig | undefined, key: string, tierKeys: KeyInfo[], from: number, stepMs: number, n: number): HistoryTier[] {
  const tiers: HistoryTier[] = [];
  for (const t of sc?.tenants?.tiers ?? []) {
    const k = tierKeys.find((x) => x.key === `${key}/~${t.name}`);
    if (k === undefined) continue;
    const demand = bucketize(readPoints(db, k.id, from, from + n * stepMs), from, from + n * stepMs, n).map((p) => rates(p).demand);
    tiers.push({ name: t.name, priority: t.priority, valuePerRequest: t.value_per_request ?? null, demandTps: demand });
  }
  return tiers;
}

function poolHistory(db: Db, config: TpsdConfig, pool: KeyInfo, services: KeyInfo[], since: number, until: number,
  tierKeys: KeyInfo[] = []): HistoryPool | null {
  const poolPoints = readPoints(db, pool.id, since, until);
  if (poolPoints.length === 0) return null;
  const [from, to] = recordedRange(db, poolPoints, since, until);
  const stepS = Math.max(1, Math.ceil((to - from) / 1000 / MAX_BUCKETS));
  const n = Math.max(1, Math.round((to - from) / 1000 / stepS));
  const pc = config.pools.find((p) => p.name === pool.key);
  const capacityTps = pc?.capacity_tps ?? Math.max(1, ...poolPoints.map((p) => rates(p).granted));
  const pr = bucketize(poolPoints, from, from + n * stepS * 1000, n).map(rates);
  return {
    pool: pool.key, capacityTps, sloMs: pc?.upstream.slo_ms ?? null, tickMs: config.tick_ms, stepS,
    grantedTps: pr.map((r) => r.granted), throttledTps: pr.map((r) => r.throttled),
    latencyMs: pr.map((r) => (r.latencyAvgUs > 0 ? r.latencyAvgUs / 1000 : Number.NaN)),
    services: services.map((s) => {
      const sc = pc?.services.find((c) => `${pc.name}/${c.name}` === s.key);
      const demand = bucketize(readPoints(db, s.id, from, from + n * stepS * 1000), from, from + n * stepS * 1000, n).map((p) => rates(p).demand);
      const tiers = tierHistory(db, sc, s.key, tierKeys, from, stepS * 1000, n);
      return { key: s.key, priority: sc?.priority ?? 'MEDIUM', minTps: sc?.min_tps ?? 0, maxTps: sc?.max_tps ?? capacityTps, demandTps: demand,
        ...(tiers.length > 0 ? { tiers } : {}) };
    }),
  };
}

/** Every pool with rows in [since, until): opened database, config and series; or an exit code after a message. */
export function readHistory(args: ParsedArgs, verb: string, since: number, until: number): History | number {
  const config = daemonConfig(args, verb);
  if (typeof config === 'number') return config;
  const db = openHistory(args, verb);
  if (typeof db === 'number') return db;
  const keys = allKeys(db);
  const pools: HistoryPool[] = [];
  for (const pool of keys.filter((k) => k.kind === 'pool')) {
    const inPool = (kind: string) => keys.filter((k) => k.kind === kind && k.pool === pool.key);
    const h = poolHistory(db, config, pool, inPool('service'), since, until, inPool('tier'));
    if (h !== null && h.services.length > 0) pools.push(h);
  }
  if (pools.length === 0) {
    db.close();
    process.stderr.write(`tpsd ${verb}: no pool has telemetry in the window\n`);
    return EXIT.NO_DATA;
  }
  return { db, config, pools, fromMs: since, toMs: until };
}
