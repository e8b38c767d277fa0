// The I/O threads, seen from the main thread: starts them one after another
// (each a uWS app on the same port, src/io/io-worker.ts, through
// THREAD_BOOTSTRAP), routes their messages, broadcasts to them and stops them.
//
// Threads: runs on the main thread only. Each I/O thread owns its
// connections, leases and waiters; it forwards admin ops (op 16 LIMITS) here,
// `onAdmin` answers them on the main thread (admin.ts), and the answer goes
// back to the same thread. A thread that dies after it listened, other than
// while stopping, is fatal (`onFatal`).
//
// Stop: flag SHUTTING_DOWN in shared memory (new acquires are refused), ask
// every I/O thread to close its listen socket, answer its waiters
// SHUTTING_DOWN and close its connections, and wait for the threads to exit;
// the ones still running after STOP_TIMEOUT_MS are terminated.

import { Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import type { AdminRequest, IoWorkerData, MainToWorker, WorkerToMain } from '../io/messages.ts';
import { relayMesh } from '../io/relay-links.ts';
import { SHUTTING_DOWN_INDEX, type ShmViews } from '../shm/layout.ts';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';
import type { AdminReply } from './admin.ts';
import { IoThreadExitedError, ListenError } from './errors.ts';

const IO_WORKER = new URL('../io/io-worker.ts', import.meta.url).href;
const STOP_TIMEOUT_MS = 4000;

export interface IoThreadsOptions {
  readonly views: ShmViews;
  readonly bucketCount: number;
  /** The start config: io_threads of them, each given this config. */
  readonly config: TpsdConfig;
  readonly port: number;
  readonly epochHrMs: number;
  readonly startedAtMs: number;
  readonly log: Logger;
  /** Answers an admin request an I/O thread forwarded. */
  readonly onAdmin: (request: AdminRequest) => AdminReply;
  /** An I/O thread died after it listened, while not stopping. */
  readonly onFatal: (err: Error) => void;
}

export class IoThreads {
  private readonly workers: Worker[] = [];
  private readonly exited: Promise<void>[] = [];
  private stopping = false;

  constructor(private readonly options: IoThreadsOptions) {}

  /** Starts the threads one after another; resolves once every one listens, rejects if one cannot. */
  async start(): Promise<void> {
    const mesh = relayMesh(this.options.config.io_threads);
    for (let t = 0; t < this.options.config.io_threads; t++) await this.spawn(t, mesh[t]);
  }

  broadcast(message: MainToWorker): void {
    for (const w of this.workers) w.postMessage(message);
  }

  /** Stops every thread started (see the header); resolves when they have exited or were terminated. */
  async stop(): Promise<void> {
    this.stopping = true;
    Atomics.store(this.options.views.header, SHUTTING_DOWN_INDEX, 1);
    this.broadcast({ type: 'stop' });
    const timeout = new Promise<'timeout'>((r) => setTimeout(r, STOP_TIMEOUT_MS, 'timeout').unref());
    if (await Promise.race([Promise.all(this.exited), timeout]) === 'timeout') {
      this.options.log.warn('I/O threads did not exit in time; terminating them');
      await Promise.all(this.workers.map((w) => w.terminate()));
    }
  }

  /** Starts I/O thread `thread`; resolves with its port once it listens. */
  private spawn(thread: number, relayPorts: (MessagePort | null)[]): Promise<number> {
    const { views, bucketCount, config, port, epochHrMs, startedAtMs, onAdmin, onFatal } = this.options;
    return new Promise<number>((resolve, reject) => {
      const workerData: IoWorkerData = {
        entry: IO_WORKER, sab: views.sab, bucketCount, threadCount: config.io_threads, thread,
        config, port, epochHrMs, startedAtMs, relayPorts,
      };
      const transferList = relayPorts.filter((p): p is MessagePort => p !== null);
      const w = new Worker(THREAD_BOOTSTRAP, { workerData, transferList, name: `tpsd-io-${thread}` });
      this.workers.push(w);
      let listening = false;
      this.exited.push(new Promise((done) => w.once('exit', () => done())));
      w.on('message', (m: WorkerToMain) => {
        if (m.type === 'admin') w.postMessage({ type: 'admin-reply', reqId: m.reqId, ...onAdmin(m.request) } satisfies MainToWorker);
        else if (m.type === 'listening') { listening = true; resolve(m.port); }
        else if (m.type === 'listen-failed') reject(new ListenError(m.host ?? config.listen.host, m.port ?? port, m.reason));
      });
      w.on('error', (err) => {
        if (!listening) reject(err);
        else if (!this.stopping) onFatal(err);
      });
      w.on('exit', (code) => {
        if (!listening) reject(new IoThreadExitedError(thread, code, true));
        else if (!this.stopping) onFatal(new IoThreadExitedError(thread, code, false));
      });
    });
  }
}
