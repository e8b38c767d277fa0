// Writes one tick of telemetry (a TickBatch) in one transaction and keeps
// the key ids; registerModel() adds to the model registry.
//
// Threads: TelemetryStore lives on the telemetry writer thread
// (telemetry-worker.ts), the only writer of per-tick rows. A TickBatch is
// plain data with typed arrays, posted there by the main thread with its
// buffers transferred. registerModel() runs on the main thread's connection.

import type { KeyIndex } from '../shm/key-index.ts';
import type { Db } from './db.ts';
import type { Retention, RetentionResult } from './retention.ts';

/** Per-key values of a telemetry row, in this order (ROW_FIELDS per row). */
export const ROW = {
  REQUESTED: 0, GRANTED: 1, DENIED: 2, OK: 3, FAILED: 4, THROTTLED: 5, EXPIRED: 6,
  LATENCY_SUM_US: 7, LATENCY_COUNT: 8, QUEUE: 9, IN_FLIGHT: 10, LIMIT_TPS: 11,
  /** Tokens a dry run (enforce: false) granted that would have been denied (migration 5). */
  WOULD_DENY: 12,
  /** Releases whose latency passed the pool's upstream.slo_ms, of LATENCY_COUNT (migration 6). */
  LATE: 13,
} as const;
export const ROW_FIELDS = 14;

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

/**
 * One pool's decision; the services it carries are rows offset .. offset +
 * services - 1 of decisionValues (which of the pool's services: TickBatch.decisionPositions;
 * the daemon carries those that changed since the pool's previous row, daemon/decision-rows.ts).
 */
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
  /** Per decisionValues row, the service's place in its pool's service list (absent: each decision's rows are its services in order). */
  decisionPositions?: Int32Array;
  /** Tenant rows (daemon/tenant-rows.ts), absent without tenants: each tenant's service bucket and name, ROW_FIELDS values each. */
  tenantCount?: number;
  tenantServices?: Int32Array;
  tenantNames?: string[];
  tenantValues?: Float64Array;
  /** Decisions on single keys made this tick (the surge and abuse defence): limit_audit rows. */
  audits?: AuditRow[];
}

/** A limit_audit row the controller made (control/tenant-guard.ts: a tenant's class, its defensive limit, its lift). */
export interface AuditRow {
  action: string;
  key: string;
  field: string;
  oldValue: string;
  newValue: string;
  actor: string;
  detail: string;
}

/** Tenant key ids kept in memory; past this the cache starts over (ids come from the database again). */
const TENANT_ID_CACHE = 65_536;
/**
 * The cache also starts over this often, so a tenant key's last_ms (set
 * when its id is looked up) is never older than its last row by more.
 */
export const TENANT_ID_REFRESH_MS = 10 * 60_000;
/** Tenant keys deleted per retention pass at most. */
const FORGET_BATCH = 10_000;

/**
 * Why the applied allocation differs from the policy's proposal, stage by
 * stage as the safety layer (control/safety.ts) works: an invalid value,
 * max_tps, the step cap, the min_tps guarantee, the pool's effective capacity.
 */
