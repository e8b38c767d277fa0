// Turns each controller tick into telemetry: per key the tick's counter
// deltas, gauges and the limit that was in force (ROW fields), per pool the
// controller's decision record as it made it (control/decision.ts: policy,
// fallback, allocation before / proposed / after, guarantees, shadow regret;
// the writer thread derives the safety clamps and why). Hands the batch to the telemetry writer thread
// (telemetry-writer.ts), which writes it in one transaction, and keeps the
// figures the I/O threads show on /metrics.
//
// Threads: main thread only, right after Controller.tick() resolves, so the
// controller's public fields (deltas, last, table) hold that tick's values.
// Collecting is one pass over the keys (a few ms for 100k keys); the SQLite
// work is on the writer thread. Nothing here runs on the I/O threads' hot
// path. A failed or dropped write is logged and counted; the daemon keeps
// limiting.

import type { TpsdConfig } from '../config/types.ts';
import type { Controller } from '../control/controller.ts';
import type { DaemonStats } from '../io/messages.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import {
  C_DENIED_INDEX, C_EXPIRED_INDEX, C_GRANTED_INDEX, C_GRANTS_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX,
  C_RELEASED_FAILED_INDEX, C_RELEASED_OK_INDEX, C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX,
  STAT_EFFECTIVE_CAPACITY_INDEX, statsBase, type ShmViews,
} from '../shm/layout.ts';
import { DEC, DEC_FIELDS, ROW, ROW_FIELDS, type DecisionRow } from '../storage/telemetry-store.ts';
import type { TelemetryWriter } from '../storage/telemetry-writer.ts';

/** The row field each per-tick counter delta goes to. */
const DELTA_FIELDS: readonly (readonly [row: number, counter: number])[] = [
  [ROW.REQUESTED, C_REQUESTED_INDEX], [ROW.GRANTED, C_GRANTED_INDEX], [ROW.DENIED, C_DENIED_INDEX],
  [ROW.OK, C_RELEASED_OK_INDEX], [ROW.FAILED, C_RELEASED_FAILED_INDEX], [ROW.THROTTLED, C_RELEASED_THROTTLED_INDEX],
  [ROW.EXPIRED, C_EXPIRED_INDEX], [ROW.LATENCY_SUM_US, C_LATENCY_SUM_US_INDEX], [ROW.LATENCY_COUNT, C_LATENCY_COUNT_INDEX],
];

