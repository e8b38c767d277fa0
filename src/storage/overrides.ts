// Live limit overrides (`tpsd limits set|rm`) and their audit trail.
//
// Threads: main thread only, on its connection (the telemetry writer thread
// writes the tick rows on its own; see db.ts). A change and its audit rows
// are written in one transaction, before the change is applied,
// so an override that is in force is always on disk and in the audit trail.

import type { Db } from './db.ts';

export type LimitValue = number | string;

export interface StoredOverride {
  key: string;
  field: string;
  value: LimitValue;
  setAtMs: number;
  setBy: string;
}

/**
 * set: an override written; rm: removed; rejected: refused by validation; skipped: not re-applied at start.
 * Governance (approvals.ts): held, replaced, approved, declined; the pending change's id in `detail`.
 */
export type AuditAction = 'set' | 'rm' | 'rejected' | 'skipped' | GovernanceAction | DetectorAction;
/** The surge and abuse detector's (control/tenant-guard.ts, actor 'tpsd detector'). */
export type DetectorAction = 'classify' | 'defend' | 'lift';
/** The actor of the surge and abuse defence's limit_audit rows (retention deletes them with the decisions). */
export const DETECTOR_ACTOR = 'tpsd detector';
/** The audit trail's words for governance's steps (storage/approvals.ts writes them). */
export type GovernanceAction = 'held' | 'replaced' | 'approved' | 'declined' | 'skipped';

export interface AuditEntry {
  tsMs: number;
  action: AuditAction;
  key: string;
  field: string | null;
  oldValue: LimitValue | null;
  newValue: LimitValue | null;
  actor: string;
  detail: string | null;
}

const enc = (v: LimitValue | null | undefined): string | null => (v === null || v === undefined ? null : JSON.stringify(v));
const dec = (s: string | null): LimitValue | null => (s === null ? null : JSON.parse(s) as LimitValue);

export class OverrideStore {
  private readonly db: Db;
  private readonly upsert;
  private readonly remove;
  private readonly insertAudit;

  constructor(db: Db) {
    this.db = db;
    this.upsert = db.prepare(`INSERT INTO limit_overrides (key, field, value, set_at_ms, set_by) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (key, field) DO UPDATE SET value = excluded.value, set_at_ms = excluded.set_at_ms, set_by = excluded.set_by`);
    this.remove = db.prepare('DELETE FROM limit_overrides WHERE key = ? AND field = ?');
    this.insertAudit = db.prepare(`INSERT INTO limit_audit (ts_ms, action, key, field, old_value, new_value, actor, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  list(): StoredOverride[] {
    const rows = this.db.prepare('SELECT key, field, value, set_at_ms, set_by FROM limit_overrides ORDER BY key, field').all() as
      { key: string; field: string; value: string; set_at_ms: number; set_by: string }[];
    return rows.map((r) => ({ key: r.key, field: r.field, value: dec(r.value)!, setAtMs: r.set_at_ms, setBy: r.set_by }));
  }

  /** Writes the overrides of one key and one audit row per field, in one transaction. */
  set(key: string, changes: { field: string; old: LimitValue; value: LimitValue }[], actor: string, nowMs: number): void {
    this.db.transaction(() => {
      for (const c of changes) {
        this.upsert.run(key, c.field, enc(c.value), nowMs, actor);
        this.insertAudit.run(nowMs, 'set', key, c.field, enc(c.old), enc(c.value), actor, null);
      }
    })();
  }

  /** Removes overrides of one key; `reverted` is the configured value each field falls back to. */
  rm(key: string, changes: { field: string; old: LimitValue; reverted: LimitValue }[], actor: string, nowMs: number): void {
    this.db.transaction(() => {
      for (const c of changes) {
        this.remove.run(key, c.field);
        this.insertAudit.run(nowMs, 'rm', key, c.field, enc(c.old), enc(c.reverted), actor, null);
      }
    })();
  }

  audit(e: AuditEntry): void {
    this.insertAudit.run(e.tsMs, e.action, e.key, e.field, enc(e.oldValue), enc(e.newValue), e.actor, e.detail);
  }
}

/**
 * The audit trail in [sinceMs, untilMs), oldest first (for `tpsd decisions`):
 * only the keys of `pool` (the pool and the keys under it) when given, and
 * only the newest `limit` entries when limit > 0.
 */
export function readAudit(db: Db, sinceMs: number, untilMs: number, o: { pool?: string | null; limit?: number } = {}): AuditEntry[] {
  const pool = o.pool ?? null;
  const limit = o.limit !== undefined && o.limit > 0 ? Math.floor(o.limit) : 0;
  const rows = (db.prepare(`SELECT ts_ms, action, key, field, old_value, new_value, actor, detail FROM limit_audit
    WHERE ts_ms >= @since AND ts_ms < @until
    ${pool === null ? '' : "AND (key = @pool OR substr(key, 1, length(@pool) + 1) = @pool || '/')"}
    ORDER BY ts_ms DESC, id DESC ${limit > 0 ? `LIMIT ${limit}` : ''}`).all({ since: sinceMs, until: untilMs, ...(pool === null ? {} : { pool }) }) as
    { ts_ms: number; action: AuditAction; key: string; field: string | null; old_value: string | null; new_value: string | null; actor: string; detail: string | null }[])
    .reverse();
  return rows.map((r) => ({
    tsMs: r.ts_ms, action: r.action, key: r.key, field: r.field, oldValue: dec(r.old_value), newValue: dec(r.new_value),
    actor: r.actor, detail: r.detail,
  }));
}
