// Turns each controller tick into telemetry: per key the tick's counter
// deltas, gauges and the limit that was in force (ROW fields), per pool the
// controller's decision record as it made it (control/decision.ts: policy,
// fallback, allocation before / proposed / after, guarantees, shadow regret;
// the writer thread derives the safety clamps and why), with only the
// services whose figures changed since the pool's previous row
// (decision-rows.ts). Hands the batch to the telemetry writer thread
// (telemetry-writer.ts), which writes it in one transaction, and keeps the
// figures the I/O threads show on /metrics.
//
// Only keys that moved are looked at: those the tick visited (touched by an
// I/O thread this tick or the last, control/touched-keys.ts), those whose
// last row showed traffic, a queue or leases, and the keys of the pools the
// tick evaluated (their limits may have changed); every other key is idle
// with the limit of its last row, and writes nothing. A key that goes idle
// writes one row of zeros. Only evaluated pools write a decision row: a
// sleeping pool decided nothing (control/pool-rest.ts). Tiers are keys like
// any other; of the tenants, only the busiest of each service this tick get
// rows (tenant-rows.ts), so a tick's rows are bounded by the config.
//
// Threads: main thread only, right after Controller.tick() resolves, so the
// controller's public fields (deltas, last, evaluated, touched, table) hold
// that tick's values. The SQLite work is on the writer thread. Nothing here runs on the I/O threads' hot
// path. A failed or dropped write is logged and counted; the daemon keeps
// limiting.

import type { TpsdConfig } from '../config/types.ts';
import type { Controller } from '../control/controller.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import {
  C_DENIED_INDEX, C_EXPIRED_INDEX, C_GRANTED_INDEX, C_GRANTS_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX,
  C_RELEASED_FAILED_INDEX, C_RELEASED_LATE_INDEX, C_RELEASED_OK_INDEX, C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX, C_WOULD_DENY_INDEX,
  STAT_EFFECTIVE_CAPACITY_INDEX, statsBase, type ShmViews,
} from '../shm/layout.ts';
import { DETECTOR_ACTOR } from '../storage/overrides.ts';
import { ROW, ROW_FIELDS, type AuditRow } from '../storage/telemetry-store.ts';
import { DecisionRows } from './decision-rows.ts';
import { TENANT_CLASSES } from '../control/surge-detector.ts';
import type { TenantGuard } from '../control/tenant-guard.ts';
import type { DaemonStats, TenantGuardStats } from '../io/messages.ts';
import type { TelemetryWriter } from '../storage/telemetry-writer.ts';
import { NO_TENANT_ROWS, type TenantRows } from './tenant-rows.ts';
import { MarkSet } from '../shm/mark-set.ts';

/** The defence's counts for /metrics: per tier and class, per service its class (labels bounded by the config). */
function guardStats(g: TenantGuard): TenantGuardStats {
  return {
    classes: [...TENANT_CLASSES], droppedEvents: g.droppedEvents,
    tiers: g.tiers.map((t) => ({ tier: t.tier, changes: [...t.changes], current: [...t.current], defended: t.defended, applied: t.applied, lifted: t.lifted })),
    services: g.services.map((s) => ({ service: s.key, cls: s.cls })),
  };
}

/** The row field each per-tick counter delta goes to. */
const DELTA_FIELDS: readonly (readonly [row: number, counter: number])[] = [
  [ROW.REQUESTED, C_REQUESTED_INDEX], [ROW.GRANTED, C_GRANTED_INDEX], [ROW.DENIED, C_DENIED_INDEX],
  [ROW.OK, C_RELEASED_OK_INDEX], [ROW.FAILED, C_RELEASED_FAILED_INDEX], [ROW.THROTTLED, C_RELEASED_THROTTLED_INDEX],
  [ROW.EXPIRED, C_EXPIRED_INDEX], [ROW.LATENCY_SUM_US, C_LATENCY_SUM_US_INDEX], [ROW.LATENCY_COUNT, C_LATENCY_COUNT_INDEX],
  [ROW.WOULD_DENY, C_WOULD_DENY_INDEX], [ROW.LATE, C_RELEASED_LATE_INDEX],
];
/** DELTA_FIELDS as two flat arrays (row() runs for every key that moved, a few thousand a tick: no iterator, no destructuring). */
const DELTA_ROWS = Int32Array.from(DELTA_FIELDS, ([row]) => row);
const DELTA_COUNTERS = Int32Array.from(DELTA_FIELDS, ([, counter]) => counter);

