// PPO inference off the main thread (daemon): a Piscina pool of one worker
// (inference is tiny; one thread keeps the I/O threads' cores free). Each
// worker loads the model once and reloads it when the version changes
// (reload() after SIGHUP) and answers the network's scores per service from
// their features, computed here (infer.task.ts); the controller turns them
// into an allocation (../control/policies/ppo.ts).
// The deadline is enforced by the controller's PolicyRunner: a late answer is
// ignored for that tick and fair applies.
// A tick posts one task per awake pool (100 in bench:idle's spread case).
// Piscina's default of one task at a time per worker made the main thread
// wait for each answer's message event before posting the next task: 100
// round trips a tick, a few ms of the main thread's CPU. The worker may
// therefore hold up to MAX_TASKS_IN_WORKER tasks: the tick posts them all at
// once, the worker runs them one after another as before (each is
// synchronous), and the answers are read in bursts. Each task keeps its own
// deadline and its own fallback.

import { Piscina } from 'piscina';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';
import { serviceFeatures } from './features.ts';
import type { InferResult, InferTask } from './infer.task.ts';
import type { PoolObservation } from './observation.ts';

export const INFER_TASK_URL = new URL('./infer.task.ts', import.meta.url).href;
/**
 * The inference worker's young generation (MiB): a task allocates one pool's
 * scores and its observation's copy, well under a semi-space of this size;
 * Node's default (16 MiB semi-spaces) would be mostly RSS held for nothing.
 */
export const INFER_YOUNG_GENERATION_MB = 6;
/** Tasks posted to the worker before it answers (one per awake pool per tick; more wait in Piscina's queue). */
export const MAX_TASKS_IN_WORKER = 4096;

export class PpoPool {
  private readonly pool: Piscina;
  private reloads = 0;

  /** `entry`: the module the worker imports, a bundle of infer.task.ts (shm/thread-bundle.ts) or the .ts file itself (under tsx). */
  constructor(private readonly modelPath: string, private modelVersion: string, threads = 1, entry = INFER_TASK_URL) {
    this.pool = new Piscina({
      filename: THREAD_BOOTSTRAP.href,
      workerData: { entry },
      resourceLimits: { maxYoungGenerationSizeMb: INFER_YOUNG_GENERATION_MB },
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: MAX_TASKS_IN_WORKER,
    });
  }

  get version(): string { return this.modelVersion; }

  /** The scores of obs.services; `poolServices`: the pool's service count when obs carries only some (infer.task.ts). */
  scores(obs: PoolObservation, poolServices = obs.services.length): Promise<InferResult> {
    // The version carries a reload counter so a file rewritten in place is re-read.
    const task: InferTask = { modelPath: this.modelPath, version: `${this.modelVersion}#${this.reloads}`,
      features: serviceFeatures(obs, poolServices), rows: obs.services.length };
    return this.pool.run(task);
  }

  reload(version: string): void {
    this.modelVersion = version;
    this.reloads++;
  }

  async close(): Promise<void> { await this.pool.destroy(); }
}
