// The main-thread side of a load run: starts the load worker threads, splits
// the connections among them, steers the phases (connect -> warm-up ->
// measure -> stop), prints progress, and merges the workers' figures into one
// result. Optionally samples another process's CPU time (the server's) over
// exactly the measured window.
//
// Threads: the workers (load-worker.ts) do all the I/O; this thread only
// sleeps, reads their progress block and merges results, so it costs next to
// nothing during the run.

import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds } from './proc-stats.ts';
import { PROGRESS_FIELDS, P_DECISIONS_INDEX, P_ERRORS_INDEX, type EngineResult } from './engine.ts';
import { Histogram, type Percentiles } from './histogram.ts';
import type { FromLoadWorker, LoadWorkerData, ToLoadWorker } from './load-worker.ts';
import type { ClientKind, LoadSpec } from './spec.ts';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';

const WORKER_ENTRY = new URL('./load-worker.ts', import.meta.url).href;
const READY_TIMEOUT_MS = 60_000;
const RESULT_TIMEOUT_MS = 15_000;

export interface LoadResult {
  target: { url: string; client: ClientKind; server: string };
  options: {
    connections: number; pipeline: number; batch: number; keys: number; durationS: number; warmupS: number;
    rate: number | null; threads: number; release: boolean;
  };
  windowS: number;
  messages: number;
  messagesPerSec: number;
  decisions: number;
  decisionsPerSec: number;
  granted: number;
  denied: number;
  /** Requests a bare echo server sent back (echo server only). */
  echoed: number;
  errors: { total: number; kinds: Record<string, number> };
  lostConnections: number;
  latencyMs: Percentiles;
  /** Open loop: how late sends left against their schedule (the generator's own lag). */
  sendLagMs: Percentiles | null;
  cpu: {
    /** This load generator (all its threads), over the measured window. */
    loadgen: { seconds: number; usPerDecision: number | null };
    /** The process given as serverPid, over the measured window. */
    server: { pid: number; seconds: number; usPerDecision: number | null } | null;
  };
}

export interface RunOptions {
  /** Process whose CPU time (/proc/PID/stat) is sampled over the window. */
  serverPid?: number | null;
  /** Called about once a second with a progress line. */
  onProgress?: (line: string) => void;
}

function waitFor<T extends FromLoadWorker['type']>(w: Worker, type: T, timeoutMs: number): Promise<Extract<FromLoadWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`load worker: no "${type}" within ${timeoutMs} ms`)); }, timeoutMs);
    const onMessage = (m: FromLoadWorker) => {
      if (m.type === type) { cleanup(); resolve(m as Extract<FromLoadWorker, { type: T }>); } else if (m.type === 'failed') { cleanup(); reject(new Error(m.message)); }
    };
    const onError = (err: Error) => { cleanup(); reject(err); };
    const onExit = (code: number) => { cleanup(); reject(new Error(`load worker exited (code ${code}) before "${type}"`)); };
    const cleanup = () => { clearTimeout(timer); w.off('message', onMessage); w.off('error', onError); w.off('exit', onExit); };
    w.on('message', onMessage);
    w.once('error', onError);
    w.once('exit', onExit);
  });
}

