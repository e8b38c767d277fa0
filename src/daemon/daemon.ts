// The composition root: how the daemon starts and stops, in one place.
//
// Start: check the native uWS build, make sure nobody else serves the port,
// lay out shared memory and the buckets, open the telemetry database in
// data_dir and re-apply the persisted limit overrides, start the I/O threads
// (each a uWS app on the same port), then run the controller's tick on this
// thread, each tick followed by its telemetry write (one transaction).
// Stop: flag SHUTTING_DOWN in shared memory (new acquires are refused), ask
// every I/O thread to close its listen socket, answer its waiters
// SHUTTING_DOWN and close its connections, wait for the threads to exit, run
// a last tick (so every count the threads accepted is written), close the
// database.
//
// Threads: the main thread owns the config, the lifecycle, the controller,
// the live limits and the database; I/O threads own connections, leases and
// waiters (src/io/io-worker.ts) and forward admin ops (op 16 LIMITS) here.

import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { LimitsError, LiveLimits } from './live-limits.ts';
import { restartNeeded } from './reload.ts';
import type { TpsdConfig } from '../config/types.ts';
import { Controller } from '../control/controller.ts';
import type { AdminRequest, IoWorkerData, MainToWorker, WorkerToMain } from '../io/messages.ts';
import { THREAD_LIMIT } from '../io/lease-table.ts';
import { createLogger, type Logger } from '../config/log.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { DEFAULT_MODEL_PATH } from '../ppo/model.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../shm/clock.ts';
import { KeyIndex } from '../shm/key-index.ts';
import { SHUTTING_DOWN_INDEX, allocateShm, type ShmViews } from '../shm/layout.ts';
import { openTelemetry, type Telemetry } from '../storage/telemetry.ts';
import { TickRecorder } from './tick-recorder.ts';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';

const IO_WORKER = new URL('../io/io-worker.ts', import.meta.url).href;
const STOP_TIMEOUT_MS = 4000;

export interface Daemon {
  readonly port: number;
  /** The config in force (the start one, or the last reloaded). */
  readonly config: TpsdConfig;
  readonly views: ShmViews;
  readonly keys: KeyIndex;
  readonly controller: Controller;
  readonly limits: LiveLimits;
  /** The telemetry database file, or null with telemetry.enabled false. */
  readonly dbFile: string | null;
  /**
   * Applies a reloaded config (SIGHUP) without dropping connections, and
   * reloads the model. Throws, keeping the running config, when the change
   * needs a restart (reload.ts).
   */
  reload(next: TpsdConfig): Promise<{ model: string }>;
  /** Drains, writes the last tick and closes the database; resolves when every I/O thread has exited. */
  stop(): Promise<void>;
}

export interface DaemonOptions {
  logger?: Logger;
  /** Called when an I/O thread dies unexpectedly; default: log, stop, exit 1. */
  onFatal?: (err: Error) => void;
}

/** Refuses to run on uWebSockets.js's pure-JS fallback. */
export function assertNativeUws(): void {
  if (typeof (uWS as { SSLApp?: unknown }).SSLApp !== 'function') {
    throw new Error('the native uWebSockets.js build did not load (pure-JS fallback); reinstall with npm ci on Node 20 / glibc');
  }
}

/**
 * Checks that no other process listens on host:port and, for port 0, picks a
 * free one. The I/O threads share the port with SO_REUSEPORT, which would let a
 * second daemon share it silently; this exclusive probe refuses that instead.
 */
function probePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(err.code === 'EADDRINUSE'
        ? `${host}:${port} is already in use (another tpsd running?)`
        : `cannot listen on ${host}:${port}: ${err.message}`));
    });
    srv.listen({ host, port, exclusive: true }, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      srv.close(() => resolve(bound));
    });
  });
}

