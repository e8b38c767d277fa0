// The daemon's handle, as startDaemon (daemon.ts) returns it to `tpsd start`,
// the tests and the benches.
//
// Threads: main thread only; every member is used from the thread that
// started the daemon.

import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import type { Controller } from '../control/controller.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import type { ShmViews } from '../shm/layout.ts';
import type { LiveLimits } from './live-limits.ts';

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
