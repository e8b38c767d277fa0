// Piscina task (rollout worker thread): plays episodes of the simulator with
// the current policy, exploring (training) or deterministic (evaluation), and
// returns the recorded steps with their rewards. Stateless between tasks: the
// trainer sends the weights and the normaliser snapshot with every task.

import { Mlp } from '../ppo/mlp.ts';
import type { SimMetrics } from '../sim/metrics.ts';
import { PpoModel } from '../ppo/model.ts';
import { Normalizer, type NormalizerState } from '../ppo/normalizer.ts';
import { FEATURE_COUNT } from '../ppo/features.ts';
import { Rng } from '../ppo/rng.ts';
import type { Recorded } from './sampling-source.ts';
import { SamplingSource } from './sampling-source.ts';
import type { Scenario } from '../sim/scenario.ts';
import { simulate } from '../sim/simulator.ts';
import { generateScenario } from '../sim/scenario-gen.ts';
import type { PolicyName } from '../control/policies/registry.ts';

export interface WireModel {
  policySizes: number[];
  policy: Float32Array;
  valueSizes: number[];
  value: Float32Array;
  logStd: number;
  norm: NormalizerState;
}

export type EpisodeSpec = { gen: number; durationS: number } | { scenario: Scenario };

export interface RolloutTask {
  model: WireModel | null;
  episodes: EpisodeSpec[];
  /** 'sample': explore and record; 'ppo': deterministic; or a baseline policy name. */
  mode: 'sample' | PolicyName;
  /** 'sample': one exploration seed per episode (drawn by the trainer in order, so the result is the same whatever the chunking or worker count). */
  seeds: number[];
}

export interface EpisodeResult {
  name: string;
  metrics: SimMetrics;
  steps: Recorded[];
  rewards: number[];
}

export function modelFromWire(w: WireModel): PpoModel {
  return new PpoModel(new Mlp(w.policySizes, Float32Array.from(w.policy)), new Mlp(w.valueSizes, Float32Array.from(w.value)),
    new Normalizer(FEATURE_COUNT, w.norm), w.logStd);
}

export function scenarioOf(e: EpisodeSpec): Scenario {
  return 'gen' in e ? generateScenario(e.gen, { durationS: e.durationS }) : e.scenario;
}

export default async function rollout(task: RolloutTask): Promise<EpisodeResult[]> {
  const model = task.model === null ? undefined : modelFromWire(task.model);
  const out: EpisodeResult[] = [];
  for (const [k, e] of task.episodes.entries()) {
    const scenario = scenarioOf(e);
    if (task.mode === 'sample') {
      const source = new SamplingSource(model!, new Rng(task.seeds[k] ?? 0));
      const r = await simulate(scenario, { policy: 'ppo', ppoSource: source });
      // Common random numbers: the same scenario and seed give the same traffic whatever
      // the policy, so fair's per-tick reward on it is an action-independent control
      // variate. Learning from the difference removes the traffic's own noise.
      const base = await simulate(scenario, { policy: 'fair' });
      const rewards = r.rewards.map((x, k) => x - (base.rewards[k] ?? 0));
      out.push({ name: scenario.name, metrics: r.metrics, steps: source.steps, rewards });
    } else {
      const r = await simulate(scenario, { policy: task.mode, model, ppoSource: task.mode === 'ppo' && model === undefined ? null : undefined });
      out.push({ name: scenario.name, metrics: r.metrics, steps: [], rewards: [] });
    }
  }
  return out;
}
