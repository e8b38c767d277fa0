// Piscina task (inference worker thread): the PPO network's mean scores for
// one pool's observation. The model is loaded once per worker and kept until
// the main thread announces a new version (SIGHUP reload), when it is read again.

import { PpoModel } from './model.ts';
import type { PoolObservation } from './observation.ts';

export interface InferTask {
  modelPath: string;
  version: string;
  obs: PoolObservation;
  /** How many services the pool has when obs carries only some (model.ts meanScores); absent: obs.services.length. */
  poolServices?: number;
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
  return { scores: loaded.model.meanScores(task.obs, task.poolServices), dim: loaded.model.policy.outputSize };
}
