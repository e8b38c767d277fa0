// Thread entry of the 2-thread contention case of bucket-take.ts: one worker
// thread that hammers BucketTable.acquire on one key of a shared table.
//
// Threads: bucket-take.ts (main) allocates the shared buffer, sets the rates
// and starts the workers through src/thread-bootstrap.mjs (which registers the
// TypeScript loader and imports workerData.entry, this file). Each worker takes
// from its own key; the keys share a pool (or are the same key), so the workers
// contend on the CAS loops of the shared buckets when they grab chunks for
// their allowances (each worker's BucketTable has its own; `now` is read once
// per batch, so most takes are served from it). Main steers the phases
// through one Int32 in a second shared buffer: WARMUP -> MEASURE -> STOP. A
// worker counts the operations it completes between seeing MEASURE and seeing
// STOP, times that window itself and posts { ops, seconds, failures } to main.
// Nothing waits: workers spin on their batches and poll the phase between them.
//
// Imported from the main thread, this module only provides the constants and
// types below.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BucketTable, GRANTED } from '../src/shm/bucket-table.ts';
import { createClock } from '../src/shm/clock.ts';
import { MAX_TOKENS, MILLI, viewsOf } from '../src/shm/layout.ts';

export const PHASE_INDEX = 0;
export const CONTROL_FIELDS = 1;
export const PHASE_WARMUP = 0;
export const PHASE_MEASURE = 1;
export const PHASE_STOP = 2;

export interface TakeWorkerData {
  /** Module the bootstrap loads: this file's URL. */
  readonly entry: string;
  readonly sab: SharedArrayBuffer;
  readonly bucketCount: number;
  readonly threadCount: number;
  /** This worker's counter block in the table. */
  readonly thread: number;
  readonly leaf: number;
  readonly priority: number;
  readonly epochHrMs: number;
  /** Int32 x CONTROL_FIELDS: the phase. */
  readonly control: SharedArrayBuffer;
}

export type TakeWorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly ops: number; readonly seconds: number; readonly failures: number };

/** Acquires per batch: small, so the phase is seen within a millisecond or so. */
const BATCH = 16_384;

function main(data: TakeWorkerData): void {
  const views = viewsOf(data.sab, data.bucketCount, data.threadCount);
  const clock = createClock(data.epochHrMs);
  const table = new BucketTable(views, clock, data.thread);
  const control = new Int32Array(data.control);
  const chain: number[] = [];
  for (let b = data.leaf; b >= 0; b = table.parent(b)) chain.push(b);
  const { leaf, priority } = data;
  const post = (m: TakeWorkerMessage) => parentPort!.postMessage(m);

  post({ type: 'ready' });
  let phase = PHASE_WARMUP;
  let ops = 0;
  let failures = 0;
  let start = 0;
  while (phase !== PHASE_STOP) {
    const now = clock.nowMs();
    let granted = 0;
    for (let i = 0; i < BATCH; i++) {
      if (table.acquire(leaf, MILLI, priority, false, now) === GRANTED) granted++;
    }
    // Top the chain up again (refund clamps at the burst), so takes keep succeeding.
    for (const b of chain) table.refund(b, MAX_TOKENS * MILLI);
    if (phase === PHASE_MEASURE) { ops += BATCH; failures += BATCH - granted; }
    const next = Atomics.load(control, PHASE_INDEX);
    if (next === PHASE_MEASURE && phase === PHASE_WARMUP) start = performance.now();
    if (next === PHASE_STOP && phase === PHASE_WARMUP) throw new Error('stopped before measuring');
    phase = next;
  }
  post({ type: 'done', ops, seconds: (performance.now() - start) / 1000, failures });
}

if (!isMainThread && parentPort) main(workerData as TakeWorkerData);
