// Comparing two models on the same scenarios (`tpsd model eval` and
// `promote`, CLI process, main thread; deterministic: each scenario's own
// seed drives its traffic): each scenario is played by fair, the current
// model and the candidate, and the candidate's reward is set against the
// current one's, relative to fair's scale.

import type { PpoModel } from '../ppo/model.ts';
import type { Scenario } from '../sim/scenario.ts';
import { simulate } from '../sim/simulator.ts';

export interface EvalRow {
  scenario: string;
  fair: number;
  current: number;
  candidate: number;
  /** (candidate - current) / |fair|. */
  delta: number;
}

export interface ModelComparison {
  current: string;
  candidate: string;
  rows: EvalRow[];
  /** Mean and worst of the rows' deltas. */
  mean: number;
  worst: number;
}

export async function compareModels(scenarios: readonly Scenario[], current: PpoModel, candidate: PpoModel,
  progress: (done: number, total: number) => void = () => {}): Promise<ModelComparison> {
  const rows: EvalRow[] = [];
  for (const s of scenarios) {
    const fair = (await simulate(s, { policy: 'fair' })).metrics.reward;
    const cur = (await simulate(s, { policy: 'ppo', model: current })).metrics.reward;
    const cand = (await simulate(s, { policy: 'ppo', model: candidate })).metrics.reward;
    rows.push({ scenario: s.name, fair, current: cur, candidate: cand, delta: (cand - cur) / Math.max(1, Math.abs(fair)) });
    progress(rows.length, scenarios.length);
  }
  const mean = rows.reduce((a, r) => a + r.delta, 0) / Math.max(1, rows.length);
  const worst = rows.reduce((a, r) => Math.min(a, r.delta), rows.length === 0 ? 0 : Infinity);
  return { current: current.version, candidate: candidate.version, rows, mean, worst };
}
