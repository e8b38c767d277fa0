// Micro-benchmark of BucketTable.acquire (src/shm/bucket-table.ts), the take
// every ACQUIRE runs: priority gate, concurrency slots, then lazy refill and a
// CAS take on each level of the key's chain, all or nothing; and the
// per-thread allowance that serves repeat takes of a key within one clock
// millisecond without an atomic operation (chunks grabbed from every level).
//
// Cases (one process, one table):
//   - acquire on an endpoint key (3 levels: endpoint, service, pool);
//   - acquire on a service key (2 levels);
//   - acquire + release of the slot on an endpoint whose service has a
//     concurrency limit (set far above what the loop holds, so it never
//     fails): such keys bypass allowances, so this is the single-take path,
//     three CAS takes and a slot CAS and release per lease;
//   - 2 worker threads acquiring at once, on two endpoints of one pool and on
//     the same endpoint (total ops/s of both threads; see bucket-take-worker.ts);
//   - the cost of borrowing: single takes (a LOW waiter registered at the
//     pool turns chunks off and binds neither) on a service key served from
//     its assured bucket, and on a service assured of nothing, so that every
//     take borrows (its ceiling and the pool's shared bucket, then the gate).
// The pool's gate is the default one, a sliding 1 s window of its capacity.
// `now` is read once per batch, as the daemon reads it once per message, so
// all but the first few takes of a batch are served from the allowance (in the
// first three cases; each worker thread has its own).
// Baselines, same trial:
//   - a plain single-threaded JS token bucket, same process (Float64Array
//     tokens, no atomics, lazy refill, the same all-or-nothing walk up a 3- or
//     2-level chain; no priority gate, no concurrency slots, no allowance);
//   - the C11 reference (bucket-take-ref.c): the same algorithm, allowances
//     included, on the same layout with <stdatomic.h>, built with cc at run
//     time and run right after the JS cases as a child process, for all five
//     cases. Target: the JS take at least 0.3x the C reference.
//
// Every bucket gets the largest rate and burst the layout allows, and the
// loops never refund: each batch (at most MAX_BATCH takes of one token, well
// under the burst) is followed by a top-up of the chain, and a batch in which
// any take fails throws.
//
// Run: node --import tsx native-bench/bucket-take.ts [--json] [--seconds S]

import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolConfig } from '../src/config/types.ts';
import { BucketTable, GRANTED } from '../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../src/shm/clock.ts';
import { KeyIndex } from '../src/shm/key-index.ts';
import { MAX_TOKENS, MILLI, PACE_OFFSET, TOKENS_MILLI_INDEX, allocateShm, stateBase } from '../src/shm/layout.ts';
import { buildReference, runReference } from './c-reference.ts';
import { type CaseResult, benchArgs, lastCpuOpsPerSec, measure, report } from './harness.ts';
import {
  CONTROL_FIELDS, PHASE_INDEX, PHASE_MEASURE, PHASE_STOP, type TakeWorkerData, type TakeWorkerMessage,
} from './bucket-take-worker.ts';
import { THREAD_BOOTSTRAP } from '../src/shm/threads.ts';

const WORKER_ENTRY = new URL('./bucket-take-worker.ts', import.meta.url).href;
/** Takes of 1 token per batch: 200k x 1000 milli = 10% of a 2M-token burst. */
const MAX_BATCH = 200_000;
/** Counter blocks: 0 for this thread, 1 and 2 for the workers (the C reference divides allowances by the same 3). */
const THREADS = 3;
/** Service c's concurrency limit (as in the C reference): never reached, each lease is released at once. */
const CONCURRENCY_LIMIT = 1_000_000;

const endpoint = (name: string) => ({ name, max_tps: 1000, burst: 50, concurrency: 0 });
const POOLS: PoolConfig[] = [{
  name: 'bench', capacity_tps: 1000, burst: 50, upstream: { window: 'sliding_1s', slo_ms: null, timeout_ms: null },
  services: [
    { name: 'a', priority: 'HIGH', min_tps: 0, max_tps: 1000, burst: 50, concurrency: 0, endpoints: [endpoint('x'), endpoint('y')] },
    { name: 'b', priority: 'HIGH', min_tps: 0, max_tps: 1000, burst: 50, concurrency: 0, endpoints: [endpoint('x')] },
    { name: 'c', priority: 'HIGH', min_tps: 0, max_tps: 1000, burst: 50, concurrency: CONCURRENCY_LIMIT, endpoints: [endpoint('x')] },
    { name: 'd', priority: 'HIGH', min_tps: 0, max_tps: 1000, burst: 50, concurrency: 0, endpoints: [] },
  ],
}];

