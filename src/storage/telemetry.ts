// The daemon's storage in one handle: the database in data_dir (opened and
// migrated here), the limit overrides and model registry on this
// connection, and the telemetry writer thread for per-tick rows and
// retention (telemetry-writer.ts).
//
// Threads: main thread only; opened by daemon.ts at start (a database that
// cannot be opened stops the start, like a bad config) and closed after the
// last tick's rows are written: the writer thread finishes first, then this
// connection checkpoints the WAL into the file and closes it.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TpsdConfig } from '../config/types.ts';
import type { SharedKeys } from '../shm/key-index.ts';
import { closeDatabase, dbPath, openDatabase, type Db } from './db.ts';
import { ApprovalStore } from './approvals.ts';
import { OverrideStore } from './overrides.ts';
import { TenantTierStore } from './tenant-tiers.ts';
import { registerModel } from './telemetry-store.ts';
import { TelemetryWriter, type WriterLogger } from './telemetry-writer.ts';

export interface Telemetry {
  readonly file: string;
  readonly db: Db;
  readonly writer: TelemetryWriter;
  readonly overrides: OverrideStore;
  /** Tenant tier assignments (op 17 TENANTS). */
  readonly tenantTiers: TenantTierStore;
  /** Limit changes held for approval (governance, op 18 APPROVALS). */
  readonly approvals: ApprovalStore;
  /** Adds the model in use to the registry (skipped for 'none'). */
  registerModel(version: string, path: string): void;
  /** Waits for the writer to write every tick posted, then closes the database. */
  close(): Promise<void>;
}

/** `keys`: the main thread's (KeyIndex.shared()), which the writer thread views instead of building its own. */
export async function openTelemetry(config: TpsdConfig, log: WriterLogger, keys?: SharedKeys): Promise<Telemetry> {
  const db = openDatabase(config.data_dir);
  let writer: TelemetryWriter;
  try {
    writer = await TelemetryWriter.start(config, log, keys);
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    file: dbPath(config.data_dir),
    db,
    writer,
    overrides: new OverrideStore(db),
    tenantTiers: new TenantTierStore(db),
    approvals: new ApprovalStore(db),
    registerModel(version, path) {
      if (version === 'none') return;
      let sha: string | null = null;
      let bytes: number | null = null;
      try {
        const data = readFileSync(path);
        sha = createHash('sha256').update(data).digest('hex');
        bytes = data.length;
      } catch { /* the model was loaded, so this is a race with a rename: record it without a digest */ }
      registerModel(db, version, resolve(path), sha, bytes);
    },
    async close() {
      await writer.close();
      closeDatabase(db);
    },
  };
}
