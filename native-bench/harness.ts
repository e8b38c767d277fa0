// Shared plumbing of the micro-benchmarks in native-bench/: argument parsing,
// the measuring loop and the result format that run.ts collects.
//
// A benchmark file is a program: `node --import tsx native-bench/<file>.ts`
// prints readable lines, `--json` prints one JSON object on stdout (nothing
// else goes to stdout then), `--seconds S` sets the measured time per case.
// run.ts starts each trial in a fresh process, so no case inherits another
// trial's JIT state or heap.
//
// A case is a function `run(n)` that does n operations in its own loop and
// returns a number derived from the work (summed into a sink that is checked at
// the end, so the optimizer cannot drop the loop). measure() grows n until one
// call takes a few milliseconds, warms up, then calls run(n) back to back for
// the measured time; the timer is read once per call, never per operation.

import { parseArgs } from 'node:util';

export interface CaseResult {
  case: string;
  /** Operations per second of wall-clock time. */
  opsPerSec: number;
  /**
   * Operations per second of this process's CPU time over the same loop
   * (lastCpuOpsPerSec() right after measure()): what an operation costs when
   * the machine is shared and the thread does not get a whole core.
   */
  cpuOpsPerSec?: number;
  /** True for a reference implementation measured beside tpsd's code. */
  baseline: boolean;
  /** The case this baseline is the reference for (baselines only). */
  baselineOf?: string;
  /** A target from the issue, checked by run.ts on the median over trials. */
  target?: CaseTarget;
}

/** Either at least `minRatio` times the ops/s of `baseline` (same trial), or at most `maxUsPerOp` per operation (CPU time where measured). */
export interface CaseTarget {
  text: string;
  baseline?: string;
  minRatio?: number;
  maxUsPerOp?: number;
}

export interface BenchResult {
  name: string;
  cases: CaseResult[];
}

export interface BenchArgs {
  json: boolean;
  /** Measured time per case, seconds. */
  seconds: number;
}

export function benchArgs(): BenchArgs {
  const { values } = parseArgs({
    options: { json: { type: 'boolean', default: false }, seconds: { type: 'string', default: '1' } },
    strict: true,
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
  return { json: values.json ?? false, seconds };
}

const TARGET_BATCH_MS = 10;
const MIN_WARMUP_MS = 200;

let sink = 0;
let lastCpu = NaN;

/** Ops per CPU-second of the last measure()/measureAsync() loop (process CPU time: this thread plus V8's helpers). */
export function lastCpuOpsPerSec(): number { return lastCpu; }

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Adds a result to the sink (for work measured outside measure()). */
export function consume(v: number): void { sink += v; }

/**
 * Operations per second of `run`, which does n units of work per call, each
 * counting as `opsPerUnit` operations (e.g. 64 requests per decoded message).
 * `maxBatch` caps n (for cases whose state lasts only so many units).
 */
export function measure(run: (n: number) => number, seconds: number, maxBatch = 1 << 24, opsPerUnit = 1): number {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    sink += run(n);
    if (performance.now() - t0 >= TARGET_BATCH_MS / 2 || n >= maxBatch) break;
    n = Math.min(maxBatch, n * 2);
  }
  const warmEnd = performance.now() + Math.max(MIN_WARMUP_MS, seconds * 300);
  while (performance.now() < warmEnd) sink += run(n);
  // Re-size the batch now that the code is optimized.
  const t0 = performance.now();
  sink += run(n);
  const perOpMs = (performance.now() - t0) / n;
  n = Math.max(1, Math.min(maxBatch, Math.round(TARGET_BATCH_MS / Math.max(perOpMs, 1e-9))));

  let ops = 0;
  const cpu0 = cpuSeconds();
  const start = performance.now();
  let end = start;
  do {
    sink += run(n);
    ops += n;
    end = performance.now();
  } while (end - start < seconds * 1000);
  lastCpu = (ops * opsPerUnit) / Math.max(1e-9, cpuSeconds() - cpu0);
  return (ops * opsPerUnit) / ((end - start) / 1000);
}

/** One case's figures from measureInterleaved(). */
export interface InterleavedResult {
  /** Operations per second of wall-clock time, over all its slices. */
  opsPerSec: number;
  /** Operations per second of process CPU time, over all its slices. */
  cpuOpsPerSec: number;
  /** Per cycle: ops per CPU-second in that cycle's slice (its ratio to another case's of the same cycle is a paired sample). */
  cycleCpuOpsPerSec: number[];
}

/**
 * Several cases measured side by side in short interleaved slices: each
 * cycle runs every case once for about `sliceMs` (case 1, case 2, ...,
 * then again) until `seconds` have passed, and each case's figures sum its
 * slices. On a shared machine a slow spell then falls on every case within
 * a few tens of milliseconds, instead of on whichever case ran during it
 * (measure() once per case, or a few rounds of it, left ratios between
 * cases of one process anywhere from 0.3x to 2.7x at load 13 on 2 CPUs).
 * Each case is sized and warmed up first, as measure() does.
 */
export function measureInterleaved(runs: readonly ((n: number) => number)[], seconds: number, opsPerUnit = 1, maxBatch = 1 << 24,
  sliceMs = 5): InterleavedResult[] {
  const sizes = runs.map((run) => {
    let n = 1;
    for (;;) {
      const t0 = performance.now();
      sink += run(n);
      if (performance.now() - t0 >= sliceMs / 2 || n >= maxBatch) break;
      n = Math.min(maxBatch, n * 2);
    }
    return n;
  });
  const warmEnd = performance.now() + Math.max(MIN_WARMUP_MS, seconds * 300);
  while (performance.now() < warmEnd) for (let c = 0; c < runs.length; c++) sink += runs[c](sizes[c]);
  for (let c = 0; c < runs.length; c++) { // re-size now that the code is optimized
    const t0 = performance.now();
    sink += runs[c](sizes[c]);
    const perUnitMs = (performance.now() - t0) / sizes[c];
    sizes[c] = Math.max(1, Math.min(maxBatch, Math.round(sliceMs / Math.max(perUnitMs, 1e-9))));
  }
  const wallMs = runs.map(() => 0);
  const cpuS = runs.map(() => 0);
  const units = runs.map(() => 0);
  const cycles: number[][] = runs.map(() => []);
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let c = 0; c < runs.length; c++) {
      const cpu0 = cpuSeconds();
      const t0 = performance.now();
      sink += runs[c](sizes[c]);
      const wall = performance.now() - t0;
      const cpu = cpuSeconds() - cpu0;
      wallMs[c] += wall;
      cpuS[c] += cpu;
      units[c] += sizes[c];
      cycles[c].push((sizes[c] * opsPerUnit) / Math.max(1e-9, cpu));
    }
  }
  return runs.map((_, c) => ({
    opsPerSec: (units[c] * opsPerUnit) / (wallMs[c] / 1000),
    cpuOpsPerSec: (units[c] * opsPerUnit) / Math.max(1e-9, cpuS[c]),
    cycleCpuOpsPerSec: cycles[c],
  }));
}