const args = benchArgs();
const keys = new KeyIndex(POOLS);
const epochHrMs = hrtimeMs();
const clock = createClock(epochHrMs);
const views = allocateShm(keys.size, THREADS);
BucketTable.initialize(views, keys, clock.nowMs());
const table = new BucketTable(views, clock, 0);
for (const spec of keys.specs) {
  table.setRate(spec.index, MAX_TOKENS, clock.nowMs());
  table.setBurst(spec.index, MAX_TOKENS);
  // A service's ceiling, which every take of it passes (the controller writes it at max_tps).
  if (spec.depth === 1) table.setLoan(spec.index, MAX_TOKENS, MAX_TOKENS, clock.nowMs());
}

// bench/d is assured nothing and may borrow everything: every take on it borrows.
const BORROWER = keys.lookup('bench/d');
const POOL = keys.lookup('bench');
table.setRate(BORROWER, 0, clock.nowMs());
views.state[stateBase(BORROWER) + TOKENS_MILLI_INDEX] = 0; // its assured bucket starts (and stays) empty
table.setLoan(BORROWER, MAX_TOKENS, MAX_TOKENS, clock.nowMs());
table.setLoan(POOL, MAX_TOKENS, MAX_TOKENS, clock.nowMs());
views.state[stateBase(POOL) + PACE_OFFSET + TOKENS_MILLI_INDEX] = MAX_TOKENS * MILLI; // the window gate's pace starts full

const ENDPOINT = keys.lookup('bench/a/x');
const ENDPOINT_2 = keys.lookup('bench/b/x');
const SERVICE = keys.lookup('bench/a');
const LIMITED = keys.lookup('bench/c/x');
const PRIORITY = keys.specs[ENDPOINT].priority;

function chainOf(leaf: number): number[] {
  const chain: number[] = [];
  for (let b = leaf; b >= 0; b = keys.specs[b].parent) chain.push(b);
  return chain;
}

function checkGranted(granted: number, n: number, what: string): void {
  if (granted !== n) throw new Error(`${what}: ${n - granted} of ${n} takes failed; the benchmark needs every take to succeed`);
}

/**
 * n takes on `leaf`. One top-level function for every key, the leaf a
 * parameter: with the loop inside a closure made once per key from one
 * literal, whichever acquire case ran second measured about 2x slower (V8
 * optimizes the later closures of a shared literal less well).
 */
function acquireLoop(leaf: number, n: number): number {
  const now = clock.nowMs();
  let granted = 0;
  for (let i = 0; i < n; i++) if (table.acquire(leaf, MILLI, PRIORITY, false, now) === GRANTED) granted++;
  return granted;
}

function acquireCase(leaf: number): (n: number) => number {
  const chain = chainOf(leaf);
  return (n) => {
    const granted = acquireLoop(leaf, n);
    checkGranted(granted, n, 'BucketTable.acquire');
    for (const b of chain) table.refund(b, MAX_TOKENS * MILLI);
    return granted;
  };
}

/** Acquire + release on a key under a concurrency limit: the single-take path. */
function limitedCase(leaf: number): (n: number) => number {
  const chain = chainOf(leaf);
  return (n) => {
    const now = clock.nowMs();
    let granted = 0;
    for (let i = 0; i < n; i++) {
      if (table.acquire(leaf, MILLI, PRIORITY, false, now) === GRANTED) granted++;
      table.releaseSlots(leaf, table.lastSlotMask);
    }
    checkGranted(granted, n, 'BucketTable.acquire (concurrency limit)');
    for (const b of chain) table.refund(b, MAX_TOKENS * MILLI);
    return granted;
  };
}