export async function runLoad(spec: LoadSpec, options: RunOptions = {}): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(spec.threads, spec.connections));
  const progressSab = new SharedArrayBuffer(threads * PROGRESS_FIELDS * Float64Array.BYTES_PER_ELEMENT);
  const progress = new Float64Array(progressSab);
  const workers: Worker[] = [];
  for (let t = 0; t < threads; t++) {
    const lanes: number[] = [];
    for (let i = t; i < spec.connections; i += threads) lanes.push(i);
    const workerData: LoadWorkerData = { entry: WORKER_ENTRY, spec, lanes, worker: t, progress: progressSab };
    workers.push(new Worker(THREAD_BOOTSTRAP, { workerData, name: `tpsd-bench-load-${t}` }));
  }
  const send = (m: ToLoadWorker) => { for (const w of workers) w.postMessage(m); };
  const exited = workers.map((w) => new Promise<void>((resolve) => w.once('exit', () => resolve())));
  const say = options.onProgress ?? (() => {});
  try {
    say(`connecting ${spec.connections} connection(s) from ${threads} thread(s) to ${spec.url}`);
    const ready = await Promise.all(workers.map((w) => waitFor(w, 'ready', READY_TIMEOUT_MS)));
    const server = ready[0].server;
    const results = workers.map((w) => waitFor(w, 'result', (spec.warmupS + spec.durationS) * 1000 + RESULT_TIMEOUT_MS));
    results.forEach((p) => p.catch(() => {}));

    send({ type: 'start' });
    if (spec.warmupS > 0) { say(`warming up for ${spec.warmupS} s`); await sleep(spec.warmupS * 1000); }
    const pid = options.serverPid ?? null;
    const cpu0 = process.cpuUsage();
    const server0 = pid === null ? null : cpuSeconds(pid);
    send({ type: 'measure' });
    const t0 = performance.now();
    let lastDecisions = 0;
    let lastAt = t0;
    const ticker = setInterval(() => {
      let decisions = 0, errors = 0;
      for (let t = 0; t < threads; t++) {
        decisions += progress[t * PROGRESS_FIELDS + P_DECISIONS_INDEX];
        errors += progress[t * PROGRESS_FIELDS + P_ERRORS_INDEX];
      }
      const now = performance.now();
      const rate = (decisions - lastDecisions) / ((now - lastAt) / 1000);
      say(`[${((now - t0) / 1000).toFixed(1).padStart(5)} s] ${formatRate(rate)} decisions/s, ${decisions} so far, ${errors} errors`);
      lastDecisions = decisions;
      lastAt = now;
    }, 1000);
    await sleep(spec.durationS * 1000);
    clearInterval(ticker);
    send({ type: 'stop' });
    const cpu = process.cpuUsage(cpu0);
    const server1 = pid === null ? null : cpuSeconds(pid);
    const parts = (await Promise.all(results)).map((m) => m.result);
    await Promise.race([Promise.all(exited), sleep(5000, undefined, { ref: false })]);
    return merge(spec, server, threads, parts, (cpu.user + cpu.system) / 1e6,
      pid === null || server0 === null || server1 === null ? null : { pid, seconds: server1 - server0 });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function merge(spec: LoadSpec, server: string, threads: number, parts: EngineResult[], loadgenS: number,
  serverCpu: { pid: number; seconds: number } | null): LoadResult {
  const hist = new Histogram();
  const lag = parts[0].sendLag === null ? null : new Histogram();
  const kinds: Record<string, number> = {};
  let decisionsPerSec = 0, messagesPerSec = 0, windowS = 0;
  const sum = (f: (r: EngineResult) => number) => parts.reduce((a, r) => a + f(r), 0);
  for (const r of parts) {
    hist.merge(r.latency);
    if (lag !== null && r.sendLag !== null) lag.merge(r.sendLag);
    for (const [k, n] of Object.entries(r.errors)) kinds[k] = (kinds[k] ?? 0) + n;
    if (r.windowS > 0) { decisionsPerSec += r.decisions / r.windowS; messagesPerSec += r.messages / r.windowS; }
    windowS = Math.max(windowS, r.windowS);
  }
  const decisions = sum((r) => r.decisions);
  const perDecision = (s: number) => (decisions > 0 ? (s * 1e6) / decisions : null);
  return {
    target: { url: spec.url, client: spec.client, server },
    options: {
      connections: spec.connections, pipeline: spec.pipeline, batch: spec.batch, keys: spec.keys.length,
      durationS: spec.durationS, warmupS: spec.warmupS, rate: spec.rate, threads, release: spec.release,
    },
    windowS,
    messages: sum((r) => r.messages),
    messagesPerSec,
    decisions,
    decisionsPerSec,
    granted: sum((r) => r.granted),
    denied: sum((r) => r.denied),
    echoed: sum((r) => r.echoed),
    errors: { total: Object.values(kinds).reduce((a, b) => a + b, 0), kinds },
    lostConnections: sum((r) => r.lostConnections),
    latencyMs: hist.percentilesMs(),
    sendLagMs: lag?.percentilesMs() ?? null,
    cpu: {
      loadgen: { seconds: loadgenS, usPerDecision: perDecision(loadgenS) },
      server: serverCpu === null ? null : { ...serverCpu, usPerDecision: perDecision(serverCpu.seconds) },
    },
  };
}

/** 1234567 -> "1.23 M". */
export function formatRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(0);
}
