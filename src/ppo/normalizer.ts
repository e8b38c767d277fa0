// Running mean and variance per feature (Chan et al. parallel update), used to
// normalise observations. The trainer owns the running copy and ships a frozen
// snapshot in each rollout task and in the model file; workers only apply it.

export interface NormalizerState {
  mean: number[];
  var: number[];
  count: number;
}

export class Normalizer {
  readonly mean: Float64Array;
  readonly var: Float64Array;
  count: number;
  private readonly clip: number;

  constructor(readonly size: number, state?: NormalizerState, clip = 5) {
    this.mean = new Float64Array(state?.mean ?? new Array(size).fill(0));
    this.var = new Float64Array(state?.var ?? new Array(size).fill(1));
    this.count = state?.count ?? 0;
    this.clip = clip;
    if (this.mean.length !== size || this.var.length !== size) throw new Error(`normalizer needs ${size} features`);
  }

  /** Folds `rows` rows of raw features into the statistics. */
  update(x: Float32Array, rows: number): void {
    if (rows === 0) return;
    const n = this.size;
    for (let j = 0; j < n; j++) {
      let m = 0;
      for (let r = 0; r < rows; r++) m += x[r * n + j];
      m /= rows;
      let v = 0;
      for (let r = 0; r < rows; r++) { const d = x[r * n + j] - m; v += d * d; }
      v /= rows;
      const tot = this.count + rows;
      const delta = m - this.mean[j];
      this.mean[j] += (delta * rows) / tot;
      this.var[j] = (this.var[j] * this.count + v * rows + (delta * delta * this.count * rows) / tot) / tot;
    }
    this.count += rows;
  }

  /** Normalises rows in place. */
  apply(x: Float32Array, rows: number): Float32Array {
    const n = this.size;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) {
        const z = (x[r * n + j] - this.mean[j]) / Math.sqrt(this.var[j] + 1e-8);
        x[r * n + j] = Math.max(-this.clip, Math.min(this.clip, z));
      }
    }
    return x;
  }

  state(): NormalizerState {
    return { mean: Array.from(this.mean), var: Array.from(this.var), count: this.count };
  }
}
