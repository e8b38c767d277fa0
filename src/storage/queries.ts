// Read side of the telemetry database for the CLI (history, decisions,
// recommend): a key's series from per-tick rows and 1-minute roll-ups,
// bucketed or row by row, and the per-tick decisions.
//
// Threads: any process that opened the database read-only (db.ts); never
// the daemon's main thread.

import type { Db } from './db.ts';
import { MINUTE_MS } from './retention.ts';

export interface KeyInfo { id: number; key: string; kind: string; pool: string }

export function findKey(db: Db, key: string): KeyInfo | undefined {
  return db.prepare('SELECT id, key, kind, pool FROM keys WHERE key = ?').get(key) as KeyInfo | undefined;
}

export function allKeys(db: Db): KeyInfo[] {
  return db.prepare('SELECT id, key, kind, pool FROM keys ORDER BY id').all() as KeyInfo[];
}

/** One point of a series: counts over (tsMs - spanMs, tsMs]. */
export interface Point {
  tsMs: number;
  spanMs: number;
  /** 'raw': per-tick rows, '1m': roll-ups, 'mixed' or 'empty' for buckets. */
  source: 'raw' | '1m' | 'mixed' | 'empty';
  samples: number;
  /** Time the point's rows cover: its span for a per-tick row, the sum of its ticks for a roll-up (less when the key was idle part of the minute). */
  coveredMs: number;
  requested: number;
  granted: number;
  denied: number;
  ok: number;
  failed: number;
  throttled: number;
  latencySumUs: number;
  latencyCount: number;
  queueMax: number;
  inFlightMax: number;
  /** Average limit in force (NaN when unknown). */
  limitTps: number;
  /** Tokens a dry run (enforce: false) granted that would have been denied. */
  wouldDeny: number;
  /** Releases whose latency passed the pool's upstream.slo_ms, of latencyCount (0 in rows written before migration 6). */
  late: number;
}

// Per-tick rows are stored in time order: walk the ticks of the window and look
// each up by (ts_ms, key_id) (CROSS JOIN keeps ticks as the outer loop).
const RAW = `SELECT t.ts_ms AS t, t.dt_ms AS span, t.dt_ms AS covered, 1 AS samples, requested, granted, denied, ok, failed, throttled,
  latency_sum_us AS lsum, latency_count AS lcount, queue AS qmax, in_flight AS fmax, limit_tps AS lsum_limit, would_deny AS wd, late
  FROM ticks k CROSS JOIN telemetry t ON t.ts_ms = k.ts_ms AND t.key_id = ?
  WHERE k.ts_ms >= ? AND k.ts_ms < ? ORDER BY k.ts_ms`;
const ROLLUP = `SELECT minute_ms + ${MINUTE_MS} AS t, ${MINUTE_MS} AS span, dt_ms AS covered, samples, requested, granted, denied, ok, failed, throttled,
  latency_sum_us AS lsum, latency_count AS lcount, queue_max AS qmax, in_flight_max AS fmax, limit_sum AS lsum_limit, would_deny AS wd, late
  FROM telemetry_1m WHERE key_id = ? AND minute_ms >= ? AND minute_ms < ? ORDER BY minute_ms`;

interface Row { t: number; span: number; covered: number; samples: number; requested: number; granted: number; denied: number; ok: number; failed: number;
  throttled: number; lsum: number; lcount: number; qmax: number; fmax: number; lsum_limit: number; wd: number; late: number }

/** Rows to read (ticks in the window, roll-ups of the key): the size for progress. */
export function countRows(db: Db, keyId: number, sinceMs: number, untilMs: number): number {
  const a = db.prepare('SELECT count(*) AS n FROM ticks WHERE ts_ms >= ? AND ts_ms < ?').get(sinceMs, untilMs) as { n: number };
  const b = db.prepare('SELECT count(*) AS n FROM telemetry_1m WHERE key_id = ? AND minute_ms >= ? AND minute_ms < ?').get(keyId, sinceMs - MINUTE_MS, untilMs) as { n: number };
  return a.n + b.n;
}

function point(r: Row, source: Point['source']): Point {
  return {
    tsMs: r.t, spanMs: r.span, source, samples: r.samples, coveredMs: r.covered, requested: r.requested, granted: r.granted, denied: r.denied,
    ok: r.ok, failed: r.failed, throttled: r.throttled, latencySumUs: r.lsum, latencyCount: r.lcount,
    queueMax: r.qmax, inFlightMax: r.fmax, limitTps: r.lsum_limit / r.samples, wouldDeny: r.wd, late: r.late,
  };
}

/** Every stored row of a key in [sinceMs, untilMs), roll-ups and per-tick rows, oldest first. */
export function readPoints(db: Db, keyId: number, sinceMs: number, untilMs: number, onRow?: (n: number) => void): Point[] {
  const out: Point[] = [];
  let n = 0;
  for (const r of db.prepare(ROLLUP).iterate(keyId, sinceMs - MINUTE_MS, untilMs) as IterableIterator<Row>) {
    if (r.t > sinceMs) out.push(point(r, '1m'));
    if (++n % 5000 === 0) onRow?.(n);
  }
  for (const r of db.prepare(RAW).iterate(keyId, sinceMs, untilMs) as IterableIterator<Row>) {
    out.push(point(r, 'raw'));
    if (++n % 5000 === 0) onRow?.(n);
  }
  onRow?.(n);
  return out.sort((a, b) => a.tsMs - b.tsMs);
}

