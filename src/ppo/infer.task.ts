// Piscina task (inference worker thread): the PPO network's mean scores for
// one pool's services, from their raw features (../ppo/features.ts, computed
// on the main thread: a typed array of the rows posts in about a tenth of the
// time the observation's objects took). The model is loaded once per worker
// and kept until the main thread announces a new version (SIGHUP reload),
// when it is read again.

import { PpoModel } from './model.ts';

export interface InferTask {
  modelPath: string;
  version: string;
  /** The services' raw features, rows x FEATURE_COUNT (serviceFeatures(), with the pool's service count). */
  features: Float32Array;
  rows: number;
}

/** n x dim scores, service-major. */
export interface InferResult {
  scores: Float64Array;
  dim: number;
}

let loaded: { key: string; model: PpoModel } | null = null;

export default function infer(task: InferTask): InferResult {
  const key = `${task.modelPath}\0${task.version}`;
  if (loaded === null || loaded.key !== key) loaded = { key, model: PpoModel.load(task.modelPath) };
  return { scores: loaded.model.scoresOf(task.features, task.rows), dim: loaded.model.policy.outputSize };
}