/**
 * Single takes on a service key (no chunk: a LOW waiter is registered at the
 * pool while the loop runs; it binds neither an assured take nor a HIGH
 * borrower), given back after each batch to where they came from.
 */
function singleCase(leaf: number, borrowed: boolean): (n: number) => number {
  return (n) => {
    table.markWaiter(POOL, 3, 1);
    const now = clock.nowMs();
    let granted = 0;
    for (let i = 0; i < n; i++) if (table.acquire(leaf, MILLI, PRIORITY, false, now) === GRANTED) granted++;
    table.markWaiter(POOL, 3, -1);
    checkGranted(granted, n, borrowed ? 'BucketTable.acquire (borrowing)' : 'BucketTable.acquire (assured, single)');
    if (table.lastBorrowed !== borrowed) throw new Error(`expected takes that ${borrowed ? '' : 'do not '}borrow`);
    table.refundChain(leaf, n * MILLI, borrowed);
    return granted;
  };
}

/** The reference: a plain single-threaded token bucket over the same key tree. */
class PlainBuckets {
  readonly tokens: Float64Array;
  readonly lastMs: Float64Array;
  readonly ratePerMs: Float64Array;
  readonly burst: Float64Array;
  /** chains[b * 3 + i]: i-th bucket from b up to its pool; -1 pads. */
  readonly chains: Int32Array;

  constructor(specs: KeyIndex['specs'], rateTps: number, burst: number, nowMs: number) {
    const n = specs.length;
    this.tokens = new Float64Array(n).fill(burst);
    this.lastMs = new Float64Array(n).fill(nowMs);
    this.ratePerMs = new Float64Array(n).fill(rateTps / 1000);
    this.burst = new Float64Array(n).fill(burst);
    this.chains = new Int32Array(n * 3).fill(-1);
    for (const s of specs) {
      let cur = s.index;
      for (let i = 0; i < 3 && cur >= 0; i++) { this.chains[s.index * 3 + i] = cur; cur = specs[cur].parent; }
    }
  }

  take(leaf: number, tokens: number, now: number): boolean {
    const c = leaf * 3;
    for (let i = 0; i < 3; i++) {
      const b = this.chains[c + i];
      if (b < 0) break;
      const elapsed = now - this.lastMs[b];
      if (elapsed > 0) {
        this.lastMs[b] = now;
        this.tokens[b] = Math.min(this.burst[b], this.tokens[b] + elapsed * this.ratePerMs[b]);
      }
      if (this.tokens[b] < tokens) {
        for (let j = 0; j < i; j++) this.tokens[this.chains[c + j]] += tokens;
        return false;
      }
      this.tokens[b] -= tokens;
    }
    return true;
  }

  fill(leaf: number): void {
    for (let i = 0; i < 3; i++) {
      const b = this.chains[leaf * 3 + i];
      if (b >= 0) this.tokens[b] = this.burst[b];
    }
  }
}

function plainCase(leaf: number): (n: number) => number {
  const plain = new PlainBuckets(keys.specs, MAX_TOKENS, MAX_TOKENS, clock.nowMs());
  return (n) => {
    const now = clock.nowMs();
    let granted = 0;
    for (let i = 0; i < n; i++) if (plain.take(leaf, 1, now)) granted++;
    checkGranted(granted, n, 'plain bucket');
    plain.fill(leaf);
    return granted;
  };
}

/** Total ops/s of two worker threads acquiring on `leaves` at once. */
async function contention(leaves: [number, number], seconds: number): Promise<number> {
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_FIELDS * Int32Array.BYTES_PER_ELEMENT));
  const results: Promise<TakeWorkerMessage & { type: 'done' }>[] = [];
  const ready: Promise<void>[] = [];
  leaves.forEach((leaf, i) => {
    const workerData: TakeWorkerData = {
      entry: WORKER_ENTRY, sab: views.sab, bucketCount: keys.size, threadCount: THREADS, thread: i + 1,
      leaf, priority: keys.specs[leaf].priority, epochHrMs, control: control.buffer as SharedArrayBuffer,
    };
    const w = new Worker(THREAD_BOOTSTRAP, { workerData, name: `bench-take-${i}` });
    ready.push(new Promise((resolve, reject) => {
      w.on('message', (m: TakeWorkerMessage) => { if (m.type === 'ready') resolve(); });
      w.once('error', reject);
    }));
    results.push(new Promise((resolve, reject) => {
      w.on('message', (m: TakeWorkerMessage) => { if (m.type === 'done') resolve(m); });
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`worker exited with code ${code} before reporting`)));
    }));
  });
  await Promise.all(ready);
  await sleep(Math.max(200, seconds * 300)); // warm-up
  Atomics.store(control, PHASE_INDEX, PHASE_MEASURE);
  await sleep(seconds * 1000);
  Atomics.store(control, PHASE_INDEX, PHASE_STOP);
  let total = 0;
  for (const r of await Promise.all(results)) {
    if (r.failures > 0) throw new Error(`contention: ${r.failures} takes failed`);
    total += r.ops / r.seconds;
  }
  return total;
}

