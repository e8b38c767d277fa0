// Reloads the PPO model when its file changes (`tpsd model promote` writes it
// with a rename), so a promotion needs no SIGHUP. Polls the file's stat once a
// second with fs.watchFile (libuv's fs-poll: the stat runs in the thread pool,
// never blocking the tick; a rename over the file is a new inode, which
// fs.watch on Linux can miss once the old inode is gone). A file that goes
// away, or one that does not validate, leaves the running model in place
// (controller.reloadModel logs why); a good one is registered in the
// database's model registry like a SIGHUP reload.
//
// Threads: main thread only (the controller and the database are its).

import { unwatchFile, watchFile, type Stats } from 'node:fs';
import type { Logger } from '../config/log.ts';
import type { ModelReload } from '../control/model-source.ts';

export const MODEL_WATCH_INTERVAL_MS = 1000;

export class ModelWatch {
  private busy: Promise<void> | null = null;
  private again = false;
  private readonly listener = (cur: Stats, prev: Stats): void => this.changed(cur, prev);

  constructor(
    readonly path: string,
    private readonly reload: () => Promise<ModelReload>,
    private readonly log: Logger,
    private readonly intervalMs = MODEL_WATCH_INTERVAL_MS,
  ) {}

  start(): void {
    watchFile(this.path, { interval: this.intervalMs, persistent: false }, this.listener);
  }

  stop(): void {
    unwatchFile(this.path, this.listener);
  }

  /** Resolves when no reload is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.busy !== null) await this.busy;
  }

  private changed(cur: Stats, prev: Stats): void {
    if (cur.nlink === 0) { this.log.warn({ model: this.path }, 'model file removed; keeping the running model'); return; }
    if (cur.ino === prev.ino && cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
    if (this.busy !== null) { this.again = true; return; }
    this.busy = this.run().finally(() => { this.busy = null; });
  }

  /** One reload at a time; a change seen during one makes one more. */
  private async run(): Promise<void> {
    do {
      this.again = false;
      try {
        const r = await this.reload();
        this.log.info({ model: this.path, version: r.version, ok: r.ok }, r.ok ? 'model file changed: reloaded' : 'model file changed: unusable, kept the running model');
      } catch (err) {
        this.log.error({ err, model: this.path }, 'model reload failed');
      }
    } while (this.again);
  }
}
