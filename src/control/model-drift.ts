// Drift of the live observations away from the model's training distribution
// (main thread, the controller, once per tick when a model is loaded).
//
// Reference: the model file's observation normaliser (obs_norm: the mean and
// variance of every feature over all the rows the model was trained on; the
// network's inputs are standardised with exactly these). Live: each tick's
// mean of every feature over the pools' service rows (each pool's sums taken
// alone from its columns, poolFeatureSums, then added in pool order), as an exponentially
// weighted mean over DRIFT_WINDOW_TICKS ticks (a plain running mean until
// that many ticks were seen, so the start is not biased toward zero).
// Statistic: the standardised mean shift per feature, |live - train| / train
// sd (sd floored at DRIFT_SD_FLOOR, so a feature that never varied in
// training and now does counts as a large shift rather than an infinite one,
// and capped at DRIFT_SCORE_CAP); the score is its maximum over features, and
// the feature that has it is named.
// Why this and not a population stability index: the model file already holds
// the mean and variance (no quantiles, so PSI would need a format change), a
// shift in those units is how far the network's standardised inputs moved,
// and most features are one-hot or mostly zero, where PSI's quantile bins
// collapse. What it misses: a change of spread with the same mean.
// A retrain is due when the score stays above DRIFT_RETRAIN_THRESHOLD (a full
// training standard deviation) once at least a window of ticks was seen; it is
// logged once, and again only after the score fell below DRIFT_CLEAR.

import { FEATURE_COUNT, FEATURE_NAMES } from '../ppo/features.ts';
import type { NormalizerState } from '../ppo/normalizer.ts';
import type { PoolObservation } from '../ppo/observation.ts';
import type { ControlLogger } from './policy-runner.ts';
import { columnsOf, type ServiceColumns } from './service-columns.ts';

export const DRIFT_WINDOW_TICKS = 3000;
export const DRIFT_RETRAIN_THRESHOLD = 1;
export const DRIFT_CLEAR = 0.5;
export const DRIFT_SD_FLOOR = 0.01;
export const DRIFT_SCORE_CAP = 100;

export interface DriftStatus {
  /** Largest standardised mean shift over the features (0 without a model or data). */
  readonly score: number;
  /** The feature that has it ('' when none). */
  readonly feature: string;
  /** Ticks folded in since the model was loaded. */
  readonly ticks: number;
  readonly retrainDue: boolean;
  readonly threshold: number;
}

export class ModelDrift {
  private mean: Float64Array | null = null;
  private sd: Float64Array | null = null;
  private readonly live = new Float64Array(FEATURE_COUNT);
  private readonly tickMean = new Float64Array(FEATURE_COUNT);
  private readonly poolSums = new Float64Array(FEATURE_COUNT);
  private ticks = 0;
  private score = 0;
  private feature = '';
  private due = false;

  constructor(private readonly logger: ControlLogger | null, private readonly windowTicks = DRIFT_WINDOW_TICKS) {}

  /** A new training distribution (a model loaded or reloaded; null: none): the live statistics start over. */
  setReference(norm: NormalizerState | null): void {
    this.mean = norm === null ? null : Float64Array.from(norm.mean);
    this.sd = norm === null ? null : Float64Array.from(norm.var, (v) => Math.max(DRIFT_SD_FLOOR, Math.sqrt(Math.max(0, v))));
    this.live.fill(0);
    this.ticks = 0;
    this.score = 0;
    this.feature = '';
    this.due = false;
  }

  /**
   * Folds one tick's observations in (every pool's services); nothing without a reference or a row. Each pool's
   * sums are taken alone (poolFeatureSums), then added up in pool order.
   */
  observe(pools: readonly PoolObservation[]): void {
    if (this.mean === null || this.sd === null) return;
    this.tickMean.fill(0);
    let rows = 0;
    for (const obs of pools) {
      const n = obs.services.length;
      if (n === 0) continue;
      poolFeatureSums(obs, columnsOf(obs.services), this.poolSums);
      for (let j = 0; j < FEATURE_COUNT; j++) this.tickMean[j] += this.poolSums[j];
      rows += n;
    }
    if (rows === 0) return;
    this.ticks++;
    const alpha = 1 / Math.min(this.ticks, this.windowTicks);
    let best = 0;
    let at = -1;
    for (let j = 0; j < FEATURE_COUNT; j++) {
      this.live[j] += alpha * (this.tickMean[j] / rows - this.live[j]);
      const z = Math.min(DRIFT_SCORE_CAP, Math.abs(this.live[j] - this.mean[j]) / this.sd[j]);
      if (z > best) { best = z; at = j; }
    }
    this.score = best;
    this.feature = at < 0 ? '' : FEATURE_NAMES[at];
    this.judge();
  }

