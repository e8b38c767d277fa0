// The PPO model: per-service policy and value networks with shared weights
// (each service is one row; the pool context is part of its features), the
// observation normaliser, and the model file format. The networks score each
// service; what a score means (a claim that priority water-filling turns into
// a share) is the policy's business (../control/policies/ppo.ts).
// Loaded once per thread that infers (main thread in the simulator, each
// Piscina inference worker in the daemon, the trainer and rollout workers).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PoolObservation } from './observation.ts';
import { FEATURE_COUNT, FEATURE_NAMES, serviceFeatures } from './features.ts';
import { CodedError } from '../protocol/coded-error.ts';
import { Mlp } from './mlp.ts';
import { Normalizer, type NormalizerState } from './normalizer.ts';

export const MODEL_FORMAT = 'tpsd-ppo-model';
export const MODEL_FORMAT_VERSION = 1;
export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../../config/model.json', import.meta.url));
/** A score s scales the service's claim by exp(HEADROOM_SCALE * tanh(s)). */
export const HEADROOM_SCALE = 0.7;
/** Scores per service: headroom on demand, share of the queue to drain. */
export const ACTION_DIM = 2;

export interface ModelFile {
  format: typeof MODEL_FORMAT;
  format_version: number;
  /** Content-derived identifier, e.g. "ppo-3f2a9c1e". */
  model_version: string;
  created: string;
  features: string[];
  headroom_scale: number;
  policy: { sizes: number[]; params: number[] };
  value: { sizes: number[]; params: number[] };
  log_std: number;
  obs_norm: NormalizerState;
  metadata: Record<string, unknown>;
  eval: Record<string, unknown>;
}

export class ModelError extends CodedError {
  override readonly code = 'TPSD_MODEL_INVALID';
  constructor(message: string) { super(message); this.name = 'ModelError'; }
}

export class PpoModel {
  constructor(readonly policy: Mlp, readonly value: Mlp, readonly norm: Normalizer, public logStd: number,
    readonly version = 'untrained') {
    if (policy.inputSize !== FEATURE_COUNT || value.inputSize !== FEATURE_COUNT || value.outputSize !== 1) {
      throw new ModelError(`networks take ${policy.inputSize} inputs, features are ${FEATURE_COUNT}`);
    }
  }

  static create(hidden: readonly number[], actionDim = ACTION_DIM): PpoModel {
    return new PpoModel(new Mlp([FEATURE_COUNT, ...hidden, actionDim]), new Mlp([FEATURE_COUNT, ...hidden, 1]),
      new Normalizer(FEATURE_COUNT), Math.log(0.3));
  }

  static fromJson(raw: unknown, source = 'model'): PpoModel {
    const m = raw as Partial<ModelFile>;
    const bad = (why: string): never => { throw new ModelError(`${source}: ${why}`); };
    if (typeof m !== 'object' || m === null || m.format !== MODEL_FORMAT) bad(`format: expected "${MODEL_FORMAT}"`);
    if (m.format_version !== MODEL_FORMAT_VERSION) bad(`format_version: expected ${MODEL_FORMAT_VERSION}, found ${m.format_version}`);
    if (JSON.stringify(m.features) !== JSON.stringify(FEATURE_NAMES)) bad('features: this build computes different features; retrain');
    const net = (n: ModelFile['policy'] | undefined, name: string): Mlp => {
      if (!n || !Array.isArray(n.sizes) || !Array.isArray(n.params)) return bad(`${name}: expected {sizes, params}`);
      if (!n.params.every((v) => typeof v === 'number' && Number.isFinite(v))) bad(`${name}.params: non-finite value`);
      try { return new Mlp(n.sizes, Float32Array.from(n.params)); } catch (e) { return bad(`${name}: ${(e as Error).message}`); }
    };
    if (typeof m.log_std !== 'number' || !Number.isFinite(m.log_std)) bad('log_std: expected a number');
    const norm = m.obs_norm;
    if (!norm || !Array.isArray(norm.mean) || !Array.isArray(norm.var)) bad('obs_norm: expected {mean, var, count}');
    try {
      return new PpoModel(net(m.policy, 'policy'), net(m.value, 'value'), new Normalizer(FEATURE_COUNT, norm),
        m.log_std as number, String(m.model_version ?? 'unknown'));
    } catch (e) { return bad((e as Error).message); }
  }

  static load(path: string = DEFAULT_MODEL_PATH): PpoModel {
    let text: string;
    try { text = readFileSync(path, 'utf8'); } catch (e) { throw new ModelError(`cannot read model ${path}: ${(e as Error).message}`); }
    let json: unknown;
    try { json = JSON.parse(text); } catch (e) { throw new ModelError(`model ${path} is not JSON: ${(e as Error).message}`); }
    return PpoModel.fromJson(json, path);
  }

  /** Normalised features of the pool's services (n x FEATURE_COUNT); `poolServices` as in serviceFeatures(). */
  features(obs: PoolObservation, poolServices = obs.services.length): Float32Array {
    return this.norm.apply(serviceFeatures(obs, poolServices), obs.services.length);
  }

  /** The policy's mean scores, n x policy.outputSize (service-major); `poolServices` as in serviceFeatures(). */
  meanScores(obs: PoolObservation, poolServices = obs.services.length): Float64Array {
    return this.scoresOf(serviceFeatures(obs, poolServices), obs.services.length);
  }

  /** meanScores() from the rows' raw features (serviceFeatures(), rows x FEATURE_COUNT; normalised here, in place). */
  scoresOf(raw: Float32Array, rows: number): Float64Array {
    return this.policy.infer(this.norm.apply(raw, rows), rows).slice();
  }

  /** `created`: the trainer passes its code commit's date, so the file does not depend on when it was trained. */
  toJson(metadata: Record<string, unknown>, evalResults: Record<string, unknown>, created = new Date().toISOString()): ModelFile {
    const round = (a: Float32Array): number[] => Array.from(a, (v) => Number(v.toPrecision(6)));
    const policy = { sizes: [...this.policy.sizes], params: round(this.policy.params) };
    const value = { sizes: [...this.value.sizes], params: round(this.value.params) };
    const obsNorm = this.norm.state();
    obsNorm.mean = obsNorm.mean.map((v) => Number(v.toPrecision(6)));
    obsNorm.var = obsNorm.var.map((v) => Number(v.toPrecision(6)));
    const hash = createHash('sha256').update(JSON.stringify([policy, value, this.logStd, obsNorm])).digest('hex');
    return {
      format: MODEL_FORMAT, format_version: MODEL_FORMAT_VERSION, model_version: `ppo-${hash.slice(0, 8)}`,
      created, features: [...FEATURE_NAMES], headroom_scale: HEADROOM_SCALE,
      policy, value, log_std: Number(this.logStd.toPrecision(6)), obs_norm: obsNorm, metadata, eval: evalResults,
    };
  }
}
