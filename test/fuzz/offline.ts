// Runs the offline fuzz (fuzz-worker.ts) in a worker thread under a
// watchdog: a message that makes the decoder or the handler loop, or kills
// the thread (out of memory, a native abort turned into an error), ends the
// run with the message's index and bytes instead of hanging the caller.

import { Worker } from 'node:worker_threads';
import type { FuzzWorkerData, OfflineStats } from './fuzz-worker.ts';
import { THREAD_BOOTSTRAP } from '../../src/shm/threads.ts';

const ENTRY = new URL('./fuzz-worker.ts', import.meta.url).href;
const CURRENT_BYTES = 8 + 128 * 1024;

export interface OfflineOptions {
  frames: number;
  /** Messages (the first ones) also fed to the handler harness; default all. */
  handlerFrames?: number;
  seed: number;
  includeKnownBugs?: boolean;
  /** No progress for this long is a hang (default 15 s). */
  stallMs?: number;
  onProgress?: (done: number) => void;
}

export interface OfflineResult {
  stats: OfflineStats | null;
  /** A hang or a crash: what happened, on which message. */
  crash: { what: string; index: number; hex: string } | null;
}

export function runOfflineFuzz(o: OfflineOptions): Promise<OfflineResult> {
  const current = new SharedArrayBuffer(CURRENT_BYTES);
  const head = new Int32Array(current, 0, 2);
  const workerData: FuzzWorkerData = { entry: ENTRY, frames: o.frames, handlerFrames: o.handlerFrames ?? o.frames, seed: o.seed, includeKnownBugs: o.includeKnownBugs ?? false, current };
  const worker = new Worker(THREAD_BOOTSTRAP, { workerData, resourceLimits: { maxOldGenerationSizeMb: 768 } });
  const stallMs = o.stallMs ?? 15_000;
  const culprit = (what: string) => {
    const len = head[1];
    const hex = Buffer.from(new Uint8Array(current, 8, Math.min(len, 512))).toString('hex') + (len > 512 ? `... (${len} bytes)` : '');
    return { what, index: Atomics.load(head, 0), hex };
  };
  return new Promise((resolve) => {
    let last = -1, lastChange = Date.now(), settled = false;
    const finish = (r: OfflineResult) => { if (!settled) { settled = true; clearInterval(watch); resolve(r); } };
    const watch = setInterval(() => {
      const now = Atomics.load(head, 0);
      if (now !== last) { last = now; lastChange = Date.now(); return; }
      if (Date.now() - lastChange > stallMs) {
        const c = culprit(`no progress for ${stallMs} ms (hang)`);
        void worker.terminate();
        finish({ stats: null, crash: c });
      }
    }, 250);
    worker.on('message', (m: { type: 'progress'; done: number } | { type: 'done'; stats: OfflineStats }) => {
      if (m.type === 'progress') o.onProgress?.(m.done);
      else finish({ stats: m.stats, crash: null });
    });
    worker.on('error', (err) => finish({ stats: null, crash: culprit(`worker died: ${err.message}`) }));
    worker.on('exit', (code) => finish({ stats: null, crash: culprit(`worker exited with code ${code} before finishing`) }));
  });
}