export function clampsOf(d: DecisionRow, v: Float64Array, keys: readonly string[], positions?: Int32Array): Clamp[] {
  const out: Clamp[] = [];
  for (let i = 0; i < d.services; i++) {
    const o = (d.offset + i) * DEC_FIELDS;
    const key = keys[positions === undefined ? i : positions[d.offset + i]];
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

function servicesOf(d: DecisionRow, v: Float64Array, keys: readonly string[], positions?: Int32Array): ServiceDecision[] {
  const out: ServiceDecision[] = [];
  for (let i = 0; i < d.services; i++) {
    const o = (d.offset + i) * DEC_FIELDS;
    const s: ServiceDecision = { key: keys[positions === undefined ? i : positions[d.offset + i]], before: v[o + DEC.BEFORE], proposed: v[o + DEC.PROPOSED], after: v[o + DEC.AFTER] };
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
  private readonly keys: KeyIndex;
  /** Database id of tenant keys seen lately, by `service bucket/name`. */
  private readonly tenantIds = new Map<string, number>();
  private tenantIdsSinceMs = 0;
  private readonly upsertKey;
  private readonly upsertTenant;
  private readonly forgetTenants;
  private readonly insertTick;
  private readonly insertRow;
  private readonly insertDecision;
  private readonly insertAudit;
  private readonly writeAll: (b: TickBatch) => void;

  constructor(db: Db, keys: KeyIndex) {
    this.db = db;
    this.keyIds = new Int32Array(keys.size);
    this.keys = keys;
    const upsert = this.upsertKey = db.prepare('INSERT INTO keys (key, kind, pool) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, pool = excluded.pool RETURNING id');
    db.transaction(() => {
      for (let b = 0; b < keys.size; b++) {
        const kind = keys.tierOf(b) !== null ? 'tier' : ['pool', 'service', 'endpoint'][keys.table.depth(b)];
        const row = upsert.get(keys.key(b), kind, keys.key(keys.poolOf(b))) as { id: number };
        this.keyIds[b] = row.id;
      }
    })();
    for (let b = 0; b < keys.size; b++) {
      const depth = keys.table.depth(b);
      if (depth === 0) this.services.set(keys.key(b), []);
      else if (depth === 1) this.services.get(keys.key(keys.poolOf(b)))!.push(keys.key(b));
    }
    this.upsertTenant = db.prepare(`INSERT INTO keys (key, kind, pool, last_ms) VALUES (?, 'tenant', ?, ?) ON CONFLICT (key)
      DO UPDATE SET kind = excluded.kind, pool = excluded.pool, last_ms = excluded.last_ms RETURNING id`);
    // A tenant key last written before the raw cutoff has no per-tick row left (retention rolled them up first): gone once it has no roll-up either.
    this.forgetTenants = db.prepare(`DELETE FROM keys WHERE id IN (SELECT id FROM keys k WHERE kind = 'tenant' AND last_ms < ?
      AND NOT EXISTS (SELECT 1 FROM telemetry_1m m WHERE m.key_id = k.id) LIMIT ${FORGET_BATCH})`);
    const last = db.prepare('SELECT max(ts_ms) AS ts FROM ticks').get() as { ts: number | null };
    this.lastTsMs = last.ts ?? 0;
    this.insertTick = db.prepare('INSERT INTO ticks (ts_ms, tick, dt_ms, duration_ms, rows, mode) VALUES (?, ?, ?, ?, ?, ?)');
    this.insertRow = db.prepare(`INSERT INTO telemetry (ts_ms, key_id, tick, dt_ms, requested, granted, denied, ok, failed,
      throttled, expired, latency_sum_us, latency_count, queue, in_flight, limit_tps, would_deny, late) VALUES (${Array(18).fill('?').join(',')})`);
    this.insertDecision = db.prepare(`INSERT INTO decisions (ts_ms, tick, pool, mode, policy, fallback_reason, model,
      capacity_tps, effective_tps, demand_tps, services, clamps, shadow_regret) VALUES (${Array(13).fill('?').join(',')})`);
    this.insertAudit = db.prepare(`INSERT INTO limit_audit (ts_ms, action, key, field, old_value, new_value, actor, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.writeAll = db.transaction((b: TickBatch) => this.writeRows(b));
  }

  /** Writes one tick in one transaction; returns the rows written. */
  writeTick(b: TickBatch): number {
    // Ticks are at least 10 ms apart, but the wall clock may step back: keep ts unique and increasing.
    b.tsMs = Math.max(Math.round(b.tsMs), this.lastTsMs + 1);
    this.writeAll(b);
    this.lastTsMs = b.tsMs;
    return b.count + (b.tenantCount ?? 0) + b.decisions.length + (b.audits?.length ?? 0) + 1;
  }

  /**
   * One retention pass (retention.ts) within `budgetMs`; once it has caught
   * up, the tenant keys with no row left are deleted (counted in `deleted`).
   */
  runRetention(retention: Retention, nowMs: number, budgetMs: number): RetentionResult {
    const r = retention.runPass(nowMs, budgetMs);
    if (!r.done) return r;
    // Rows until last_ms + TENANT_ID_REFRESH_MS, all before the raw cutoff: rolled up by the pass that just finished.
    const forgotten = this.forgetTenants.run(retention.rawCutoff(nowMs) - TENANT_ID_REFRESH_MS).changes;
    if (forgotten > 0) this.tenantIds.clear();
    return { ...r, deleted: r.deleted + forgotten, done: forgotten < FORGET_BATCH };
  }

  /** The database id of tenant `name` of service bucket `service` (kind 'tenant'), made on its first row. */
  private tenantId(service: number, name: string, tsMs: number): number {
    if (this.tenantIds.size >= TENANT_ID_CACHE || tsMs - this.tenantIdsSinceMs >= TENANT_ID_REFRESH_MS) {
      this.tenantIds.clear();
      this.tenantIdsSinceMs = tsMs;
    }
    const cacheKey = `${service}/${name}`;
    let id = this.tenantIds.get(cacheKey);
    if (id === undefined) {
      const keys = this.keys;
      id = (this.upsertTenant.get(`${keys.key(service)}/${name}`, keys.key(keys.poolOf(service)), tsMs) as { id: number }).id;
      this.tenantIds.set(cacheKey, id);
    }
    return id;
  }

  private writeRows(b: TickBatch): void {
    const { tsMs, tick, dtMs } = b;
    const tenants = b.tenantCount ?? 0;
    this.insertTick.run(tsMs, tick, round3(dtMs), round3(b.durationMs), b.count + tenants, b.mode);
    for (let r = 0; r < b.count; r++) this.writeRow(tsMs, this.keyIds[b.buckets[r]], tick, dtMs, b.values, r * ROW_FIELDS);
    for (let r = 0; r < tenants; r++) {
      this.writeRow(tsMs, this.tenantId(b.tenantServices![r], b.tenantNames![r], tsMs), tick, dtMs, b.tenantValues!, r * ROW_FIELDS);
    }
    for (const d of b.decisions) {
      const keys = this.services.get(d.pool) ?? [];
      this.insertDecision.run(tsMs, tick, d.pool, b.mode, d.policy, d.fallbackReason, b.model,
        d.capacityTps, round3(d.effectiveTps), round3(d.demandTps), JSON.stringify(servicesOf(d, b.decisionValues, keys, b.decisionPositions), roundJson),
        JSON.stringify(clampsOf(d, b.decisionValues, keys, b.decisionPositions), roundJson), d.shadowRegret);
    }
    for (const a of b.audits ?? []) this.insertAudit.run(tsMs, a.action, a.key, a.field, a.oldValue, a.newValue, a.actor, a.detail);
  }

  private writeRow(tsMs: number, keyId: number, tick: number, dtMs: number, v: Float64Array, o: number): void {
    this.insertRow.run(tsMs, keyId, tick, dtMs,
      v[o + ROW.REQUESTED], v[o + ROW.GRANTED], v[o + ROW.DENIED], v[o + ROW.OK], v[o + ROW.FAILED], v[o + ROW.THROTTLED], v[o + ROW.EXPIRED],
      v[o + ROW.LATENCY_SUM_US], v[o + ROW.LATENCY_COUNT], v[o + ROW.QUEUE], v[o + ROW.IN_FLIGHT], round3(v[o + ROW.LIMIT_TPS]), v[o + ROW.WOULD_DENY],
      v[o + ROW.LATE]);
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
