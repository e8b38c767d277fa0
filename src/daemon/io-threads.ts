// The I/O threads, seen from the main thread: starts them one after another
// (each a uWS app on the same port, src/io/io-worker.ts, through
// THREAD_BOOTSTRAP), routes their messages, broadcasts to them and stops them.
//
// Threads: runs on the main thread only. Each I/O thread owns its
// connections, leases and waiters; it forwards admin ops (op 16 LIMITS) here,
// `onAdmin` answers them on the main thread (admin.ts), and the answer goes
// back to the same thread. A thread that dies while start() runs makes
// start() fail; one that dies after, other than while stopping, is fatal
// (`onFatal`).
//
// Stop: flag SHUTTING_DOWN in shared memory (new acquires are refused, and a
// thread answering a message stops within 16 requests), ask every I/O thread
// to stop, and wait until each said 'stopped' (its counters are final) or
// exited: then the last tick can be written, from shared memory. That wait is
// bounded (QUIESCE_WAIT_MS): the last tick is written whatever the threads
// are doing. exited() then waits for the threads to exit by themselves.
// No thread is ever terminate()d: tearing down a worker while uWS holds a
// socket aborts the process (uWS: close the listen socket first, see its
// GracefulShutdown example); the threads close their sockets and exit.

import { Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import type { AdminRequest, IoWorkerData, MainToWorker, PolicyRunning, TenantTier, WorkerToMain } from '../io/messages.ts';
import { relayMesh } from '../io/relay-links.ts';
import { SHUTTING_DOWN_INDEX, type ShmViews } from '../shm/layout.ts';
import { configForThreads, type SharedKeys } from '../shm/key-index.ts';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';
import { threadEntry } from '../shm/thread-bundle.ts';
import type { AdminReply } from './admin.ts';
import { IoThreadExitedError, ListenError } from './errors.ts';

const IO_WORKER = new URL('../io/io-worker.ts', import.meta.url).href;
/**
 * The young generation of each I/O thread's heap (V8 splits it in three: two
 * semi-spaces and the new large-object space). V8's default lets the
 * semi-spaces grow to 16 MiB each, and a thread that grew them at start keeps
 * them resident while idle: 16-32 MiB per thread at 100 000 keys. A request
 * allocates next to nothing (the hot path is allocation-free), so 4 MiB
 * semi-spaces only make scavenges more frequent under load, each as cheap
 * (docs/benchmarks.md, "idle keys": throughput measured against the default).
 */
export const IO_YOUNG_GENERATION_MB = 12;
/** How long stop() waits for every thread's 'stopped' before the last tick is written anyway. */
export const QUIESCE_WAIT_MS = 2000;

export interface IoThreadsOptions {
  readonly views: ShmViews;
  readonly bucketCount: number;
  /** The keys every thread views (KeyIndex.shared()); each thread then gets the config without services (configForThreads). */
  readonly keys?: SharedKeys;
  /** The start config: io_threads of them, each given this config. */
  readonly config: TpsdConfig;
  readonly port: number;
  readonly epochHrMs: number;
  readonly startedAtMs: number;
  /** The policy that applies at start (daemon-health.ts). */
  readonly policy: PolicyRunning;
  readonly log: Logger;
  /** Tier assignments of tenants at start (tenant-admin.ts), for every thread. */
  readonly tenantTiers?: readonly TenantTier[];
  /** Per-tenant counters (shm/tenant-counters.ts), for every thread. */
  readonly tenantCounters?: SharedArrayBuffer | null;
  /** Answers an admin request an I/O thread forwarded. */
  readonly onAdmin: (request: AdminRequest) => AdminReply;
  /** An I/O thread died after start() resolved, while not stopping. */
  readonly onFatal: (err: Error) => void;
  /** The module each thread runs (default: src/io/io-worker.ts, bundled by shm/thread-bundle.ts; tests give stand-ins). */
  readonly entry?: string;
}

interface Thread {
  readonly worker: Worker;
  /** Resolves when the thread said 'stopped' or exited. */
  readonly quiet: Promise<void>;
  readonly exited: Promise<void>;
  done: boolean;
}

export class IoThreads {
  private readonly threads: Thread[] = [];
  private stopping = false;
  private started = false;
  /** A thread that died after it listened, while start() was still running. */
  private startFailure: Error | null = null;
  /** The module the threads import: options.entry, or io-worker's bundle (its .ts file when that cannot be made). */
  private entry = '';

  constructor(private readonly options: IoThreadsOptions) {}

  /** Starts the threads one after another; resolves once every one listens, rejects if one cannot or dies meanwhile. */
  async start(): Promise<void> {
    this.entry = this.options.entry ?? await threadEntry(IO_WORKER, (err) =>
      this.options.log.warn({ err }, 'I/O threads run their TypeScript entry (a loader thread each): it could not be bundled'));
    const mesh = relayMesh(this.options.config.io_threads);
    for (let t = 0; t < this.options.config.io_threads && this.startFailure === null; t++) await this.spawn(t, mesh[t]);
    if (this.startFailure !== null) throw this.startFailure;
    this.started = true;
  }

  broadcast(message: MainToWorker): void {
    for (const t of this.threads) if (!t.done) t.worker.postMessage(message);
  }

  /**
   * Flags SHUTTING_DOWN and asks every thread to stop; resolves once each has
   * said 'stopped' or exited (true), or after QUIESCE_WAIT_MS (false).
   */
  async stop(): Promise<boolean> {
    this.stopping = true;
    Atomics.store(this.options.views.header, SHUTTING_DOWN_INDEX, 1);
    this.broadcast({ type: 'stop' });
    const quiet = await waitAll(this.threads.map((t) => t.quiet), QUIESCE_WAIT_MS);
    if (!quiet) this.options.log.error({ running: this.running() }, 'I/O threads did not stop in time; the last tick is written from shared memory anyway');
    return quiet;
  }

  /** Waits up to `timeoutMs` for every thread to exit by itself; false (logged) if one is still running. */
  async exited(timeoutMs: number): Promise<boolean> {
    const all = await waitAll(this.threads.map((t) => t.exited), timeoutMs);
    if (!all) this.options.log.error({ running: this.running() }, 'I/O threads still running at exit (never terminated: that would abort)');
    return all;
  }

  private running(): number[] {
    return this.threads.flatMap((t, i) => (t.done ? [] : [i]));
  }

  /** Starts I/O thread `thread`; resolves with its port once it listens. */
  private spawn(thread: number, relayPorts: (MessagePort | null)[]): Promise<number> {
    const { views, bucketCount, config, port, epochHrMs, startedAtMs, policy, onAdmin } = this.options;
    const workerData: IoWorkerData = {
      entry: this.entry, sab: views.sab, bucketCount, threadCount: config.io_threads, thread,
      tenantSlots: views.layout.tenantSlots, tenantTiers: this.options.tenantTiers ?? [], tenantCounters: this.options.tenantCounters ?? null,
      port, epochHrMs, startedAtMs, policy, relayPorts,
      ...(this.options.keys === undefined ? { config } : { config: configForThreads(config), keys: this.options.keys }),
    };
    const transferList = relayPorts.filter((p): p is MessagePort => p !== null);
    const w = new Worker(THREAD_BOOTSTRAP, {
      workerData, transferList, name: `tpsd-io-${thread}`, resourceLimits: { maxYoungGenerationSizeMb: IO_YOUNG_GENERATION_MB },
    });
    let quieted: () => void = () => {};
    const t: Thread = {
      worker: w, done: false,
      quiet: new Promise<void>((r) => { quieted = r; }),
      exited: new Promise<void>((r) => w.once('exit', () => { t.done = true; quieted(); r(); })),
    };
    this.threads.push(t);
    return new Promise<number>((resolve, reject) => {
      let listening = false;
      w.on('message', (m: WorkerToMain) => {
        if (m.type === 'admin') w.postMessage({ type: 'admin-reply', reqId: m.reqId, ...onAdmin(m.request) } satisfies MainToWorker);
        else if (m.type === 'listening') { listening = true; resolve(m.port); }
        else if (m.type === 'listen-failed') reject(new ListenError(m.host ?? config.listen.host, m.port ?? port, m.reason));
        else if (m.type === 'stopped') quieted();
      });
      w.on('error', (err) => { if (!listening) reject(err); else this.died(err); });
      w.on('exit', (code) => {
        if (!listening) reject(new IoThreadExitedError(thread, code, true));
        else this.died(new IoThreadExitedError(thread, code, false));
      });
    });
  }

  /** A thread that listened has died (or failed): start() fails, or it is fatal, unless we are stopping. */
  private died(err: Error): void {
    if (this.stopping) return;
    if (!this.started) this.startFailure ??= err;
    else this.options.onFatal(err);
  }
}

/** True when every promise resolved within `timeoutMs`. */
async function waitAll(promises: Promise<void>[], timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => { timer = setTimeout(r, timeoutMs, false); });
  try {
    return await Promise.race([Promise.all(promises).then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
