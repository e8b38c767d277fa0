// Piscina task (inference worker thread): PPO allocation for one pool's
// observation. The model is loaded once per worker and kept until the main
// thread announces a new version (SIGHUP reload), when it is read again.

import { PpoPolicy } from '../control/policies/ppo.ts';
import type { PoolObservation } from '../control/observation.ts';
import { PpoModel } from './model.ts';

export interface InferTask {
  modelPath: string;
  version: string;
  obs: PoolObservation;
}

let loaded: { key: string; policy: PpoPolicy } | null = null;

export default function infer(task: InferTask): Float64Array {
  const key = `${task.modelPath}\0${task.version}`;
  if (loaded === null || loaded.key !== key) loaded = { key, policy: new PpoPolicy(PpoModel.load(task.modelPath)) };
  return loaded.policy.allocate(task.obs);
}
