// PPO inference off the main thread (daemon): a Piscina pool of one worker
// (inference is tiny; one thread keeps the I/O threads' cores free). Each
// worker loads the model once and reloads it when the version changes
// (reload() after SIGHUP). The deadline is enforced by the PolicyRunner: a
// late answer is ignored for that tick and fair applies.

import { Piscina } from 'piscina';
import type { PoolObservation } from './observation.ts';
import type { PpoSource } from './policy-runner.ts';

export const TASK_BOOTSTRAP = new URL('../rl/task-bootstrap.mjs', import.meta.url);
export const INFER_TASK_URL = new URL('../rl/infer.task.ts', import.meta.url).href;

export class PpoPool implements PpoSource {
  private readonly pool: Piscina;
  private reloads = 0;

  constructor(private readonly modelPath: string, private modelVersion: string, threads = 1) {
    this.pool = new Piscina({
      filename: TASK_BOOTSTRAP.href,
      workerData: { taskUrl: INFER_TASK_URL },
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
    });
  }

  get version(): string { return this.modelVersion; }

  infer(obs: PoolObservation): Promise<Float64Array> {
    // The version carries a reload counter so a file rewritten in place is re-read.
    return this.pool.run({ modelPath: this.modelPath, version: `${this.modelVersion}#${this.reloads}`, obs });
  }

  reload(version: string): void {
    this.modelVersion = version;
    this.reloads++;
  }

  async close(): Promise<void> { await this.pool.destroy(); }
}
