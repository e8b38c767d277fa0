// PPO training (trainer = main thread of `tpsd train`; rollouts in Piscina
// workers running rollout.task.ts). Each iteration: generated scenarios
// (scenario-gen.ts) are played by the workers with the exploring policy, the
// trainer folds the raw features into the normaliser, computes GAE and runs
// the PPO update. Every evalEvery iterations the deterministic policy is
// evaluated on the evaluation set (the example scenarios plus held-out
// generated ones) against fair; the best checkpoint (not below fair on any
// named scenario first, then the highest mean relative reward) is written.

import { writeFileSync } from 'node:fs';
import { Piscina } from 'piscina';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';
import { PpoModel, type ModelFile } from '../ppo/model.ts';
import { DEFAULT_HYPER, gae, PpoLearner, type PpoHyper, type Step } from './learner.ts';
import { Rng } from '../ppo/rng.ts';
import type { EpisodeResult, EpisodeSpec, RolloutTask, WireModel } from './rollout.task.ts';
import type { Scenario } from '../sim/scenario.ts';

export const ROLLOUT_TASK_URL = new URL('./rollout.task.ts', import.meta.url).href;

export interface TrainOptions {
  iterations: number;
  episodesPerIteration: number;
  durationS: number;
  workers: number;
  seed: number;
  hidden: number[];
  evalEvery: number;
  /** Named scenarios evaluated against fair (e.g. the example files). */
  evalScenarios: Scenario[];
  /** Held-out generated scenarios added to the evaluation set. */
  heldOut: number;
  /** Stop starting iterations after this many seconds. */
  timeBudgetS: number;
  hyper?: Partial<PpoHyper>;
  out: string | null;
  command: string;
  log: (line: string) => void;
}

interface EvalResult {
  /** Mean reward relative to fair over the whole evaluation set. */
  score: number;
  /** Worst relative reward over the named scenarios, and over the held-out ones. */
  worstNamed: number;
  worst: number;
  perScenario: Record<string, { ppo: number; fair: number }>;
}

/** Checkpoint order: not below fair on any named scenario first, then the mean. */
function betterThan(a: EvalResult, b: EvalResult | undefined): boolean {
  if (b === undefined) return true;
  if ((a.worstNamed >= 0) !== (b.worstNamed >= 0)) return a.worstNamed >= 0;
  return a.score > b.score;
}

export function toWire(m: PpoModel): WireModel {
  return { policySizes: [...m.policy.sizes], policy: m.policy.params, valueSizes: [...m.value.sizes], value: m.value.params,
    logStd: m.logStd, norm: m.norm.state() };
}

/** Turns an episode's recorded decisions and per-tick rewards into PPO steps. */
export function episodeSteps(e: EpisodeResult): Step[] {
  const steps: Step[] = [];
  // Decision k (end of tick k) is judged by tick k + 1's reward; the last one by nothing, so it only bootstraps.
  for (let k = 0; k + 1 < e.steps.length && k + 1 < e.rewards.length; k++) {
    const s = e.steps[k];
    steps.push({ x: s.x, n: s.n, a: s.a, logp: s.logp, v: s.v, reward: e.rewards[k + 1], nextV: e.steps[k + 1].v });
  }
  return steps;
}

