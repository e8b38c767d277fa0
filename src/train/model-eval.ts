// Comparing two models on the same scenarios (`tpsd model eval` and
// `promote`, CLI process, main thread; deterministic: each scenario's own
// seed drives its traffic): each scenario is played by fair, the current
// model and the candidate, and the candidate's reward is set against the
// current one's, relative to fair's scale. A replay of a tenant service's
// tiers with value_per_request (history-scenarios.ts) is scored with the
// revenue-aware reward; its row names the values it was scored with.

import type { PpoModel } from '../ppo/model.ts';
import type { Scenario } from '../sim/scenario.ts';
import { simulate, type TieredScenario } from '../sim/simulator.ts';

export interface EvalRow {
  scenario: string;
  fair: number;
  current: number;
  candidate: number;
  /** (candidate - current) / |fair|. */
  delta: number;
  /** Each tier's value per request that weighed its requests in the reward, by tier key; absent when none. */
  values?: Record<string, number>;
}

/** The tier values a scenario's reward weighs requests by, by the tier's scenario service name (its key), or undefined. */
export function tierValuesOf(s: Scenario): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const g of (s as TieredScenario).tenant_services ?? []) for (const t of g.tiers) if (t.value !== null) out[s.services[t.member].name] = t.value;
  return Object.keys(out).length === 0 ? undefined : out;
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
    const values = tierValuesOf(s);
    rows.push({ scenario: s.name, fair, current: cur, candidate: cand, delta: (cand - cur) / Math.max(1, Math.abs(fair)), ...(values ? { values } : {}) });
    progress(rows.length, scenarios.length);
  }
  const mean = rows.reduce((a, r) => a + r.delta, 0) / Math.max(1, rows.length);
  const worst = rows.reduce((a, r) => Math.min(a, r.delta), rows.length === 0 ? 0 : Infinity);
  return { current: current.version, candidate: candidate.version, rows, mean, worst };
}
