// Thread entry of a load worker: opens its share of the connections with the
// chosen client, runs the Engine through the phases the main thread sends,
// and posts its figures.
//
// Threads: started by run-load.ts through src/thread-bootstrap.mjs (which
// registers the TypeScript loader, then imports workerData.entry: this file).
// Main -> worker: start | measure | stop. Worker -> main: ready (all its
// connections open and greeted) | failed | result | closed. A worker that
// hears nothing stops by itself at warm-up + duration + FAILSAFE_MS after
// start, so no load loop outlives its run.
//
// Imported from the main thread, this module only provides the types below.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Engine, PROGRESS_FIELDS, type EngineResult, type Lane, type LaneSink } from './engine.ts';
import type { LoadSpec } from './spec.ts';

const FAILSAFE_MS = 30_000;
const DRAIN_MS = 2000;
/** Connections opened at once. */
const OPEN_CONCURRENCY = 32;

export interface LoadWorkerData {
  readonly entry: string;
  readonly spec: LoadSpec;
  /** Global indices of this worker's connections. */
  readonly lanes: readonly number[];
  readonly worker: number;
  /** Float64 x PROGRESS_FIELDS per worker: running totals for the progress line. */
  readonly progress: SharedArrayBuffer;
}

export type ToLoadWorker = { readonly type: 'start' | 'measure' | 'stop' };
export type FromLoadWorker =
  | { readonly type: 'ready'; readonly server: string }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'result'; readonly result: EngineResult }
  | { readonly type: 'closed' };

async function openLane(spec: LoadSpec, index: number, sink: LaneSink): Promise<{ lane: Lane; server: string }> {
  if (spec.client === 'raw') return (await import('./ws-lane.ts')).openWsLane(spec, index, sink);
  if (spec.client === 'sdk') return { lane: await (await import('./sdk-lane.ts')).openSdkLane(spec, index, sink), server: 'tpsd' };
  if (spec.client === 'http') return { lane: await (await import('./http-lane.ts')).openHttpLane(spec, index, sink), server: 'tpsd' };
  return { lane: await (await import('./rlf-lane.ts')).openRlfLane(spec, index, sink), server: 'redis' };
}

async function main(data: LoadWorkerData): Promise<void> {
  const { spec } = data;
  const post = (m: FromLoadWorker) => parentPort!.postMessage(m);
  const progress = new Float64Array(data.progress);
  const engine = new Engine({
    pipeline: spec.pipeline, batch: spec.batch,
    ratePerLane: spec.rate === null ? null : spec.rate / spec.connections,
  }, progress, data.worker * PROGRESS_FIELDS);

  let server = '';
  try {
    for (let i = 0; i < data.lanes.length; i += OPEN_CONCURRENCY) {
      const chunk = data.lanes.slice(i, i + OPEN_CONCURRENCY);
      const opened = await Promise.all(chunk.map(async (global, k) => {
        const local = i + k;
        const r = await openLane(spec, global, engine.sink(local));
        engine.attach(local, r.lane);
        return r.server;
      }));
      server = opened[0] ?? server;
    }
  } catch (err) {
    await engine.closeAll();
    post({ type: 'failed', message: (err as Error)?.message ?? String(err) });
    return;
  }
  post({ type: 'ready', server });

  let failsafe: NodeJS.Timeout | null = null;
  const stop = async () => {
    if (failsafe !== null) clearTimeout(failsafe);
    parentPort!.off('message', onMessage);
    const result = await engine.stop(DRAIN_MS);
    post({ type: 'result', result });
    await engine.closeAll();
    post({ type: 'closed' });
    parentPort!.close();
  };
  const onMessage = (m: ToLoadWorker) => {
    if (m.type === 'start') {
      engine.start(data.lanes.map((g) => g / spec.connections));
      failsafe = setTimeout(() => { void stop(); }, (spec.warmupS + spec.durationS) * 1000 + FAILSAFE_MS);
    } else if (m.type === 'measure') engine.measure();
    else if (m.type === 'stop') void stop();
  };
  parentPort!.on('message', onMessage);
}

if (!isMainThread && parentPort) {
  main(workerData as LoadWorkerData).catch((err) => {
    parentPort!.postMessage({ type: 'failed', message: (err as Error)?.stack ?? String(err) } satisfies FromLoadWorker);
  });
}
