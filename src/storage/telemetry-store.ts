// Writes one tick of telemetry (a TickBatch) in one transaction and keeps
// the key ids; registerModel() adds to the model registry.
//
// Threads: TelemetryStore lives on the telemetry writer thread
// (telemetry-worker.ts), the only writer of per-tick rows. A TickBatch is
// plain data with typed arrays, posted there by the main thread with its
// buffers transferred. registerModel() runs on the main thread's connection.

import type { KeyIndex } from '../shm/key-index.ts';
import type { Db } from './db.ts';

/** Per-key values of a telemetry row, in this order (ROW_FIELDS per row). */
export const ROW = {
  REQUESTED: 0, GRANTED: 1, DENIED: 2, OK: 3, FAILED: 4, THROTTLED: 5, EXPIRED: 6,
  LATENCY_SUM_US: 7, LATENCY_COUNT: 8, QUEUE: 9, IN_FLIGHT: 10, LIMIT_TPS: 11,
} as const;
export const ROW_FIELDS = 12;

export interface ServiceDecision {
  key: string;
  /** The limit in force before the tick, what the policy proposed, what was applied. */
  before: number;
  proposed: number;
  after: number;
  /** Shadow mode: what PPO proposed (not applied). */
  shadow?: number;
}

export interface Clamp {
  key: string;
  from: number;
  to: number;
  /** max_tps, step_cap, min_tps (guarantee), capacity (scaled to the effective capacity), invalid. */
  why: string;
}

/** Per service of a decision, DEC_FIELDS values in TickBatch.decisionValues, in this order. */
export const DEC = { BEFORE: 0, PROPOSED: 1, AFTER: 2, SHADOW: 3, MAX_TPS: 4, GUARANTEE: 5 } as const;
export const DEC_FIELDS = 6;

/** One pool's decision; its services' values are rows offset .. offset + services - 1 of decisionValues. */
export interface DecisionRow {
  pool: string;
  policy: string;
  fallbackReason: string | null;
  capacityTps: number;
  effectiveTps: number;
  demandTps: number;
  stepCap: number;
  stepFloorTps: number;
  /** Shadow mode: this tick's regret (PPO's last proposal vs what was applied), else null. */
  shadowRegret: number | null;
  offset: number;
  services: number;
}

export interface TickBatch {
  tsMs: number;
  tick: number;
  dtMs: number;
  /** How long the controller's tick took. */
  durationMs: number;
  mode: string;
  model: string;
  /** Rows: bucket indices, and ROW_FIELDS values per row. */
  count: number;
  buckets: Int32Array;
  values: Float64Array;
  decisions: DecisionRow[];
  /** DEC_FIELDS per service of every decision (NaN shadow: none). */
  decisionValues: Float64Array;
}

/**
 * Why the applied allocation differs from the policy's proposal, stage by
 * stage as the safety layer (control/safety.ts) works: an invalid value,
 * max_tps, the step cap, the min_tps guarantee, the pool's effective capacity.
 */
export function clampsOf(d: DecisionRow, v: Float64Array, keys: readonly string[]): Clamp[] {
  const out: Clamp[] = [];
  for (let i = 0; i < d.services; i++) {
    const o = (d.offset + i) * DEC_FIELDS;
    const key = keys[i];
    const step = (why: string, from: number, to: number) => {
      if (Math.abs(from - to) > 1e-6 * Math.max(1, Math.abs(from))) out.push({ key, from, to, why });
      return to;
    };
    let x = v[o + DEC.PROPOSED];
    if (!Number.isFinite(x) || x < 0) x = step('invalid', Number.isFinite(x) ? x : 0, 0);
    if (x > v[o + DEC.MAX_TPS]) x = step('max_tps', x, v[o + DEC.MAX_TPS]);
    const before = v[o + DEC.BEFORE];
    const lim = Math.max((Number.isFinite(before) && before > 0 ? before : 0) * d.stepCap, d.stepFloorTps);
    if (x > lim) x = step('step_cap', x, lim);
    if (x < v[o + DEC.GUARANTEE]) x = step('min_tps', x, v[o + DEC.GUARANTEE]);
    if (v[o + DEC.AFTER] < x) step('capacity', x, v[o + DEC.AFTER]);
  }
  return out;
}