export class TickRecorder {
  private readonly n: number;
  /** The limit in force during the tick now running, per key (pools: the effective capacity). */
  private readonly inForce: Float64Array;
  private readonly lastWritten: Float64Array;
  private readonly buckets: Int32Array;
  private readonly values: Float64Array;
  private readonly poolBuckets: Int32Array;
  /** Keys whose last row showed traffic, a queue or leases: looked at again next tick. */
  private held: number[] = [];
  private readonly wroteActive: Uint8Array;
  /** The pools whose allocation the last tick wrote (Controller.wrote): their new limits are this tick's. */
  private wrotePrevious: readonly number[] = [];
  private readonly seen: MarkSet;
  /** Each evaluated pool's decision row, with the services that changed (decision-rows.ts). */
  private readonly decisionRows: DecisionRows;
  private tickStartedAt = 0;
  private prevStartedAt = 0;
  ticks = 0;
  tickOverruns = 0;
  tickLastMs = 0;
  tickSumMs = 0;
  /** Main-thread time spent collecting and posting telemetry, last tick. */
  collectLastMs = 0;

  constructor(
    private readonly controller: Controller,
    private readonly views: ShmViews,
    private readonly keys: KeyIndex,
    private readonly config: TpsdConfig,
    private readonly writer: TelemetryWriter | null,
    /** With tenants: the busiest tenants' rows (tenant-rows.ts). */
    private readonly tenantRows: TenantRows | null = null,
  ) {
    this.n = keys.size;
    this.inForce = new Float64Array(this.n);
    this.lastWritten = new Float64Array(this.n).fill(Number.NaN);
    this.buckets = new Int32Array(this.n);
    this.values = new Float64Array(this.n * ROW_FIELDS);
    this.wroteActive = new Uint8Array(this.n);
    this.seen = new MarkSet(this.n);
    this.decisionRows = new DecisionRows(controller.pools.length);
    this.poolBuckets = Int32Array.from(keys.specs.filter((s) => s.depth === 0), (s) => s.index);
    for (let b = 0; b < this.n; b++) this.inForce[b] = this.currentLimit(b);
    this.prevStartedAt = performance.now();
  }

  /** Call right before Controller.tick(): notes the pools' capacity in force during the tick that ends now (a live change applies at once). */
  beforeTick(): void {
    this.tickStartedAt = performance.now();
    for (const p of this.poolBuckets) this.inForce[p] = this.currentLimit(p);
  }

  /** Key b's limit as shared memory holds it now: a pool's effective capacity, another key's rate. */
  private currentLimit(b: number): number {
    return this.keys.specs[b].depth === 0 ? this.views.stats[statsBase(b) + STAT_EFFECTIVE_CAPACITY_INDEX] : this.controller.table.rateTps(b);
  }

  /** Call after Controller.tick() resolved with a new tick; hands its rows to the writer thread. */
  afterTick(nowMs = Date.now()): void {
    const t0 = performance.now();
    const durationMs = t0 - this.tickStartedAt;
    const dtMs = this.tickStartedAt - this.prevStartedAt;
    this.prevStartedAt = this.tickStartedAt;
    this.ticks++;
    this.tickLastMs = durationMs;
    this.tickSumMs += durationMs;
    if (this.writer === null) return;
    const { decisions, values: decisionValues, positions: decisionPositions } = this.decisionRows.collect(this.controller);
    const count = this.collect();
    const buckets = this.buckets.slice(0, count);
    const values = this.values.slice(0, count * ROW_FIELDS);
    const tenants = this.tenantRows?.collect() ?? NO_TENANT_ROWS;
    const posted = this.writer.write({
      tsMs: nowMs, tick: this.controller.ticks, dtMs, durationMs, mode: this.config.policy.mode,
      model: this.controller.modelVersion, count, buckets, values, decisions, decisionValues, decisionPositions,
      tenantCount: tenants.count, tenantServices: tenants.services, tenantNames: tenants.names, tenantValues: tenants.values,
      audits: this.guardAudits(),
    });
    // A dropped tick leaves lastWritten as it was, and its rows' keys are looked at again next tick.
    if (posted) for (let r = 0; r < count; r++) this.lastWritten[this.buckets[r]] = this.values[r * ROW_FIELDS + ROW.LIMIT_TPS];
    else {
      for (let r = 0; r < count; r++) this.held.push(this.buckets[r]);
      this.decisionRows.dropped();
    }
    this.collectLastMs = performance.now() - t0;
  }