/**
 * Points summed into `buckets` equal buckets over [sinceMs, untilMs). Keys
 * that were idle have no rows: an empty bucket is zero traffic, its limit the
 * previous bucket's.
 */
export function bucketize(points: readonly Point[], sinceMs: number, untilMs: number, buckets: number): Point[] {
  const width = (untilMs - sinceMs) / buckets;
  const out: Point[] = Array.from({ length: buckets }, (_, i) => ({
    tsMs: Math.round(sinceMs + (i + 1) * width), spanMs: width, source: 'empty', samples: 0, coveredMs: 0, requested: 0, granted: 0, denied: 0,
    ok: 0, failed: 0, throttled: 0, latencySumUs: 0, latencyCount: 0, queueMax: 0, inFlightMax: 0, limitTps: 0, wouldDeny: 0, late: 0,
  }));
  for (const p of points) {
    const i = Math.min(buckets - 1, Math.max(0, Math.floor((p.tsMs - 1 - sinceMs) / width)));
    const o = out[i];
    o.source = o.source === 'empty' || o.source === p.source ? p.source : 'mixed';
    o.requested += p.requested; o.granted += p.granted; o.denied += p.denied; o.ok += p.ok; o.failed += p.failed;
    o.throttled += p.throttled; o.latencySumUs += p.latencySumUs; o.latencyCount += p.latencyCount; o.wouldDeny += p.wouldDeny;
    o.late += p.late;
    o.queueMax = Math.max(o.queueMax, p.queueMax); o.inFlightMax = Math.max(o.inFlightMax, p.inFlightMax);
    o.limitTps += p.limitTps * p.samples;
    o.samples += p.samples;
    o.coveredMs += p.coveredMs;
  }
  let last = Number.NaN;
  for (const o of out) {
    o.limitTps = o.samples > 0 ? o.limitTps / o.samples : last;
    last = o.limitTps;
  }
  return out;
}

/**
 * The part of [sinceMs, untilMs) the daemon was recording: from the first
 * stored row or tick to the last. Idle keys write no rows, so the ticks table
 * tells "no traffic" apart from "not running" at the ends of the window.
 */
export function recordedRange(db: Db, points: readonly Point[], sinceMs: number, untilMs: number): [number, number] {
  const t = db.prepare('SELECT min(ts_ms - dt_ms) AS lo, max(ts_ms) AS hi FROM ticks WHERE ts_ms >= ? AND ts_ms < ?').get(sinceMs, untilMs) as
    { lo: number | null; hi: number | null };
  let lo = t.lo ?? Infinity, hi = t.hi ?? -Infinity;
  if (points.length > 0) {
    lo = Math.min(lo, points[0].tsMs - points[0].spanMs);
    hi = Math.max(hi, points[points.length - 1].tsMs);
  }
  if (!(lo < hi)) return [sinceMs, untilMs];
  return [Math.max(sinceMs, Math.floor(lo)), Math.min(untilMs, Math.ceil(hi) + 1)];
}

/** Per-second rates of a point; lateShare is late / latencyCount, NaN where no release reported a latency. */
export function rates(p: Point): {
  demand: number; granted: number; denied: number; throttled: number; failed: number; latencyAvgUs: number; wouldDeny: number; lateShare: number;
} {
  const s = p.spanMs / 1000;
  return {
    demand: p.requested / s, granted: p.granted / s, denied: p.denied / s, throttled: p.throttled / s, failed: p.failed / s,
    wouldDeny: p.wouldDeny / s,
    latencyAvgUs: p.latencyCount > 0 ? p.latencySumUs / p.latencyCount : 0,
    lateShare: p.latencyCount > 0 ? p.late / p.latencyCount : Number.NaN,
  };
}

export interface DecisionRecord {
  tsMs: number;
  tick: number;
  pool: string;
  mode: string;
  policy: string;
  fallbackReason: string | null;
  model: string;
  capacityTps: number;
  effectiveTps: number;
  demandTps: number;
  services: { key: string; before: number; proposed: number; after: number; shadow?: number }[];
  clamps: { key: string; from: number; to: number; why: string }[];
  shadowRegret: number | null;
}

/** Decisions in [sinceMs, untilMs), newest `limit` of them (0: all), oldest first. */
export function readDecisions(db: Db, sinceMs: number, untilMs: number, pool: string | null, limit: number): DecisionRecord[] {
  const rows = db.prepare(`SELECT * FROM decisions WHERE ts_ms >= ? AND ts_ms < ? ${pool === null ? '' : 'AND pool = ?'}
    ORDER BY ts_ms DESC, id DESC ${limit > 0 ? `LIMIT ${Math.floor(limit)}` : ''}`)
    .all(...(pool === null ? [sinceMs, untilMs] : [sinceMs, untilMs, pool])) as Record<string, unknown>[];
  return rows.reverse().map((r) => ({
    tsMs: r.ts_ms as number, tick: r.tick as number, pool: r.pool as string, mode: r.mode as string, policy: r.policy as string,
    fallbackReason: r.fallback_reason as string | null, model: r.model as string, capacityTps: r.capacity_tps as number,
    effectiveTps: r.effective_tps as number, demandTps: r.demand_tps as number,
    services: JSON.parse(r.services as string), clamps: JSON.parse(r.clamps as string), shadowRegret: r.shadow_regret as number | null,
  }));
}
