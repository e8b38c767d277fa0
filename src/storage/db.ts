// Opening the telemetry database: <data_dir>/tpsd.db, SQLite through
// better-sqlite3 in WAL mode.
//
// Threads: the daemon holds two connections, each opened here, and so
// writes from two threads:
//   - the main thread (telemetry.ts) opens it first (creating and migrating
//     it) and writes the rare rows: limit overrides and their audit trail,
//     on disk before they apply (overrides.ts), and the model registry
//     (registerModel); at shutdown it checkpoints the WAL and closes last;
//   - the telemetry writer thread (telemetry-worker.ts, started by
//     telemetry-writer.ts) writes the key ids at start, then every tick's
//     rows (ticks, telemetry, decisions; telemetry-store.ts) in one
//     transaction per tick, and runs retention (roll-ups and deletes,
//     retention.ts) between ticks.
// SQLite runs one write transaction at a time; busy_timeout makes the other
// writer wait for it (up to 5 s) rather than fail. CLI verbs (history, decisions,
// recommend) open it read-only from their own processes while the daemon
// runs; WAL lets them read without blocking either writer.
//
// Durability: journal_mode=WAL with synchronous=NORMAL. A committed
// transaction survives a crash of the process (kill -9): it is in the WAL,
// which SQLite replays on the next open; only a power loss can drop the last
// transactions. The writer thread commits once per tick, so a kill loses at
// most the tick that was being written.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { CodedError } from '../protocol/coded-error.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts';

export type Db = Database.Database;

export const DB_FILE = 'tpsd.db';

/** The database file of a data directory. */
export function dbPath(dataDir: string): string {
  return join(resolve(dataDir), DB_FILE);
}

/** The database is missing, unreadable, or of an unknown schema. */
export class StorageError extends CodedError {
  override readonly code = 'TPSD_STORAGE_UNAVAILABLE';
  constructor(message: string) { super(message); this.name = 'StorageError'; }
}

/** Opens (creating it and data_dir if needed) and migrates the daemon's database. */
export function openDatabase(dataDir: string): Db {
  const dir = resolve(dataDir);
  try { mkdirSync(dir, { recursive: true }); } catch (err) {
    throw new StorageError(`cannot create data_dir ${dir}: ${(err as Error).message}`);
  }
  const file = join(dir, DB_FILE);
  let db: Db;
  try { db = new Database(file); } catch (err) {
    throw new StorageError(`cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    // Checkpoint often enough that the WAL stays small at one commit per tick.
    db.pragma('wal_autocheckpoint = 1000');
    migrate(db);
  } catch (err) {
    db.close();
    throw err instanceof StorageError ? err : new StorageError(`${file}: ${(err as Error).message}`);
  }
  return db;
}

/** Applies the migrations the database lacks; refuses a database from a newer tpsd. */
export function migrate(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new StorageError(`the database has schema version ${current}, newer than this tpsd knows (${SCHEMA_VERSION}); upgrade tpsd`);
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
      db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)').run(`migration_${m.version}`, `${new Date().toISOString()} ${m.name}`);
    })();
  }
  return SCHEMA_VERSION;
}

/**
 * Opens an existing database for reading (CLI verbs). Refuses a missing file
 * and a schema this tpsd does not know; does not migrate.
 */
export function openReadOnly(file: string): Db {
  let db: Db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new StorageError(`cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0) throw new StorageError(`${file} is not a tpsd database (no schema)`);
    if (version > SCHEMA_VERSION) throw new StorageError(`${file} has schema version ${version}, newer than this tpsd knows (${SCHEMA_VERSION})`);
  } catch (err) {
    db.close();
    throw err instanceof StorageError ? err : new StorageError(`${file}: ${(err as Error).message}`);
  }
  return db;
}

/** Writes the WAL back into the database file and closes it (clean shutdown). */
export function closeDatabase(db: Db): void {
  if (!db.open) return;
  try { db.pragma('wal_checkpoint(TRUNCATE)'); } finally { db.close(); }
}
