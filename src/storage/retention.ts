// Retention: per-tick rows older than retention_raw_h are rolled up into
// 1-minute rows (sums, maxima and sums for averages, merged into any row
// already there for that minute, so a minute may be rolled up in parts and
// nothing is counted twice or lost), then deleted; 1-minute rows older than
// retention_rollup_d, decisions older than retention_decisions_h and tick
// rows older than retention_raw_h are deleted. Limit changes (limit_audit)
// are kept, except the surge and abuse detector's (actor DETECTOR_ACTOR),
// deleted with the decisions after retention_decisions_h: an attack by many
// tenants writes many of them, operators' changes are few.
//
// Threads: main thread, between ticks. Work is done in bounded steps (one
// minute of raw rows, a bounded number of deletions per table) so a backlog
// after a long stop never stalls a tick for long; runPass() repeats steps
// until caught up or until its time budget is spent.

import type { Db } from './db.ts';
import { DETECTOR_ACTOR } from './overrides.ts';

export const MINUTE_MS = 60_000;
const DELETE_BATCH = 50_000;

export interface RetentionOptions {
  retention_raw_h: number;
  retention_rollup_d: number;
  retention_decisions_h: number;
}

export interface RetentionResult {
  rolledUp: number;
  deleted: number;
  /** False when the time budget ran out before every old row was handled. */
  done: boolean;
  ms: number;
}

const SUMS = ['requested', 'granted', 'denied', 'ok', 'failed', 'throttled', 'expired', 'latency_sum_us', 'latency_count', 'would_deny', 'late'];

export class Retention {
  private readonly db: Db;
  private readonly o: RetentionOptions;
  private readonly oldestRaw;
  private readonly rollupSlice;
  private readonly deleteSlice;
  private readonly deleteRollups;
  private readonly deleteDecisions;
  private readonly deleteTicks;
  private readonly deleteDetectorAudit;

  constructor(db: Db, options: RetentionOptions) {
    this.db = db;
    this.o = options;
    this.oldestRaw = db.prepare('SELECT min(ts_ms) AS ts FROM telemetry');
    const merge = [
      'samples = samples + excluded.samples', 'dt_ms = dt_ms + excluded.dt_ms',
      ...SUMS.map((c) => `${c} = ${c} + excluded.${c}`),
      'queue_sum = queue_sum + excluded.queue_sum', 'queue_max = max(queue_max, excluded.queue_max)',
      'in_flight_sum = in_flight_sum + excluded.in_flight_sum', 'in_flight_max = max(in_flight_max, excluded.in_flight_max)',
      'limit_sum = limit_sum + excluded.limit_sum', 'limit_min = min(limit_min, excluded.limit_min)',
      'limit_max = max(limit_max, excluded.limit_max)',
    ];
    this.rollupSlice = db.prepare(`INSERT INTO telemetry_1m (key_id, minute_ms, samples, dt_ms, ${SUMS.join(', ')},
        queue_sum, queue_max, in_flight_sum, in_flight_max, limit_sum, limit_min, limit_max)
      SELECT key_id, (ts_ms / ${MINUTE_MS}) * ${MINUTE_MS} AS minute, count(*), sum(dt_ms), ${SUMS.map((c) => `sum(${c})`).join(', ')},
        sum(queue), max(queue), sum(in_flight), max(in_flight), sum(limit_tps), min(limit_tps), max(limit_tps)
      FROM telemetry WHERE ts_ms >= ? AND ts_ms < ? GROUP BY key_id, minute
      ON CONFLICT (key_id, minute_ms) DO UPDATE SET ${merge.join(', ')}`);
    this.deleteSlice = db.prepare('DELETE FROM telemetry WHERE ts_ms >= ? AND ts_ms < ?');
    this.deleteRollups = db.prepare(`DELETE FROM telemetry_1m WHERE (key_id, minute_ms) IN
      (SELECT key_id, minute_ms FROM telemetry_1m WHERE minute_ms < ? LIMIT ${DELETE_BATCH})`);
    this.deleteDecisions = db.prepare(`DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE ts_ms < ? LIMIT ${DELETE_BATCH})`);
    this.deleteTicks = db.prepare(`DELETE FROM ticks WHERE ts_ms IN (SELECT ts_ms FROM ticks WHERE ts_ms < ? LIMIT ${DELETE_BATCH})`);
    this.deleteDetectorAudit = db.prepare(`DELETE FROM limit_audit WHERE id IN
      (SELECT id FROM limit_audit WHERE ts_ms < ? AND actor = '${DETECTOR_ACTOR}' LIMIT ${DELETE_BATCH})`);
  }

  /** The raw cutoff: rows before it are rolled up. */
  rawCutoff(nowMs: number): number {
    return Math.floor(nowMs - this.o.retention_raw_h * 3_600_000);
  }

  /**
   * One bounded step: rolls up at most one minute of raw rows older than the
   * cutoff (one transaction), or else one batch of old rows per table.
   * Returns rows handled; 0 when there is nothing left to do.
   */
  step(nowMs: number): { rolledUp: number; deleted: number } {
    const cutoff = this.rawCutoff(nowMs);
    const oldest = (this.oldestRaw.get() as { ts: number | null }).ts;
    if (oldest !== null && oldest < cutoff) {
      const end = Math.min(cutoff, (Math.floor(oldest / MINUTE_MS) + 1) * MINUTE_MS);
      return this.db.transaction(() => {
        this.rollupSlice.run(oldest, end);
        return { rolledUp: this.deleteSlice.run(oldest, end).changes, deleted: 0 };
      })();
    }
    const rollupCutoff = Math.floor(nowMs - this.o.retention_rollup_d * 86_400_000);
    const decisionCutoff = Math.floor(nowMs - this.o.retention_decisions_h * 3_600_000);
    const deleted = this.db.transaction(() =>
      this.deleteRollups.run(rollupCutoff).changes + this.deleteDecisions.run(decisionCutoff).changes +
      this.deleteTicks.run(cutoff).changes + this.deleteDetectorAudit.run(decisionCutoff).changes)();
    return { rolledUp: 0, deleted };
  }

  /** Steps until nothing is left or `budgetMs` is spent. */
  runPass(nowMs: number, budgetMs = 200): RetentionResult {
    const t0 = performance.now();
    let rolledUp = 0;
    let deleted = 0;
    for (;;) {
      const r = this.step(nowMs);
      rolledUp += r.rolledUp;
      deleted += r.deleted;
      const done = r.rolledUp === 0 && r.deleted === 0;
      const ms = performance.now() - t0;
      if (done || ms >= budgetMs) return { rolledUp, deleted, done, ms };
    }
  }
}
