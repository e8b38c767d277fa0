// Drift of the live observations away from the model's training distribution
// (main thread, the controller, once per tick when a model is loaded).
//
// Reference: the model file's observation normaliser (obs_norm: the mean and
// variance of every feature over all the rows the model was trained on; the
// network's inputs are standardised with exactly these). Live: each tick's
// mean of every feature over the pools' service rows, as an exponentially
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

  /** Folds one tick's observations in (every pool's services); nothing without a reference or a row. */
  observe(pools: readonly PoolObservation[]): void {
    if (this.mean === null || this.sd === null) return;
    this.tickMean.fill(0);
    let rows = 0;
    for (const obs of pools) {
      const n = obs.services.length;
      if (n === 0) continue;
      addFeatures(obs, columnsOf(obs.services), this.tickMean);
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

/**
 * Adds f(clip(col[i] / eff * scale)) (a float, as serviceFeatures() stores
 * it) of every service i to sums[j], in service order. A 0 adds 0 and is
 * skipped (a sum is never -0, so no bit changes); the last value's answer is
 * kept (quiet services share a few limits).
 */
function addScaled(sums: Float64Array, j: number, col: Float64Array, eff: number, scale: number): void {
  let last = NaN;
  let x = 0;
  let sum = sums[j];
  for (let i = 0; i < col.length; i++) {
    const v = col[i];
    if (v === 0) continue;
    if (v !== last) { last = v; x = Math.fround(clip(scale === 1 ? v / eff : (v / eff) * scale)); }
    sum += x;
  }
  sums[j] = sum;
}

/** Adds `x` to sums[j] `times` times, one addition after another (as many rows of the same figure would). */
function addRepeated(sums: Float64Array, j: number, x: number, times: number): void {
  let sum = sums[j];
  for (let k = 0; k < times; k++) sum += x;
  sums[j] = sum;
}

/**
 * Adds each service's row of features (../ppo/features.ts serviceFeatures,
 * each figure rounded to a float as there) to `sums`, each feature's rows
 * in service order: the sums of the rows serviceFeatures() returns, to the
 * last bit (test/unit/control/model-drift.test.ts), read from the services'
 * columns (service-columns.ts) a feature at a time, without a row array:
 * with 100 awake pools of 1 000 services, serviceFeatures() cost a few cache
 * misses per service and 7.6 MB of rows a tick.
 */
export function addFeatures(obs: PoolObservation, c: ServiceColumns, sums: Float64Array): void {
  const n = c.length;
  const f = Math.fround;
  const eff = Math.max(1, obs.effectiveTps);
  const byClass = new Float64Array(4); // a fractional or NaN class adds to none, as in serviceFeatures()
  for (let i = 0; i < n; i++) byClass[Math.min(3, Math.max(0, c.priority[i]))] += c.demandTps[i];
  const aboveOf = [0, 1, 2, 3].map((p) => { let above = 0; for (let q = 0; q < p; q++) above += byClass[q]; return f(clip(above / eff)); });
  const oneHot = [0, 0, 0, 0]; // whole numbers: their sums are exact in any order
  let above = sums[14];
  for (let i = 0; i < n; i++) {
    const p = Math.min(3, Math.max(0, c.priority[i]));
    if (p === 0 || p === 1 || p === 2 || p === 3) { oneHot[p]++; above += aboveOf[p]; } // a fractional or NaN class sets no one-hot
    else { let a = 0; for (let q = 0; q < p; q++) a += byClass[q]; above += f(clip(a / eff)); }
  }
  for (let p = 0; p < 4; p++) sums[p] += oneHot[p];
  sums[14] = above;
  addScaled(sums, 4, c.demandTps, eff, 1);
  addScaled(sums, 5, c.forecastTps, eff, 1);
  addScaled(sums, 6, c.trendTps, eff, 10);
  addScaled(sums, 7, c.grantedTps, eff, 1);
  addScaled(sums, 8, c.deniedTps, eff, 1);
  addScaled(sums, 9, c.queue, eff, 1);
  addScaled(sums, 10, c.throttledTps, eff, 1);
  addScaled(sums, 11, c.limitTps, eff, 1);
  addScaled(sums, 12, c.minTps, eff, 1);
  addScaled(sums, 13, c.maxTps, eff, 1);
  addRepeated(sums, 15, f(clip(obs.totalDemandTps / eff)), n);
  addRepeated(sums, 16, f(clip(obs.effectiveTps / Math.max(1, obs.capacityTps))), n);
  addScaled(sums, 17, c.latencyMs, 100, 1);
  addRepeated(sums, 18, f(Math.log(n) / Math.log(64)), n);
}