export async function train(o: TrainOptions): Promise<{ model: PpoModel; file: ModelFile }> {
  const started = Date.now();
  const rng = new Rng(o.seed);
  const model = PpoModel.create(o.hidden);
  // A zero output layer starts the policy at scores 0: claims = demand, i.e. fair.
  model.policy.init(rng, 0);
  model.value.init(rng, 1);
  const hyper = { ...DEFAULT_HYPER, ...o.hyper };
  const learner = new PpoLearner(model, hyper);
  const pool = new Piscina({ filename: THREAD_BOOTSTRAP.href, workerData: { entry: ROLLOUT_TASK_URL },
    minThreads: o.workers, maxThreads: o.workers, idleTimeout: Infinity });
  const run = async (episodes: EpisodeSpec[], mode: RolloutTask['mode'], m: PpoModel | null): Promise<EpisodeResult[]> => {
    // Contiguous chunks, so the flattened results keep the episodes' order.
    const size = Math.ceil(episodes.length / Math.min(o.workers * 2, episodes.length));
    const chunks: EpisodeSpec[][] = [];
    for (let i = 0; i < episodes.length; i += size) chunks.push(episodes.slice(i, i + size));
    const wire = m === null ? null : toWire(m);
    const parts = await Promise.all(chunks.map((c) => pool.run({ model: wire, episodes: c, mode, seed: rng.nextU32() } satisfies RolloutTask)));
    return (parts as EpisodeResult[][]).flat();
  };
  const evalSet: EpisodeSpec[] = [...o.evalScenarios.map((scenario) => ({ scenario })),
    ...Array.from({ length: o.heldOut }, (_, i) => ({ gen: 1_000_000_007 + i, durationS: o.durationS }))];
  const fair = await run(evalSet, 'fair', null);
  const evaluate = async (): Promise<EvalResult> => {
    const ppo = await run(evalSet, 'ppo', model);
    const perScenario: EvalResult['perScenario'] = {};
    let score = 0;
    let worst = Infinity;
    let worstNamed = Infinity;
    ppo.forEach((r, i) => {
      const f = fair[i].metrics.reward;
      const rel = (r.metrics.reward - f) / Math.max(1, Math.abs(f));
      perScenario[r.name] = { ppo: r.metrics.reward, fair: f };
      score += rel / ppo.length;
      worst = Math.min(worst, rel);
      if (i < o.evalScenarios.length) worstNamed = Math.min(worstNamed, rel);
    });
    return { score, worst, worstNamed, perScenario };
  };
  let best: { file: ModelFile; eval: EvalResult; iteration: number } | null = null;
  let totalSteps = 0;
  const consider = async (iteration: number): Promise<void> => {
    const ev = await evaluate();
    // Iteration 0 is the untrained policy (scores 0, i.e. fair): logged, never chosen.
    const better = iteration > 0 && betterThan(ev, best?.eval);
    o.log(`  eval @${iteration}: mean vs fair ${(ev.score * 100).toFixed(2)}%, worst named ${(ev.worstNamed * 100).toFixed(2)}%,` +
      ` worst ${(ev.worst * 100).toFixed(2)}%` +
      ` [${Object.entries(ev.perScenario).slice(0, o.evalScenarios.length).map(([k, v]) => `${k} ${v.ppo.toFixed(1)}/${v.fair.toFixed(1)}`).join(', ')}]${better ? ' *best' : ''}`);
    if (better) {
      best = { iteration, eval: ev, file: model.toJson({}, {}) };
    }
  };
  try {
    await consider(0);
    for (let it = 1; it <= o.iterations; it++) {
      if ((Date.now() - started) / 1000 > o.timeBudgetS) { o.log(`time budget reached after ${it - 1} iterations`); break; }
      const episodes: EpisodeSpec[] = Array.from({ length: o.episodesPerIteration },
        (_, j) => ({ gen: o.seed * 1_000_003 + it * 1000 + j, durationS: o.durationS }));
      const results = await run(episodes, 'sample', model);
      const steps: Step[] = [];
      const advs: number[] = [];
      const rets: number[] = [];
      let rewardPerTick = 0;
      let vsFair = 0;
      for (const e of results) {
        const s = episodeSteps(e);
        const { adv, ret } = gae(s, hyper.gamma, hyper.lambda);
        steps.push(...s); advs.push(...adv); rets.push(...ret);
        rewardPerTick += e.metrics.reward / Math.max(1, e.rewards.length) / results.length;
        vsFair += e.rewards.reduce((a, b) => a + b, 0) / Math.max(1, e.rewards.length) / results.length;
      }
      const stats = learner.update(steps, Float64Array.from(advs), Float64Array.from(rets), rng);
      for (const e of results) for (const s of e.steps) model.norm.update(s.raw, s.n);
      totalSteps += steps.length;
      o.log(`iter ${it}: steps ${totalSteps}, reward/tick ${rewardPerTick.toFixed(4)} (vs fair ${vsFair >= 0 ? '+' : ''}${vsFair.toFixed(5)}), std ${Math.exp(model.logStd).toFixed(3)},` +
        ` pi ${stats.policyLoss.toFixed(4)}, v ${stats.valueLoss.toFixed(4)}, clip ${stats.clipFrac.toFixed(3)}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      if (it % o.evalEvery === 0 || it === o.iterations) await consider(it);
    }
    if (best === null) best = { iteration: 0, eval: await evaluate(), file: model.toJson({}, {}) };
  } finally {
    await pool.destroy();
  }
  const chosen = best as unknown as { file: ModelFile; eval: EvalResult; iteration: number };
  const final = PpoModel.fromJson(chosen.file);
  const file = final.toJson({
    command: o.command, seed: o.seed, hidden: o.hidden, iterations: o.iterations, chosen_iteration: chosen.iteration,
    episodes_per_iteration: o.episodesPerIteration, episode_s: o.durationS, workers: o.workers, steps: totalSteps,
    wall_s: Math.round((Date.now() - started) / 1000), hyper, node: process.version,
  }, { vs_fair_mean: chosen.eval.score, vs_fair_worst_named: chosen.eval.worstNamed, vs_fair_worst: chosen.eval.worst,
    reward: chosen.eval.perScenario });
  if (o.out !== null) writeFileSync(o.out, `${JSON.stringify(file)}\n`);
  return { model: final, file };
}