export async function startDaemon(config: TpsdConfig, options: DaemonOptions = {}): Promise<Daemon> {
  assertNativeUws();
  const log = options.logger ?? createLogger(config.log.level, 'tpsd');
  if (config.io_threads > THREAD_LIMIT) throw new Error(`io_threads ${config.io_threads} is above ${THREAD_LIMIT}`);
  if (config.auth === null && !isLoopback(config.listen.host)) {
    log.warn({ host: config.listen.host }, 'listening on a non-loopback address without auth: anyone who can reach it can take tokens');
  }
  const port = await probePort(config.listen.host, config.listen.port);
  const keys = KeyIndex.fromConfig(config);
  const threads = config.io_threads;
  const views = allocateShm(keys.size, threads);
  const epochHrMs = hrtimeMs();
  const clock = createClock(epochHrMs);
  BucketTable.initialize(views, keys, clock.nowMs());
  const controller = new Controller(views, keys, config, clock, { logger: log });
  let telemetry: Telemetry | null = null;
  try {
    telemetry = config.telemetry.enabled ? await openTelemetry(config, log) : null;
  } catch (err) {
    await controller.close();
    throw err;
  }
  telemetry?.registerModel(controller.modelVersion, config.policy.model ?? DEFAULT_MODEL_PATH);
  let limits = new LiveLimits(keys, controller, telemetry?.overrides ?? null, log);
  limits.restore();
  let current = config;
  const recorder = new TickRecorder(controller, views, keys, config, telemetry?.writer ?? null);
  const startedAtMs = Date.now();

  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  let stopping = false;
  const onFatal = options.onFatal ?? ((err: Error) => {
    log.fatal({ err }, 'an I/O thread died; stopping');
    void daemon.stop().finally(() => process.exit(1));
  });

  const spawn = (thread: number) => new Promise<number>((resolve, reject) => {
    const workerData: IoWorkerData = {
      entry: IO_WORKER, sab: views.sab, bucketCount: keys.size, threadCount: threads, thread,
      config, port, epochHrMs, startedAtMs,
    };
    const w = new Worker(THREAD_BOOTSTRAP, { workerData, name: `tpsd-io-${thread}` });
    workers.push(w);
    let listening = false;
    exited.push(new Promise((done) => w.once('exit', () => done())));
    w.on('message', (m: WorkerToMain) => {
      if (m.type === 'admin') answerAdmin(w, m.reqId, m.request);
      else if (m.type === 'listening') { listening = true; resolve(m.port); }
      else if (m.type === 'listen-failed') reject(new Error(m.message));
    });
    w.on('error', (err) => {
      if (!listening) reject(err);
      else if (!stopping) onFatal(err);
    });
    w.on('exit', (code) => {
      if (!listening) reject(new Error(`I/O thread ${thread} exited with code ${code} before listening`));
      else if (!stopping) onFatal(new Error(`I/O thread ${thread} exited with code ${code}`));
    });
  });

  const stopWorkers = async () => {
    Atomics.store(views.header, SHUTTING_DOWN_INDEX, 1);
    for (const w of workers) w.postMessage({ type: 'stop' } satisfies MainToWorker);
    const timeout = new Promise<'timeout'>((r) => setTimeout(r, STOP_TIMEOUT_MS, 'timeout').unref());
    if (await Promise.race([Promise.all(exited), timeout]) === 'timeout') {
      log.warn('I/O threads did not exit in time; terminating them');
      await Promise.all(workers.map((w) => w.terminate()));
    }
  };

  /** Op 16 LIMITS, forwarded by an I/O thread: validate, persist, apply, answer. */
  const answerAdmin = (w: Worker, reqId: number, req: AdminRequest): void => {
    let status: number = 0;
    let body: unknown;
    try {
      if (req.action === 'get') body = limits.get(req.key);
      else if (req.action === 'set') body = { ...limits.set(req.key!, req.changes, req.actor), persisted: limits.persisted };
      else body = { ...limits.rm(req.key!, req.fields, req.actor), persisted: limits.persisted };
    } catch (err) {
      if (err instanceof LimitsError) { status = err.code; body = err.message; } else {
        log.error({ err, request: req }, 'admin op failed');
        status = ErrorCode.OVERLOADED;
        body = `not applied: ${(err as Error).message}`;
      }
    }
    w.postMessage({ type: 'admin-reply', reqId, status, body } satisfies MainToWorker);
  };

  const closeAll = async () => {
    try { await telemetry?.close(); } catch (err) { log.error({ err }, 'closing the telemetry database failed'); }
    await controller.close();
  };

  try {
    for (let t = 0; t < threads; t++) await spawn(t);
  } catch (err) {
    stopping = true;
    await stopWorkers();
    await closeAll();
    throw err;
  }

  /** One tick and its telemetry; the figures go to every I/O thread for /metrics. */
  const runTick = async () => {
    recorder.beforeTick();
    const before = controller.ticks;
    await controller.tick();
    if (controller.ticks === before) { recorder.tickOverruns++; return; }
    recorder.afterTick();
    const stats = recorder.stats(limits.count);
    for (const w of workers) w.postMessage({ type: 'daemon-stats', stats } satisfies MainToWorker);
  };
  let ticking: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (ticking !== null) { recorder.tickOverruns++; return; }
    ticking = runTick().catch((err) => { log.error({ err }, 'controller tick failed'); }).finally(() => { ticking = null; });
  }, config.tick_ms);

  let stopped: Promise<void> | null = null;
  const daemon: Daemon = {
    port, views, keys, controller, dbFile: telemetry?.file ?? null,
    get config() { return current; },
    get limits() { return limits; },
    async reload(next) {
      const reason = restartNeeded(current, next);
      if (reason !== null) throw new Error(reason);
      const nextKeys = KeyIndex.fromConfig(next);
      controller.reconfigure(nextKeys);
      // Live overrides stay on top of the new config values (nextKeys: the same keys, the new config's limits).
      limits = new LiveLimits(nextKeys, controller, telemetry?.overrides ?? null, log);
      limits.restore();
      current = next;
      log.level = next.log.level;
      for (const w of workers) w.postMessage({ type: 'config', config: next } satisfies MainToWorker);
      const model = await controller.reloadModel();
      if (model.ok) telemetry?.registerModel(model.version, current.policy.model ?? DEFAULT_MODEL_PATH);
      log.info({ model: model.version, model_ok: model.ok }, 'config reloaded');
      return { model: model.version };
    },
    stop() {
      if (stopped) return stopped;
      stopping = true;
      stopped = (async () => {
        log.info('stopping: draining I/O threads');
        clearInterval(timer);
        await stopWorkers();
        // The threads are gone, so their counters are final: the last tick writes all of them.
        await ticking;
        await runTick().catch((err) => { log.error({ err }, 'last controller tick failed'); });
        await closeAll();
        log.info('stopped');
      })();
      return stopped;
    },
  };
  log.info({ host: config.listen.host, port, io_threads: threads, keys: keys.size, mode: config.policy.mode }, `listening on ${config.listen.host}:${port}`);
  return daemon;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
