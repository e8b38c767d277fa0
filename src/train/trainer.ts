// PPO training (trainer = main thread of `tpsd train`; rollouts in Piscina
// workers running rollout.task.ts). Each iteration: training episodes
// (generated scenario families, scenario-gen.ts, or history-derived ones,
// history-scenarios.ts) are played by the workers with the exploring policy;
// the trainer folds the raw features into the normaliser, computes GAE and
// runs the PPO update. Every evalEvery iterations the deterministic policy is
// evaluated against fair on HELD-OUT episodes only (generated from a seed
// range training never draws from); the best checkpoint (not more than 0.1 %
// below fair on any held-out episode first, then the highest mean relative
// reward) is kept. The reported scenarios (the shared examples) are played
// once, by the chosen checkpoint, and only recorded.
// Deterministic: every random draw comes from one seeded generator on this
// thread, in a fixed order (exploration seeds per episode, not per worker
// chunk; results are reduced in episode order), no clock reaches the model
// file, so the same inputs give the same bytes whatever the worker count.

import { writeFileSync } from 'node:fs';
import { Piscina } from 'piscina';
import { THREAD_BOOTSTRAP } from '../shm/threads.ts';
import { threadEntry } from '../shm/thread-bundle.ts';
import { PpoModel, type ModelFile } from '../ppo/model.ts';
import { DEFAULT_HYPER, gae, PpoLearner, type PpoHyper, type Step } from './learner.ts';
import { Rng } from '../ppo/rng.ts';
import type { EpisodeResult, EpisodeSpec, RolloutTask, WireModel } from './rollout.task.ts';
import type { Scenario } from '../sim/scenario.ts';
import { codeVersion, hashOf, type CodeVersion } from './provenance.ts';

export const ROLLOUT_TASK_URL = new URL('./rollout.task.ts', import.meta.url).href;

/** Held-out generated episodes use seeds from here up; training episodes' seeds stay below (masked to 31 bits). */
export const HELD_OUT_SEED_BASE = 0x80000000;
/** Tolerance of the selection rule: a checkpoint more than this below fair on a held-out episode ranks after every one that is not. */
export const WORST_TOLERANCE = 0.001;

export interface TrainOptions {
  iterations: number;
  episodesPerIteration: number;
  durationS: number;
  /** Rollout threads; the model does not depend on it. */
  workers: number;
  seed: number;
  hidden: number[];
  evalEvery: number;
  /** Scenarios played once by the chosen checkpoint and recorded (never used to choose it). */
  reportScenarios: Scenario[];
  /** Held-out episodes the checkpoints are chosen on. */
  heldOut: number;
  /** Stop starting iterations after this many seconds (a run cut short is not reproducible: logged and recorded). */
  timeBudgetS: number;
  hyper?: Partial<PpoHyper>;
  out: string | null;
  command: string;
  log: (line: string) => void;
  /** Fine-tuning: start from this model instead of a fresh one. */
  init?: PpoModel;
  /** Training episode j of iteration it (default: a generated scenario). */
  trainEpisode?: (it: number, j: number) => EpisodeSpec;
  /** Held-out episode i (default: a generated scenario from HELD_OUT_SEED_BASE up). */
  heldOutEpisode?: (i: number) => EpisodeSpec;
  /** Further inputs to record and hash (e.g. the history the families came from). */
  inputs?: Record<string, unknown>;
}

interface EvalResult {
  /** Mean reward relative to fair over the held-out episodes. */
  score: number;
  /** Worst relative reward over them. */
  worst: number;
  perScenario: Record<string, { ppo: number; fair: number }>;
}

