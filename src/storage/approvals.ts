// Governance in SQLite: limit changes held for approval (pending_changes),
// the approved level of each governed tier allocation (approved_levels), and
// their audit rows in limit_audit (actions held, replaced, approved,
// declined, skipped; one row per field, the pending change's id in detail).
//
// Threads: main thread only, on its connection. A held change is written
// with its audit rows in one transaction before the reply says it is held,
// and a decision (approve, reject) deletes the row and writes its audit rows
// in one transaction, so what is pending after a restart is exactly what was
// answered as pending.

import type { Db } from './db.ts';
import type { GovernanceAction, LimitValue } from './overrides.ts';

/** operator: an op 16 LIMITS set or rm; allocator: a tier's allocation rise. */
export type PendingSource = 'operator' | 'allocator';

export interface PendingRecord {
  /** Random, not derived from the key (daemon/governance.ts). */
  readonly id: string;
  readonly source: PendingSource;
  readonly key: string;
  /** set / rm: the op 16 action; allocate: the allocator's. */
  readonly action: 'set' | 'rm' | 'allocate';
  /** What approval applies: set: {field: value}; rm: [field]; allocate: {allocation_tps}. */
  readonly request: Record<string, LimitValue> | string[];
  /** The values in force when it was held, and the values it asks for (numeric and other fields). */
  readonly old: Record<string, LimitValue>;
  readonly next: Record<string, LimitValue>;
  /** The largest factor between an old and a new numeric value (Infinity: to or from 0). */
  readonly step: number;
  readonly requestedAtMs: number;
  readonly requestedBy: string;
}

const enc = (v: unknown): string => JSON.stringify(v);

export class ApprovalStore {
  private readonly insert;
  private readonly remove;
  private readonly audit;
  private readonly upsertLevel;

  constructor(private readonly db: Db) {
    this.insert = db.prepare(`INSERT INTO pending_changes (id, source, key, action, request, old, new, step, requested_at_ms, requested_by)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.remove = db.prepare('DELETE FROM pending_changes WHERE id = ?');
    this.audit = db.prepare(`INSERT INTO limit_audit (ts_ms, action, key, field, old_value, new_value, actor, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.upsertLevel = db.prepare(`INSERT INTO approved_levels (key, level_tps, set_at_ms, set_by) VALUES (?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET level_tps = excluded.level_tps, set_at_ms = excluded.set_at_ms, set_by = excluded.set_by`);
  }

  /** Every pending change, oldest first. */
  list(): PendingRecord[] {
    const rows = this.db.prepare(`SELECT id, source, key, action, request, old, new, step, requested_at_ms, requested_by
      FROM pending_changes ORDER BY requested_at_ms, id`).all() as
      { id: string; source: PendingSource; key: string; action: PendingRecord['action']; request: string; old: string; new: string;
        step: number | null; requested_at_ms: number; requested_by: string }[];
    return rows.map((r) => ({
      id: r.id, source: r.source, key: r.key, action: r.action, request: JSON.parse(r.request) as PendingRecord['request'],
      old: JSON.parse(r.old) as Record<string, LimitValue>, next: JSON.parse(r.new) as Record<string, LimitValue>,
      step: r.step ?? Infinity, requestedAtMs: r.requested_at_ms, requestedBy: r.requested_by,
    }));
  }

  /** Approved tier levels by key. */
  levels(): Map<string, number> {
    const rows = this.db.prepare('SELECT key, level_tps FROM approved_levels').all() as { key: string; level_tps: number }[];
    return new Map(rows.map((r) => [r.key, r.level_tps]));
  }

  /** A change held (replacing `replaced`, the same source and key's earlier one, if any), with its audit rows. */
  hold(p: PendingRecord, replaced: PendingRecord | null): void {
    this.db.transaction(() => {
      if (replaced !== null) {
        this.remove.run(replaced.id);
        this.auditRows(replaced, 'replaced', p.requestedBy, p.requestedAtMs, `${replaced.id} replaced by ${p.id}`);
      }
      this.insert.run(p.id, p.source, p.key, p.action, enc(p.request), enc(p.old), enc(p.next),
        Number.isFinite(p.step) ? p.step : null, p.requestedAtMs, p.requestedBy);
      this.auditRows(p, 'held', p.requestedBy, p.requestedAtMs, `${p.id} pending approval (step ${Number.isFinite(p.step) ? p.step.toFixed(3) : 'from or to 0'})`);
    })();
  }

  /** An admin's decision, or a change dropped at start (skipped): the row goes, the audit rows stay. */
  resolve(p: PendingRecord, action: 'approved' | 'declined' | 'skipped', actor: string, nowMs: number, detail: string): void {
    this.db.transaction(() => {
      this.remove.run(p.id);
      this.auditRows(p, action, actor, nowMs, `${p.id} ${detail}`);
      if (action === 'approved' && p.action === 'allocate') this.upsertLevel.run(p.key, p.next.allocation_tps as number, nowMs, actor);
    })();
  }

  /** One audit row per field of the change. */
  private auditRows(p: PendingRecord, action: GovernanceAction, actor: string, nowMs: number, detail: string): void {
    const fields = Array.isArray(p.request) ? p.request : Object.keys(p.next);
    for (const f of fields) {
      this.audit.run(nowMs, action, p.key, f, p.old[f] === undefined ? null : enc(p.old[f]), p.next[f] === undefined ? null : enc(p.next[f]),
        actor, `${detail}; asked by ${p.requestedBy}`);
    }
  }
}