export class TickRecorder {
  private readonly n: number;
  private readonly limitsBefore: Float64Array;
  private readonly lastWritten: Float64Array;
  private readonly buckets: Int32Array;
  private readonly values: Float64Array;
  private readonly serviceCount: number;
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
  ) {
    this.n = keys.size;
    this.limitsBefore = new Float64Array(this.n);
    this.lastWritten = new Float64Array(this.n).fill(Number.NaN);
    this.buckets = new Int32Array(this.n);
    this.values = new Float64Array(this.n * ROW_FIELDS);
    this.serviceCount = keys.specs.filter((s) => s.depth === 1).length;
    this.prevStartedAt = performance.now();
  }

  /** Call right before Controller.tick(): notes the limits in force during the tick that ends now. */
  beforeTick(): void {
    this.tickStartedAt = performance.now();
    const t = this.controller.table;
    for (const spec of this.keys.specs) {
      const b = spec.index;
      this.limitsBefore[b] = spec.depth === 0 ? this.views.stats[statsBase(b) + STAT_EFFECTIVE_CAPACITY_INDEX] : t.rateTps(b);
    }
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
    const decisionValues = new Float64Array(this.serviceCount * DEC_FIELDS);
    const decisions = this.decisions(decisionValues);
    if (this.writer === null) return;
    const count = this.collect();
    const buckets = this.buckets.slice(0, count);
    const values = this.values.slice(0, count * ROW_FIELDS);
    const posted = this.writer.write({
      tsMs: nowMs, tick: this.controller.ticks, dtMs, durationMs, mode: this.config.policy.mode,
      model: this.controller.modelVersion, count, buckets, values, decisions, decisionValues,
    });
    // A dropped tick leaves lastWritten as it was, so the next tick writes those keys' rows again.
    if (posted) for (let r = 0; r < count; r++) this.lastWritten[this.buckets[r]] = this.values[r * ROW_FIELDS + ROW.LIMIT_TPS];
    this.collectLastMs = performance.now() - t0;
  }

  /** Rows of this tick into buckets/values; idle keys whose limit did not change are left out. */
  private collect(): number {
    const d = this.controller.deltas;
    const t = this.controller.table;
    let r = 0;
    for (let b = 0; b < this.n; b++) {
      const o = r * ROW_FIELDS;
      let active = false;
      for (const [field, counter] of DELTA_FIELDS) {
        const v = d.delta(b, counter);
        this.values[o + field] = v;
        if (v !== 0) active = true;
      }
      const queue = t.queue(b);
      const inFlight = t.concurrency(b) > 0 ? t.inFlight(b) : Math.max(0, d.total(b, C_GRANTS_INDEX) - d.total(b, C_RELEASED_OK_INDEX)
        - d.total(b, C_RELEASED_FAILED_INDEX) - d.total(b, C_RELEASED_THROTTLED_INDEX) - d.total(b, C_EXPIRED_INDEX));
      const limit = this.limitsBefore[b];
      if (!active && queue === 0 && inFlight === 0 && limit === this.lastWritten[b]) continue;
      this.values[o + ROW.QUEUE] = queue;
      this.values[o + ROW.IN_FLIGHT] = inFlight;
      this.values[o + ROW.LIMIT_TPS] = limit;
      this.buckets[r++] = b;
    }
    return r;
  }

  /**
   * Each pool's decision as the controller recorded it (control/decision.ts);
   * per service values go to `v` (DEC_FIELDS each), clamps are derived from
   * them on the writer thread.
   */
  private decisions(v: Float64Array): DecisionRow[] {
    let offset = 0;
    return this.controller.last.map(({ obs, decision, alloc, guarantees, shadowRegret }) => {
      const n = obs.services.length;
      const row: DecisionRow = {
        pool: obs.key, policy: decision.applied, fallbackReason: decision.fallback?.reason ?? null,
        capacityTps: obs.capacityTps, effectiveTps: obs.effectiveTps, demandTps: obs.totalDemandTps,
        stepCap: obs.stepCap, stepFloorTps: obs.stepFloorTps, shadowRegret, offset, services: n,
      };
      for (let i = 0; i < n && offset + i < this.serviceCount; i++) {
        const o = (offset + i) * DEC_FIELDS;
        v[o + DEC.BEFORE] = obs.services[i].limitTps;
        v[o + DEC.PROPOSED] = decision.raw[i];
        v[o + DEC.AFTER] = alloc[i];
        v[o + DEC.SHADOW] = decision.shadow === null ? Number.NaN : decision.shadow[i];
        v[o + DEC.MAX_TPS] = obs.services[i].maxTps;
        v[o + DEC.GUARANTEE] = guarantees[i];
      }
      offset += n;
      return row;
    });
  }

  /** The figures for /metrics. */
  stats(overrides: number): DaemonStats {
    return {
      ticks: this.ticks, tickOverruns: this.tickOverruns, tickLastMs: this.tickLastMs, tickSumMs: this.tickSumMs,
      // Every kind of control/decision.ts FALLBACK_KINDS, counted by the runner; /metrics renders them as they come.
      fallbacks: { ...this.controller.runner.fallbacksByKind }, shadowRegret: this.controller.shadowRegret, model: this.controller.modelVersion, overrides,
      drift: this.controller.drift.status(),
      sqlite: { enabled: this.writer !== null, ...(this.writer?.stats ?? EMPTY_WRITER_STATS) },
    };
  }
}

const EMPTY_WRITER_STATS = {
  writes: 0, writeLastMs: 0, writeSumMs: 0, rows: 0, errors: 0, droppedTicks: 0,
  rollups: 0, rollupSumMs: 0, rolledUpRows: 0, deletedRows: 0, dbBytes: 0,
};