/** Checkpoint order: not more than WORST_TOLERANCE below fair on any held-out episode first, then the mean. */
function betterThan(a: EvalResult, b: EvalResult | undefined): boolean {
  if (b === undefined) return true;
  const okA = a.worst >= -WORST_TOLERANCE;
  if (okA !== (b.worst >= -WORST_TOLERANCE)) return okA;
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

export function generatedEpisode(seed: number, durationS: number): (it: number, j: number) => EpisodeSpec {
  return (it, j) => ({ gen: (seed * 1_000_003 + it * 1000 + j) & 0x7fffffff, durationS });
}

/** Each episode's reward relative to fair's on the same episode. */
function relative(ppo: EpisodeResult[], fair: EpisodeResult[]): EvalResult {
  const perScenario: EvalResult['perScenario'] = {};
  let score = 0;
  let worst = Infinity;
  ppo.forEach((r, i) => {
    const f = fair[i].metrics.reward;
    const rel = (r.metrics.reward - f) / Math.max(1, Math.abs(f));
    perScenario[r.name] = { ppo: r.metrics.reward, fair: f };
    score += rel / ppo.length;
    worst = Math.min(worst, rel);
  });
  return { score, worst: ppo.length === 0 ? 0 : worst, perScenario };
}

type Runner = (episodes: EpisodeSpec[], mode: RolloutTask['mode'], m: PpoModel | null, seeds?: number[]) => Promise<EpisodeResult[]>;

function rolloutRunner(pool: Piscina, workers: number): Runner {
  return async (episodes, mode, m, seeds = []) => {
    if (episodes.length === 0) return [];
    // Contiguous chunks, so the flattened results keep the episodes' order.
    const size = Math.ceil(episodes.length / Math.min(workers * 2, episodes.length));
    const wire = m === null ? null : toWire(m);
    const parts: Promise<EpisodeResult[]>[] = [];
    for (let i = 0; i < episodes.length; i += size) {
      parts.push(pool.run({ model: wire, episodes: episodes.slice(i, i + size), mode, seeds: seeds.slice(i, i + size) } satisfies RolloutTask));
    }
    return (await Promise.all(parts)).flat();
  };
}

/** One iteration: rollouts, GAE, the PPO update, the normaliser; returns the progress line. */
async function iterate(run: Runner, model: PpoModel, learner: PpoLearner, rng: Rng, episodes: EpisodeSpec[]): Promise<{ line: string; steps: number }> {
  const seeds = episodes.map(() => rng.nextU32());
  const results = await run(episodes, 'sample', model, seeds);
  const steps: Step[] = [];
  const advs: number[] = [];
  const rets: number[] = [];
  let rewardPerTick = 0;
  let vsFair = 0;
  for (const e of results) {
    const s = episodeSteps(e);
    const { adv, ret } = gae(s, learner.h.gamma, learner.h.lambda);
    steps.push(...s); advs.push(...adv); rets.push(...ret);
    rewardPerTick += e.metrics.reward / Math.max(1, e.rewards.length) / results.length;
    vsFair += e.rewards.reduce((a, b) => a + b, 0) / Math.max(1, e.rewards.length) / results.length;
  }
  const stats = learner.update(steps, Float64Array.from(advs), Float64Array.from(rets), rng);
  for (const e of results) for (const s of e.steps) model.norm.update(s.raw, s.n);
  return { steps: steps.length, line: `reward/tick ${rewardPerTick.toFixed(4)} (vs fair ${vsFair >= 0 ? '+' : ''}${vsFair.toFixed(5)}), ` +
    `std ${Math.exp(model.logStd).toFixed(3)}, pi ${stats.policyLoss.toFixed(4)}, v ${stats.valueLoss.toFixed(4)}, clip ${stats.clipFrac.toFixed(3)}` };
}

function freshModel(hidden: number[], rng: Rng): PpoModel {
  const model = PpoModel.create(hidden);
  // A zero output layer starts the policy at scores 0: claims = demand, i.e. fair.
  model.policy.init(rng, 0);
  model.value.init(rng, 1);
  return model;
}

export async function train(o: TrainOptions): Promise<{ model: PpoModel; file: ModelFile }> {
  const started = Date.now();
  // Read before training, so an edit made while it runs cannot be credited with the model.
  const code = codeVersion();
  const elapsedS = (): number => (Date.now() - started) / 1000;
  const rng = new Rng(o.seed);
  const model = o.init === undefined ? freshModel(o.hidden, rng) : PpoModel.fromJson(o.init.toJson({}, {}));
  const hyper = { ...DEFAULT_HYPER, ...o.hyper };
  const learner = new PpoLearner(model, hyper);
  const trainEpisode = o.trainEpisode ?? generatedEpisode(o.seed, o.durationS);
  const heldOutEpisode = o.heldOutEpisode ?? ((i: number) => ({ gen: HELD_OUT_SEED_BASE + i, durationS: o.durationS }));
  const heldOut = Array.from({ length: o.heldOut }, (_, i) => heldOutEpisode(i));
  const reported = o.reportScenarios.map((scenario) => ({ scenario }));
  // The rollout workers run a bundle (no tsx loader thread in each: shm/thread-bundle.ts); their .ts entry if it cannot be made.
  const entry = await threadEntry(ROLLOUT_TASK_URL, (err) => o.log(`rollout workers run their TypeScript entry (a loader thread each): ${err.message}`));
  const pool = new Piscina({ filename: THREAD_BOOTSTRAP.href, workerData: { entry },
    minThreads: o.workers, maxThreads: o.workers, idleTimeout: Infinity });
  const run = rolloutRunner(pool, o.workers);
  let best: { file: ModelFile; eval: EvalResult; iteration: number } | null = null;
  let totalSteps = 0;
  let iterationsRun = 0;
  let reportedEval: EvalResult;
  try {
    const fair = await run(heldOut, 'fair', null);
    const consider = async (iteration: number): Promise<void> => {
      const ev = relative(await run(heldOut, 'ppo', model), fair);
      // Iteration 0 is the starting policy: logged, never chosen (unless nothing else was evaluated).
      const better = iteration > 0 && betterThan(ev, best?.eval);
      o.log(`  eval @${iteration} on ${heldOut.length} held-out: mean vs fair ${(ev.score * 100).toFixed(2)}%, worst ${(ev.worst * 100).toFixed(2)}%${better ? ' *best' : ''}`);
      if (better || (iteration === 0 && o.iterations === 0)) best = { iteration, eval: ev, file: model.toJson({}, {}) };
    };
    await consider(0);
    for (let it = 1; it <= o.iterations; it++) {
      if (elapsedS() > o.timeBudgetS) { o.log(`time budget reached after ${it - 1} iterations: this model is NOT reproducible`); break; }
      const episodes = Array.from({ length: o.episodesPerIteration }, (_, j) => trainEpisode(it, j));
      const r = await iterate(run, model, learner, rng, episodes);
      totalSteps += r.steps;
      iterationsRun = it;
      o.log(`iter ${it}/${o.iterations}: steps ${totalSteps}, ${r.line}, ${elapsedS().toFixed(0)} s`);
      if (it % o.evalEvery === 0 || it === o.iterations) await consider(it);
    }
    if (best === null) best = { iteration: 0, eval: relative(await run(heldOut, 'ppo', model), fair), file: model.toJson({}, {}) };
    const chosenModel = PpoModel.fromJson((best as { file: ModelFile }).file);
    reportedEval = relative(await run(reported, 'ppo', chosenModel), await run(reported, 'fair', null));
  } finally {
    await pool.destroy();
  }
  const chosen = best as unknown as { file: ModelFile; eval: EvalResult; iteration: number };
  const final = PpoModel.fromJson(chosen.file);
  const { created, ...meta } = metadata(o, hyper, code, { chosen: chosen.iteration, run: iterationsRun, steps: totalSteps, heldOut, reported });
  const file = final.toJson(meta,
    { held_out: { vs_fair_mean: chosen.eval.score, vs_fair_worst: chosen.eval.worst, reward: chosen.eval.perScenario },
      reported: { vs_fair_mean: reportedEval.score, vs_fair_worst: reportedEval.worst, reward: reportedEval.perScenario } },
    created ?? '1970-01-01T00:00:00.000Z');
  o.log(`chose iteration ${chosen.iteration}: held-out mean vs fair ${(chosen.eval.score * 100).toFixed(2)}%; ` +
    `reported scenarios (not used to choose) mean ${(reportedEval.score * 100).toFixed(2)}%, worst ${(reportedEval.worst * 100).toFixed(2)}%`);
  if (o.out !== null) writeFileSync(o.out, `${JSON.stringify(file)}\n`);
  return { model: final, file };
}

interface RunFacts { chosen: number; run: number; steps: number; heldOut: EpisodeSpec[]; reported: EpisodeSpec[] }

/** The model file's metadata: the recipe, the code and a hash of every input. No clock, no machine-dependent value but node's version. */
function metadata(o: TrainOptions, hyper: PpoHyper, code: CodeVersion, f: RunFacts): Record<string, unknown> & { created: string | undefined } {
  const recipe = { seed: o.seed, hidden: o.init === undefined ? o.hidden : [...o.init.policy.sizes.slice(1, -1)], iterations: o.iterations,
    episodes_per_iteration: o.episodesPerIteration, episode_s: o.durationS, eval_every: o.evalEvery, held_out: o.heldOut, hyper };
  const inputs: Record<string, string> = {
    code: code.code_sha256,
    recipe: hashOf(recipe),
    training_episodes: hashOf(Array.from({ length: Math.min(o.iterations, 3) * o.episodesPerIteration },
      (_, k) => (o.trainEpisode ?? generatedEpisode(o.seed, o.durationS))(1 + Math.floor(k / o.episodesPerIteration), k % o.episodesPerIteration))),
    held_out: hashOf(f.heldOut),
    reported: hashOf(f.reported),
    init_model: o.init === undefined ? 'none' : o.init.version,
  };
  for (const [k, v] of Object.entries(o.inputs ?? {})) inputs[k] = hashOf(v);
  return {
    command: o.command, commit: code.commit, created: code.commit_date ?? undefined, code_files: code.files, ...recipe,
    fine_tuned_from: o.init === undefined ? null : o.init.version,
    chosen_iteration: f.chosen, iterations_run: f.run, steps: f.steps, node: process.version,
    inputs_sha256: inputs, inputs_sha256_all: hashOf(inputs),
  };
}
