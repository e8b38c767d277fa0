// The telemetry writer thread: owns the connection that writes per-tick rows
// and runs retention.
//
// Threads: started by TelemetryWriter (telemetry-writer.ts) on the main
// thread, which posts one 'tick' message per controller tick (typed arrays
// transferred, not copied). Messages are handled in order, each tick in one
// transaction, so the main thread never waits for SQLite (a tick of 100k keys
// takes ~300 ms to write, four times the controller's own tick). Retention
// runs here between ticks in bounded slices. The main thread keeps its own
// connection for the rare writes that must be on disk before they apply
// (limit overrides); WAL serializes the two writers with busy_timeout.
// On 'close' it finishes the ticks already posted, closes, and says 'closed'.

import { parentPort, workerData } from 'node:worker_threads';
import { statSync } from 'node:fs';
import type { TpsdConfig } from '../config/types.ts';
import { KeyIndex, type SharedKeys } from '../shm/key-index.ts';
import { openDatabase } from './db.ts';
import { Retention } from './retention.ts';
import { TelemetryStore, type TickBatch } from './telemetry-store.ts';

export interface TelemetryWorkerData {
  readonly entry: string;
  readonly config: TpsdConfig;
  /** The main thread's keys (KeyIndex.shared()): viewed, not rebuilt; absent, built from config.pools. */
  readonly keys?: SharedKeys;
}

export type ToTelemetryWorker =
  | { readonly type: 'tick'; readonly batch: TickBatch }
  | { readonly type: 'retention'; readonly nowMs?: number }
  | { readonly type: 'close' };

export type FromTelemetryWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'written'; readonly tick: number; readonly ms: number; readonly rows: number; readonly error: string | null }
  | { readonly type: 'retention'; readonly ms: number; readonly rolledUp: number; readonly deleted: number; readonly dbBytes: number; readonly error: string | null }
  | { readonly type: 'closed' };

const { config, keys } = workerData as TelemetryWorkerData;
const post = (m: FromTelemetryWorker) => parentPort!.postMessage(m);
const budgetMs = Math.min(200, config.tick_ms / 2);

function open(): { store: TelemetryStore; retention: Retention } {
  try {
    const db = openDatabase(config.data_dir);
    return { store: new TelemetryStore(db, keys === undefined ? KeyIndex.fromConfig(config) : KeyIndex.fromShared(keys)), retention: new Retention(db, config.telemetry) };
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
    process.exit(1); // ends this thread only
  }
}
const { store, retention } = open();

let closing = false;
let behind = false;
let slice: NodeJS.Immediate | null = null;

/** One retention pass within the budget; if not done, the next slice follows after pending messages. */
function runRetention(nowMs = Date.now()): void {
  slice = null;
  if (closing) return;
  const t0 = performance.now();
  try {
    const r = store.runRetention(retention, nowMs, budgetMs);
    behind = !r.done;
    const file = store.db.name;
    const dbBytes = statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    post({ type: 'retention', ms: r.ms, rolledUp: r.rolledUp, deleted: r.deleted, dbBytes, error: null });
  } catch (err) {
    behind = false;
    post({ type: 'retention', ms: performance.now() - t0, rolledUp: 0, deleted: 0, dbBytes: 0, error: (err as Error).message });
  }
  if (behind) slice = setImmediate(runRetention);
}

const timer = setInterval(() => { if (slice === null) runRetention(); }, config.telemetry.rollup_every_s * 1000);

parentPort!.on('message', (m: ToTelemetryWorker) => {
  if (m.type === 'tick') {
    const t0 = performance.now();
    let rows = 0;
    let error: string | null = null;
    try { rows = store.writeTick(m.batch); } catch (err) { error = (err as Error).message; }
    post({ type: 'written', tick: m.batch.tick, ms: performance.now() - t0, rows, error });
  } else if (m.type === 'retention') {
    if (slice !== null) clearImmediate(slice);
    runRetention(m.nowMs);
  } else if (m.type === 'close') {
    closing = true;
    clearInterval(timer);
    if (slice !== null) clearImmediate(slice);
    try { store.db.close(); } catch { /* the main thread checkpoints and closes the file last */ }
    post({ type: 'closed' });
    parentPort!.close();
  }
});

post({ type: 'ready' });
