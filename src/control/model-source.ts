// The PPO model behind the controller's runner (main thread): opened at start
// when the mode wants it, re-read on SIGHUP. Inference runs in a Piscina pool
// (the daemon; ../ppo/ppo-pool.ts) or on this thread ('inline': the
// simulator, tests). A missing or unusable file is logged and leaves no model,
// so fair applies (fallback kind missing_model); a reload validates the new
// file first and keeps the model in use when it is bad.

import { resolve } from 'node:path';
import { ModelError, PpoModel, DEFAULT_MODEL_PATH } from '../ppo/model.ts';
import { PpoPool } from '../ppo/ppo-pool.ts';
import { inlinePpo, pooledPpo } from './policies/ppo.ts';
import type { PpoSource } from './policies/types.ts';
import type { ControlLogger } from './policy-runner.ts';

export type Inference = 'piscina' | 'inline';

export interface ModelReload { ok: boolean; version: string; error?: string }

export class ModelSource {
  readonly path: string;
  private pool: PpoPool | null = null;
  /** The model last opened or reloaded (its obs_norm is the drift reference, model-drift.ts); null when none is usable. */
  loaded: PpoModel | null = null;

  /** `model`: the config's policy.model (null: the shipped model); `inferEntry`: the module the inference worker imports (default: infer.task.ts, under tsx). */
  constructor(model: string | null, private readonly inference: Inference, private readonly logger: ControlLogger | null,
    private readonly inferEntry?: string) {
    this.path = model === null ? DEFAULT_MODEL_PATH : resolve(model);
  }

  /** The model as a PPO source, or null (logged) when the file is missing or unusable. */
  open(loaded?: PpoModel): PpoSource | null {
    try {
      const model = loaded ?? PpoModel.load(this.path);
      this.loaded = model;
      if (this.inference === 'inline') return inlinePpo(model);
      this.pool = new PpoPool(this.path, model.version, 1, this.inferEntry);
      return pooledPpo(this.pool);
    } catch (e) {
      if (!(e instanceof ModelError)) throw e;
      this.logger?.warn({ model: this.path, reason: e.message }, 'no usable PPO model; fair applies');
      return null;
    }
  }

  /**
   * Re-reads the file (SIGHUP). A good file: the inference pool switches to
   * it, or, without a pool, `reopen` gets a new source when it was given
   * (the modes that use PPO). A bad file keeps the model in use (`current`).
   */
  reload(current: string, reopen: ((source: PpoSource | null) => void) | null): ModelReload {
    let model: PpoModel;
    try { model = PpoModel.load(this.path); } catch (e) {
      this.logger?.warn({ model: this.path, reason: (e as Error).message }, 'model reload failed; keeping the current model');
      return { ok: false, version: current, error: (e as Error).message };
    }
    this.loaded = model;
    if (this.pool !== null) this.pool.reload(model.version);
    else if (reopen !== null) reopen(this.open(model));
    this.logger?.info({ model: this.path, version: model.version }, 'model reloaded');
    return { ok: true, version: model.version };
  }

  /** Stops the inference workers. */
  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }
}