  private judge(): void {
    if (!this.due && this.ticks >= this.windowTicks && this.score > DRIFT_RETRAIN_THRESHOLD) {
      this.due = true;
      this.logger?.warn({ drift: Number(this.score.toFixed(3)), feature: this.feature, threshold: DRIFT_RETRAIN_THRESHOLD },
        `model drift: retrain due (${this.feature} is ${this.score.toFixed(2)} training standard deviations off; see tpsd train --from-history)`);
    } else if (this.due && this.score < DRIFT_CLEAR) {
      this.due = false;
      this.logger?.info({ drift: Number(this.score.toFixed(3)) }, 'model drift back under control');
    }
  }

  status(): DriftStatus {
    return { score: this.score, feature: this.feature, ticks: this.ticks, retrainDue: this.due, threshold: DRIFT_RETRAIN_THRESHOLD };
  }
}

const clip = (x: number, hi = 5): number => (Number.isFinite(x) ? Math.max(-hi, Math.min(hi, x)) : 0);
const f = Math.fround;

/** f(clip(v / eff * scale)), as serviceFeatures() stores it (a float). */
function scaled(v: number, eff: number, scale: number): number {
  return f(clip(scale === 1 ? v / eff : (v / eff) * scale));
}

/**
 * The sum of scaled(col[i]) over every service i, in service order, from 0.
 * A 0 adds 0 and is skipped (a sum is never -0, so no bit changes); the last
 * value's answer is kept (quiet services share a few limits).
 */
function sumScaled(col: Float64Array, eff: number, scale: number): number {
  let last = NaN;
  let x = 0;
  let sum = 0;
  for (let i = 0; i < col.length; i++) {
    const v = col[i];
    if (v === 0) continue;
    if (v !== last) { last = v; x = scaled(v, eff, scale); }
    sum += x;
  }
  return sum;
}

/** sumScaled() over the entries at pos[0 .. m) only (ascending): the same sum when every other entry is 0. */
function sumScaledAt(col: Float64Array, pos: Int32Array, m: number, eff: number, scale: number): number {
  let sum = 0;
  for (let k = 0; k < m; k++) {
    const v = col[pos[k]];
    if (v !== 0) sum += scaled(v, eff, scale);
  }
  return sum;
}

/** `x` added to 0 `times` times, one addition after another (as many rows of the same figure would). */
function repeated(x: number, times: number): number {
  let sum = 0;
  for (let k = 0; k < times; k++) sum += x;
  return sum;
}

/** A priority's one-hot position (0 .. 3), or ODD for a fractional or NaN class (sets no one-hot). */
const ODD = 4;

/**
 * What a pool's feature sums that read only its services' priorities and
 * limits (and the effective capacity) come to: computed again only when
 * some service's priority, min_tps, max_tps or rate changed
 * (ServiceColumns.limitsVersion) or the capacity moved.
 */
interface LimitSums {
  version: number;
  eff: number;
  /** Per service, its class's one-hot position, or ODD. */
  codes: Uint8Array;
  /** present[code]: some service has that code. */
  present: Uint8Array;
  /** Services per one-hot position. */
  oneHot: Float64Array;
  limit: number;
  min: number;
  max: number;
  /** repeated()'s last answer for features 15, 16 and 18 (x, times, sum), each. */
  memo: Float64Array;
}

const limitSums = new WeakMap<ServiceColumns, LimitSums>();

function limitSumsOf(c: ServiceColumns, eff: number): LimitSums {
  let k = limitSums.get(c);
  if (k !== undefined && k.version === c.limitsVersion && k.eff === eff) return k;
  const n = c.length;
  const codes = k !== undefined && k.codes.length === n ? k.codes : new Uint8Array(n);
  const oneHot = new Float64Array(4); // whole numbers: their sums are exact in any order
  const present = new Uint8Array(ODD + 1);
  for (let i = 0; i < n; i++) {
    const p = Math.min(3, Math.max(0, c.priority[i]));
    codes[i] = p === 0 || p === 1 || p === 2 || p === 3 ? p : ODD;
    if (codes[i] !== ODD) oneHot[p]++;
    present[codes[i]] = 1;
  }
  k = { version: c.limitsVersion, eff, codes, present, oneHot, limit: sumScaled(c.limitTps, eff, 1), min: sumScaled(c.minTps, eff, 1),
    max: sumScaled(c.maxTps, eff, 1), memo: k?.memo ?? new Float64Array(9).fill(NaN) };
  limitSums.set(c, k);
  return k;
}

