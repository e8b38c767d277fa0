// The model promotion audit (`tpsd model promote`, a CLI process): one row per
// promotion or refusal in model_audit, and the read side for `tpsd model
// list` (the audit and the daemon's model registry, `models`). The CLI opens
// the daemon's database read-write only to append the audit row (WAL: the
// daemon's writer thread keeps writing; a busy database is waited for up to
// 5 s). Never the daemon's main thread.

import Database from 'better-sqlite3';
import type { Db } from './db.ts';
import { StorageError } from './db.ts';

export interface ModelAuditRow {
  tsMs: number;
  action: 'promote' | 'refused';
  version: string;
  previous: string | null;
  path: string;
  actor: string;
  detail: unknown;
}

/** Appends one audit row to the database file (which the daemon created and migrated). */
export function recordModelAudit(file: string, row: ModelAuditRow): void {
  let db: Db;
  try { db = new Database(file, { fileMustExist: true }); } catch (err) {
    throw new StorageError(`cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare('INSERT INTO model_audit (ts_ms, action, version, previous, path, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(row.tsMs, row.action, row.version, row.previous, row.path, row.actor, JSON.stringify(row.detail));
  } catch (err) {
    throw new StorageError(`${file}: cannot record the audit row: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

export function readModelAudit(db: Db, limit: number): ModelAuditRow[] {
  const rows = db.prepare('SELECT ts_ms, action, version, previous, path, actor, detail FROM model_audit ORDER BY id DESC LIMIT ?').all(limit) as
    { ts_ms: number; action: ModelAuditRow['action']; version: string; previous: string | null; path: string; actor: string; detail: string | null }[];
  return rows.map((r) => ({ tsMs: r.ts_ms, action: r.action, version: r.version, previous: r.previous, path: r.path, actor: r.actor,
    detail: r.detail === null ? null : JSON.parse(r.detail) }));
}

export interface LoadedModel { version: string; path: string; lastLoadedMs: number; loads: number }

/** The daemon's model registry, most recently loaded first. */
export function loadedModels(db: Db): LoadedModel[] {
  return db.prepare('SELECT version, path, last_loaded_ms AS lastLoadedMs, loads FROM models ORDER BY last_loaded_ms DESC').all() as LoadedModel[];
}
