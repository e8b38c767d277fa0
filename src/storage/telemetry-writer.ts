// The main thread's handle on the telemetry writer thread
// (telemetry-worker.ts): posts each tick's batch with its buffers
// transferred, keeps the writer's figures for /metrics, and on close waits
// until every posted tick is written.
//
// Threads: used on the main thread only. If the writer falls more than
// MAX_PENDING ticks behind, new ticks are dropped (counted, logged) rather
// than queued without bound; if it dies, telemetry stops and the daemon keeps
// limiting.

import { Worker } from 'node:worker_threads';
import type { TpsdConfig } from '../config/types.ts';
import type { TickBatch } from './telemetry-store.ts';
import type { FromTelemetryWorker, TelemetryWorkerData, ToTelemetryWorker } from './telemetry-worker.ts';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';
import { threadEntry } from '../shm/thread-bundle.ts';
import { configForThreads, type SharedKeys } from '../shm/key-index.ts';

const ENTRY = new URL('./telemetry-worker.ts', import.meta.url).href;
export const MAX_PENDING = 8;
/** The writer's young generation (two semi-spaces and new large objects): 2 MiB semi-spaces, not V8's up to 16 MiB kept resident (shm/thread-bundle.ts on RSS). */
const YOUNG_GENERATION_MB = 6;
const CLOSE_TIMEOUT_MS = 30_000;

export interface WriterLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WriterStats {
  writes: number;
  writeLastMs: number;
  writeSumMs: number;
  rows: number;
  errors: number;
  droppedTicks: number;
  rollups: number;
  rollupSumMs: number;
  rolledUpRows: number;
  deletedRows: number;
  dbBytes: number;
}

export class TelemetryWriter {
  readonly stats: WriterStats = {
    writes: 0, writeLastMs: 0, writeSumMs: 0, rows: 0, errors: 0, droppedTicks: 0,
    rollups: 0, rollupSumMs: 0, rolledUpRows: 0, deletedRows: 0, dbBytes: 0,
  };
  /** The last tick written (for tests and shutdown checks). */
  lastWrittenTick = -1;
  /** Why the last tick's write failed; null once a tick is written again (daemon/daemon-health.ts: /readyz). */
  lastError: string | null = null;
  private pending = 0;
  private dead = false;
  private closed: Promise<void> | null = null;
  private logged = 0;

  private constructor(private readonly worker: Worker, private readonly log: WriterLogger) {
    worker.on('message', (m: FromTelemetryWorker) => this.onMessage(m));
    worker.on('error', (err) => { this.dead = true; log.error({ err }, 'telemetry writer thread failed; telemetry is no longer written'); });
    worker.on('exit', () => { this.dead = true; });
  }

  /**
   * Starts the thread; resolves once it has opened the database. `keys`: the
   * main thread's (KeyIndex.shared()), which the thread views with the
   * config's pools left without services (configForThreads); absent, it
   * builds its own from the whole config.
   */
  static async start(config: TpsdConfig, log: WriterLogger, keys?: SharedKeys): Promise<TelemetryWriter> {
    // One plain module: no TypeScript loader thread beside the writer (shm/thread-bundle.ts).
    const entry = await threadEntry(ENTRY, (err) =>
      log.warn({ err }, 'the telemetry thread runs its TypeScript entry (a loader thread more): it could not be bundled'));
    const workerData: TelemetryWorkerData = keys === undefined ? { entry, config } : { entry, config: configForThreads(config), keys };
    const worker = new Worker(THREAD_BOOTSTRAP, { workerData, name: 'tpsd-telemetry', resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the telemetry writer thread exited with code ${code} before it was ready`));
      worker.once('exit', onExit);
      worker.once('error', reject);
      worker.once('message', (m: FromTelemetryWorker) => {
        worker.off('exit', onExit);
        worker.off('error', reject);
        if (m.type === 'ready') resolve(new TelemetryWriter(worker, log));
        else reject(new Error(m.type === 'failed' ? m.message : `unexpected ${m.type} from the telemetry writer`));
      });
    });
  }

  /** Queues one tick; false when it was dropped (writer behind or gone). */
  write(batch: TickBatch): boolean {
    if (this.dead || this.closed !== null) return false;
    if (this.pending >= MAX_PENDING) {
      this.stats.droppedTicks++;
      if (this.logged++ % 60 === 0) this.log.warn({ dropped: this.stats.droppedTicks, pending: this.pending }, 'telemetry writer is behind; dropping this tick\'s rows');
      return false;
    }
    this.pending++;
    const transfer = [batch.buckets.buffer, batch.values.buffer, batch.decisionValues.buffer] as ArrayBuffer[];
    if (batch.decisionPositions !== undefined) transfer.push(batch.decisionPositions.buffer as ArrayBuffer);
    if ((batch.tenantCount ?? 0) > 0) transfer.push(batch.tenantServices!.buffer as ArrayBuffer, batch.tenantValues!.buffer as ArrayBuffer);
    this.post({ type: 'tick', batch }, transfer);
    return true;
  }

  /** Asks for a retention pass now (tests). */
  runRetention(nowMs?: number): void { this.post({ type: 'retention', nowMs }); }

  /** Ticks posted and not yet written. */
  get backlog(): number { return this.pending; }

  /** Waits for every posted tick to be written, then stops the thread. */
  close(): Promise<void> {
    if (this.closed !== null) return this.closed;
    this.closed = new Promise<void>((resolve) => {
      if (this.dead) { resolve(); return; }
      const timer = setTimeout(() => {
        this.log.error({ pending: this.pending }, 'telemetry writer did not close in time; terminating it');
        void this.worker.terminate();
      }, CLOSE_TIMEOUT_MS);
      this.worker.once('exit', () => { clearTimeout(timer); resolve(); });
      this.post({ type: 'close' });
    });
    return this.closed;
  }

  private post(m: ToTelemetryWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer);
  }

  private onMessage(m: FromTelemetryWorker): void {
    const s = this.stats;
    if (m.type === 'written') {
      this.pending--;
      s.writes++;
      s.writeLastMs = m.ms;
      s.writeSumMs += m.ms;
      s.rows += m.rows;
      this.lastError = m.error;
      if (m.error === null) this.lastWrittenTick = m.tick;
      else {
        s.errors++;
        if (this.logged++ % 60 === 0) this.log.error({ error: m.error, errors: s.errors }, 'telemetry write failed; this tick is not recorded');
      }
    } else if (m.type === 'retention') {
      s.rollups++;
      s.rollupSumMs += m.ms;
      s.rolledUpRows += m.rolledUp;
      s.deletedRows += m.deleted;
      if (m.dbBytes > 0) s.dbBytes = m.dbBytes;
      if (m.error !== null) { s.errors++; this.log.error({ error: m.error }, 'telemetry retention pass failed'); }
    }
  }
}
