// The recorded history of every pool, for `tpsd train --from-history` and
// `tpsd model eval` (CLI process, main thread; the database opened
// read-only): per pool, its granted and 429'd rates and average latency, and
// per service the demand, in equal buckets over the window; priorities,
// minimums, maximums and the SLO from the daemon's config (keys it no longer
// names get MEDIUM, 0 and the pool's capacity). Pure data out: the scenarios
// are built in ../train/history-scenarios.ts.

import { existsSync } from 'node:fs';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigFile } from '../config/load.ts';
import type { TpsdConfig } from '../config/types.ts';
import type { Db } from '../storage/db.ts';
import { allKeys, bucketize, rates, readPoints, recordedRange, type KeyInfo } from '../storage/queries.ts';
import type { HistoryPool } from '../train/history-scenarios.ts';
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

function poolHistory(db: Db, config: TpsdConfig, pool: KeyInfo, services: KeyInfo[], since: number, until: number): HistoryPool | null {
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
      return { key: s.key, priority: sc?.priority ?? 'MEDIUM', minTps: sc?.min_tps ?? 0, maxTps: sc?.max_tps ?? capacityTps, demandTps: demand };
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
    const h = poolHistory(db, config, pool, keys.filter((k) => k.kind === 'service' && k.pool === pool.key), since, until);
    if (h !== null && h.services.length > 0) pools.push(h);
  }
  if (pools.length === 0) {
    db.close();
    process.stderr.write(`tpsd ${verb}: no pool has telemetry in the window\n`);
    return EXIT.NO_DATA;
  }
  return { db, config, pools, fromMs: since, toMs: until };
}