const EP = 'BucketTable.acquire, endpoint (3 levels)';
const SVC = 'BucketTable.acquire, service (2 levels)';
const LIM = 'BucketTable.acquire + release, endpoint under a concurrency limit (3 levels, single take)';
const TWO = 'BucketTable.acquire, 2 threads, 2 endpoints of 1 pool (total)';
const SAME = 'BucketTable.acquire, 2 threads, same endpoint (total)';
const SINGLE = 'BucketTable.acquire, service (2 levels), single take from its assured bucket';
const BORROW = 'BucketTable.acquire, service (2 levels), single take borrowing (ceiling + shared bucket)';
const C_EP = 'C11 atomics reference, 3 levels';
const vsC = (baseline: string) => ({ text: 'at least 0.3x the C11 reference', baseline, minRatio: 0.3 });
const cases: CaseResult[] = [
  { case: EP, opsPerSec: measure(acquireCase(ENDPOINT), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false, target: vsC(C_EP) },
  { case: SVC, opsPerSec: measure(acquireCase(SERVICE), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  {
    case: 'plain JS bucket, 3 levels', opsPerSec: measure(plainCase(ENDPOINT), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(),
    baseline: true, baselineOf: EP,
  },
  {
    case: 'plain JS bucket, 2 levels', opsPerSec: measure(plainCase(SERVICE), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(),
    baseline: true, baselineOf: SVC,
  },
  { case: LIM, opsPerSec: measure(limitedCase(LIMITED), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  {
    case: SINGLE, opsPerSec: measure(singleCase(SERVICE, false), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(),
    baseline: true, baselineOf: BORROW,
  },
  { case: BORROW, opsPerSec: measure(singleCase(BORROWER, true), args.seconds, MAX_BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  { case: TWO, opsPerSec: await contention([ENDPOINT, ENDPOINT_2], args.seconds), baseline: false },
  { case: SAME, opsPerSec: await contention([ENDPOINT, ENDPOINT], args.seconds), baseline: false },
];

const ref = buildReference('./bucket-take-ref.c');
if (ref !== null) {
  type Rates = Record<'endpoint' | 'service' | 'limited' | 'twoEndpoints' | 'sameEndpoint' | 'endpointCpu' | 'serviceCpu' | 'limitedCpu', number>;
  const c = runReference<Rates>(ref, [String(args.seconds)]);
  cases.push(
    { case: C_EP, opsPerSec: c.endpoint, cpuOpsPerSec: c.endpointCpu, baseline: true, baselineOf: EP },
    { case: 'C11 atomics reference, 2 levels', opsPerSec: c.service, cpuOpsPerSec: c.serviceCpu, baseline: true, baselineOf: SVC },
    {
      case: 'C11 atomics reference, acquire + release under a concurrency limit', opsPerSec: c.limited, cpuOpsPerSec: c.limitedCpu,
      baseline: true, baselineOf: LIM,
    },
    { case: 'C11 atomics reference, 2 threads, 2 endpoints of 1 pool (total)', opsPerSec: c.twoEndpoints, baseline: true, baselineOf: TWO },
    { case: 'C11 atomics reference, 2 threads, same endpoint (total)', opsPerSec: c.sameEndpoint, baseline: true, baselineOf: SAME },
  );
}
report({ name: 'bucket-take', cases }, args);
