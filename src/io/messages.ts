// Typed messages between the main thread and the I/O worker threads.

import type { TpsdConfig } from '../config/types.ts';

/** Given to each I/O worker at start. */
export interface IoWorkerData {
  /** Module the bootstrap loads (see thread-bootstrap.mjs). */
  readonly entry: string;
  readonly sab: SharedArrayBuffer;
  readonly bucketCount: number;
  readonly threadCount: number;
  readonly thread: number;
  readonly config: TpsdConfig;
  readonly port: number;
  readonly epochHrMs: number;
  readonly startedAtMs: number;
}

export type MainToWorker =
  /** Stop: close the listen socket, answer waiters SHUTTING_DOWN, close connections. */
  | { readonly type: 'stop' }
  /** A reloaded config with the same key set (SIGHUP). */
  | { readonly type: 'config'; readonly config: TpsdConfig };

export type WorkerToMain =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'listen-failed'; readonly message: string }
  | { readonly type: 'stopped'; readonly connectionsClosed: number };