/** repeated(x, times), remembered in memo[at .. at + 3) for the next call with the same figures. */
function repeatedMemo(memo: Float64Array, at: number, x: number, times: number): number {
  if (Object.is(memo[at], x) && memo[at + 1] === times) return memo[at + 2];
  const sum = repeated(x, times);
  memo[at] = x; memo[at + 1] = times; memo[at + 2] = sum;
  return sum;
}

/** Reused positions of the moving services (the calls are synchronous on one thread). */
let positions = new Int32Array(64);

/**
 * The pool's feature sums, into out[0 .. FEATURE_COUNT): the sums over its
 * services of the rows serviceFeatures() (../ppo/features.ts) returns, each
 * figure rounded to a float as there, each feature's rows added in service
 * order from 0, to the last bit (test/unit/control/model-drift.test.ts).
 * Read from the services' columns (service-columns.ts) a feature at a time,
 * without a row array, and only where they can add something: the traffic
 * features over the moving services (ServiceColumns.moving: every other one
 * adds 0), the features of the priorities and limits kept while those did
 * not move (LimitSums); what is left for every service is the demand above
 * its class (a small table by class) and the pool-wide figures. An awake pool
 * of 1 000 services with 10 moving then costs about 10 services' worth
 * of the traffic features and two additions per service, not 13 columns.
 */
export function poolFeatureSums(obs: PoolObservation, c: ServiceColumns, out: Float64Array): void {
  const n = c.length;
  const eff = Math.max(1, obs.effectiveTps);
  if (positions.length < n) positions = new Int32Array(n);
  const pos = positions;
  const m = c.movingPositions(pos);
  const byClass = new Float64Array(4); // a fractional or NaN class adds to none, as in serviceFeatures()
  for (let k = 0; k < m; k++) byClass[Math.min(3, Math.max(0, c.priority[pos[k]]))] += c.demandTps[pos[k]];
  const aboveOf = [0, 1, 2, 3].map((p) => { let above = 0; for (let q = 0; q < p; q++) above += byClass[q]; return f(clip(above / eff)); });
  const ls = limitSumsOf(c, eff);
  const codes = ls.codes;
  let above = 0;
  // Every service adding +0 (all in classes with no demand above them: one class, say) leaves the sum +0.
  let zero = ls.present[ODD] === 0;
  for (let p = 0; p < 4 && zero; p++) if (ls.present[p] === 1 && !Object.is(aboveOf[p], 0)) zero = false;
  for (let i = 0; i < n && !zero; i++) {
    const code = codes[i];
    if (code !== ODD) { above += aboveOf[code]; continue; }
    const p = Math.min(3, Math.max(0, c.priority[i]));
    let a = 0;
    for (let q = 0; q < p; q++) a += byClass[q];
    above += f(clip(a / eff));
  }
  for (let p = 0; p < 4; p++) out[p] = ls.oneHot[p];
  out[4] = sumScaledAt(c.demandTps, pos, m, eff, 1);
  out[5] = sumScaledAt(c.forecastTps, pos, m, eff, 1);
  out[6] = sumScaledAt(c.trendTps, pos, m, eff, 10);
  out[7] = sumScaledAt(c.grantedTps, pos, m, eff, 1);
  out[8] = sumScaledAt(c.deniedTps, pos, m, eff, 1);
  out[9] = sumScaledAt(c.queue, pos, m, eff, 1);
  out[10] = sumScaledAt(c.throttledTps, pos, m, eff, 1);
  out[11] = ls.limit;
  out[12] = ls.min;
  out[13] = ls.max;
  out[14] = above;
  out[15] = repeatedMemo(ls.memo, 0, f(clip(obs.totalDemandTps / eff)), n);
  out[16] = repeatedMemo(ls.memo, 3, f(clip(obs.effectiveTps / Math.max(1, obs.capacityTps))), n);
  out[17] = sumScaledAt(c.latencyMs, pos, m, 100, 1);
  out[18] = repeatedMemo(ls.memo, 6, f(Math.log(n) / Math.log(64)), n);
}