/**
 * measure() for an asynchronous operation (e.g. Controller.tick): `run()` does
 * one operation; calls are awaited one after the other, so the figure is the
 * latency of one operation, as the daemon would see it.
 */
export async function measureAsync(run: () => Promise<number>, seconds: number): Promise<number> {
  const warmEnd = performance.now() + Math.max(MIN_WARMUP_MS, seconds * 300);
  while (performance.now() < warmEnd) sink += await run();
  let ops = 0;
  const cpu0 = cpuSeconds();
  const start = performance.now();
  let end = start;
  do {
    sink += await run();
    ops++;
    end = performance.now();
  } while (end - start < seconds * 1000);
  lastCpu = ops / Math.max(1e-9, cpuSeconds() - cpu0);
  return ops / ((end - start) / 1000);
}

/** Prints the result: one JSON object with --json, readable lines otherwise. */
export function report(result: BenchResult, args: BenchArgs): void {
  if (Number.isNaN(sink)) process.stderr.write('sink is NaN\n'); // keeps the sink alive
  if (args.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const width = Math.max(...result.cases.map((c) => c.case.length));
  for (const c of result.cases) {
    const tag = c.baseline ? `  (baseline of: ${c.baselineOf ?? '-'})` : '';
    const cpu = c.cpuOpsPerSec === undefined ? '' : `  CPU ${formatTime(c.cpuOpsPerSec).padStart(9)}/op`;
    process.stdout.write(`${result.name}: ${c.case.padEnd(width)}  ${formatOps(c.opsPerSec).padStart(10)} ops/s  ${formatTime(c.opsPerSec).padStart(9)}/op${cpu}${tag}\n`);
  }
}

/** Time per operation of a rate: 2000 ops/s -> "500 us". */
export function formatTime(opsPerSec: number): string {
  const ns = 1e9 / opsPerSec;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(ns >= 1e5 ? 0 : 1)} us`;
  return `${ns.toFixed(ns >= 100 ? 0 : 1)} ns`;
}

/** 12345678 -> "12.35 M". */
export function formatOps(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(0);
}