function servicesOf(d: DecisionRow, v: Float64Array, keys: readonly string[]): ServiceDecision[] {
  const out: ServiceDecision[] = [];
  for (let i = 0; i < d.services; i++) {
    const o = (d.offset + i) * DEC_FIELDS;
    const s: ServiceDecision = { key: keys[i], before: v[o + DEC.BEFORE], proposed: v[o + DEC.PROPOSED], after: v[o + DEC.AFTER] };
    if (!Number.isNaN(v[o + DEC.SHADOW])) s.shadow = v[o + DEC.SHADOW];
    out.push(s);
  }
  return out;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class TelemetryStore {
  readonly db: Db;
  /** Database id of each bucket's key. */
  readonly keyIds: Int32Array;
  /** Service keys of each pool, in config order (the order of a decision's values). */
  private readonly services = new Map<string, string[]>();
  private lastTsMs = 0;
  private readonly insertTick;
  private readonly insertRow;
  private readonly insertDecision;
  private readonly writeAll: (b: TickBatch) => void;

  constructor(db: Db, keys: KeyIndex) {
    this.db = db;
    this.keyIds = new Int32Array(keys.size);
    const upsert = db.prepare('INSERT INTO keys (key, kind, pool) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, pool = excluded.pool RETURNING id');
    db.transaction(() => {
      for (let b = 0; b < keys.size; b++) {
        const row = upsert.get(keys.key(b), ['pool', 'service', 'endpoint'][keys.table.depth(b)], keys.key(keys.poolOf(b))) as { id: number };
        this.keyIds[b] = row.id;
      }
    })();
    for (let b = 0; b < keys.size; b++) {
      const depth = keys.table.depth(b);
      if (depth === 0) this.services.set(keys.key(b), []);
      else if (depth === 1) this.services.get(keys.key(keys.poolOf(b)))!.push(keys.key(b));
    }
    const last = db.prepare('SELECT max(ts_ms) AS ts FROM ticks').get() as { ts: number | null };
    this.lastTsMs = last.ts ?? 0;
    this.insertTick = db.prepare('INSERT INTO ticks (ts_ms, tick, dt_ms, duration_ms, rows, mode) VALUES (?, ?, ?, ?, ?, ?)');
    this.insertRow = db.prepare(`INSERT INTO telemetry (ts_ms, key_id, tick, dt_ms, requested, granted, denied, ok, failed,
      throttled, expired, latency_sum_us, latency_count, queue, in_flight, limit_tps) VALUES (${Array(16).fill('?').join(',')})`);
    this.insertDecision = db.prepare(`INSERT INTO decisions (ts_ms, tick, pool, mode, policy, fallback_reason, model,
      capacity_tps, effective_tps, demand_tps, services, clamps, shadow_regret) VALUES (${Array(13).fill('?').join(',')})`);
    this.writeAll = db.transaction((b: TickBatch) => this.writeRows(b));
  }

  /** Writes one tick in one transaction; returns the rows written. */
  writeTick(b: TickBatch): number {
    // Ticks are at least 10 ms apart, but the wall clock may step back: keep ts unique and increasing.
    b.tsMs = Math.max(Math.round(b.tsMs), this.lastTsMs + 1);
    this.writeAll(b);
    this.lastTsMs = b.tsMs;
    return b.count + b.decisions.length + 1;
  }

  private writeRows(b: TickBatch): void {
    const { tsMs, tick, dtMs, values } = b;
    this.insertTick.run(tsMs, tick, round3(dtMs), round3(b.durationMs), b.count, b.mode);
    const ins = this.insertRow;
    for (let r = 0; r < b.count; r++) {
      const o = r * ROW_FIELDS;
      ins.run(tsMs, this.keyIds[b.buckets[r]], tick, dtMs,
        values[o], values[o + 1], values[o + 2], values[o + 3], values[o + 4], values[o + 5], values[o + 6],
        values[o + 7], values[o + 8], values[o + 9], values[o + 10], round3(values[o + 11]));
    }
    for (const d of b.decisions) {
      const keys = this.services.get(d.pool) ?? [];
      this.insertDecision.run(tsMs, tick, d.pool, b.mode, d.policy, d.fallbackReason, b.model,
        d.capacityTps, round3(d.effectiveTps), round3(d.demandTps), JSON.stringify(servicesOf(d, b.decisionValues, keys), roundJson),
        JSON.stringify(clampsOf(d, b.decisionValues, keys), roundJson), d.shadowRegret);
    }
  }

}

/** Records that a model was loaded (the model registry). */
export function registerModel(db: Db, version: string, path: string, sha256: string | null, bytes: number | null, nowMs = Date.now()): void {
  db.prepare(`INSERT INTO models (version, path, sha256, bytes, first_seen_ms, last_loaded_ms, loads)
    VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (version, path) DO UPDATE SET
    last_loaded_ms = excluded.last_loaded_ms, loads = loads + 1, sha256 = excluded.sha256, bytes = excluded.bytes`)
    .run(version, path, sha256, bytes, nowMs, nowMs);
}

function roundJson(_key: string, value: unknown): unknown {
  return typeof value === 'number' ? round3(value) : value;
}