  /** Rows of this tick into buckets/values: the keys that moved (see the top of the file); then the limits in force from now on. */
  private collect(): number {
    this.seen.clear();
    const held = this.held;
    this.held = [];
    let r = 0;
    const visit = (b: number): void => {
      if (this.seen.add(b) && this.row(b, r)) r++;
    };
    const { touched, evaluated, wrote, pools } = this.controller;
    for (let k = 0; k < touched.count; k++) visit(touched.list[k]);
    for (const b of held) visit(b);
    // Other keys write a row only where the limit in force moved: an evaluated pool's own bucket (the effective
    // capacity); services and endpoints only in the pools whose allocation was written, by the last tick (the
    // limit in force during this one: the pool may sleep now) or by this one (a live change at the tick's end).
    for (const k of evaluated) if (this.inForce[pools[k].spec.index] !== this.lastWritten[pools[k].spec.index]) visit(pools[k].spec.index);
    for (const list of [this.wrotePrevious, wrote]) {
      for (const k of list) for (const b of pools[k].buckets) if (this.inForce[b] !== this.lastWritten[b]) visit(b);
    }
    for (const k of evaluated) this.inForce[pools[k].spec.index] = this.currentLimit(pools[k].spec.index);
    for (const k of wrote) for (const b of pools[k].buckets) this.inForce[b] = this.currentLimit(b);
    this.wrotePrevious = wrote;
    return r;
  }

  /** Key b's row at row index r; false when it writes none (idle, its limit unchanged, and its last row idle too). */
  private row(b: number, r: number): boolean {
    const d = this.controller.deltas;
    const t = this.controller.table;
    const o = r * ROW_FIELDS;
    let active = false;
    for (let k = 0; k < DELTA_ROWS.length; k++) {
      const v = d.delta(b, DELTA_COUNTERS[k]);
      this.values[o + DELTA_ROWS[k]] = v;
      if (v !== 0) active = true;
    }
    const queue = t.queue(b);
    const inFlight = t.concurrency(b) > 0 ? t.inFlight(b) : Math.max(0, d.total(b, C_GRANTS_INDEX) - d.total(b, C_RELEASED_OK_INDEX)
      - d.total(b, C_RELEASED_FAILED_INDEX) - d.total(b, C_RELEASED_THROTTLED_INDEX) - d.total(b, C_EXPIRED_INDEX));
    const limit = this.inForce[b];
    const moving = active || queue !== 0 || inFlight !== 0;
    const wentIdle = this.wroteActive[b] === 1;
    this.wroteActive[b] = moving ? 1 : 0;
    if (moving) this.held.push(b);
    if (!moving && !wentIdle && limit === this.lastWritten[b]) return false;
    this.values[o + ROW.QUEUE] = queue;
    this.values[o + ROW.IN_FLIGHT] = inFlight;
    this.values[o + ROW.LIMIT_TPS] = limit;
    this.buckets[r] = b;
    return true;
  }

  /** The surge and abuse defence's events of this tick (control/tenant-guard.ts), as limit_audit rows. */
  private guardAudits(): AuditRow[] | undefined {
    const events = this.controller.guard?.events;
    if (events === undefined || events.length === 0) return undefined;
    return events.map((e) => ({ action: e.action, key: e.key, field: e.field, oldValue: JSON.stringify(e.from), newValue: JSON.stringify(e.to),
      actor: DETECTOR_ACTOR, detail: e.detail }));
  }

  /** The figures for /metrics. */
  stats(overrides: number): DaemonStats {
    return {
      ticks: this.ticks, tickOverruns: this.tickOverruns, tickLastMs: this.tickLastMs, tickSumMs: this.tickSumMs,
      // Every kind of control/decision.ts FALLBACK_KINDS, counted by the runner; /metrics renders them as they come.
      fallbacks: { ...this.controller.runner.fallbacksByKind }, shadowRegret: this.controller.shadowRegret, model: this.controller.modelVersion, overrides,
      drift: this.controller.drift.status(),
      ...(this.controller.guard === null ? {} : { tenantGuard: guardStats(this.controller.guard) }),
      sqlite: { enabled: this.writer !== null, ...(this.writer?.stats ?? EMPTY_WRITER_STATS) },
    };
  }
}

const EMPTY_WRITER_STATS = {
  writes: 0, writeLastMs: 0, writeSumMs: 0, rows: 0, errors: 0, droppedTicks: 0,
  rollups: 0, rollupSumMs: 0, rolledUpRows: 0, deletedRows: 0, dbBytes: 0,
};
