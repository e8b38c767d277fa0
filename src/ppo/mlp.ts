// A small multi-layer perceptron on Float32Array with hand-written backprop
// (no ML framework). tanh hidden layers, linear output. All parameters live in
// one flat Float32Array (weights row-major, then biases, layer by layer), so
// Adam, serialisation and copying to workers treat them as one vector.
// Not thread-shared: each thread (trainer, rollout worker, inference worker)
// owns its instances; a forward pass caches activations for backward().

import type { Rng } from './rng.ts';

export class Mlp {
  readonly sizes: readonly number[];
  readonly params: Float32Array;
  readonly grads: Float32Array;
  /** Offsets of each layer's weights and biases in params. */
  private readonly wOff: number[] = [];
  private readonly bOff: number[] = [];
  /** acts[l]: batch x sizes[l] activations of the last forward (acts[0] = input). */
  private acts: Float32Array[] = [];
  private batch = 0;
  /** infer()'s input and per-layer output buffers, reused while the batch size allows. */
  private scratch: Float64Array[] = [];

  constructor(sizes: readonly number[], params?: Float32Array) {
    this.sizes = sizes;
    let n = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      this.wOff.push(n); n += sizes[l] * sizes[l + 1];
      this.bOff.push(n); n += sizes[l + 1];
    }
    if (params !== undefined && params.length !== n) throw new Error(`MLP ${sizes.join('-')} needs ${n} parameters, got ${params.length}`);
    this.params = params ?? new Float32Array(n);
    this.grads = new Float32Array(n);
  }

  get inputSize(): number { return this.sizes[0]; }
  get outputSize(): number { return this.sizes[this.sizes.length - 1]; }

  /** Scaled uniform (Glorot) weights, zero biases; the output layer scaled by outScale. */
  init(rng: Rng, outScale = 1): this {
    const L = this.sizes.length - 1;
    for (let l = 0; l < L; l++) {
      const fanIn = this.sizes[l];
      const fanOut = this.sizes[l + 1];
      const lim = Math.sqrt(6 / (fanIn + fanOut)) * (l === L - 1 ? outScale : 1);
      for (let i = 0; i < fanIn * fanOut; i++) this.params[this.wOff[l] + i] = rng.uniform(-lim, lim);
      this.params.fill(0, this.bOff[l], this.bOff[l] + fanOut);
    }
    return this;
  }

  /** Forward pass of `batch` rows of x; returns batch x outputSize. */
  forward(x: Float32Array, batch: number): Float32Array {
    const L = this.sizes.length - 1;
    const p = this.params;
    this.batch = batch;
    this.acts = [x];
    let input = x;
    for (let l = 0; l < L; l++) {
      const nin = this.sizes[l];
      const nout = this.sizes[l + 1];
      const out = new Float32Array(batch * nout);
      const w = this.wOff[l];
      const bo = this.bOff[l];
      const hidden = l < L - 1;
      for (let r = 0; r < batch; r++) {
        const xi = r * nin;
        for (let j = 0; j < nout; j++) {
          let s = p[bo + j];
          const wj = w + j * nin;
          for (let k = 0; k < nin; k++) s += p[wj + k] * input[xi + k];
          out[r * nout + j] = hidden ? Math.tanh(s) : s;
        }
      }
      this.acts.push(out);
      input = out;
    }
    return input;
  }

  /**
   * Inference only: the same result as forward() (to float rounding) without
   * caching activations for backward(), into reused Float64 buffers (valid
   * until the next infer()), with tanh from one exp. Rows go four at a time so
   * each weight read serves four dot products; that halves the time of the
   * row-at-a-time loop for a 64-service pool. This is the daemon's per-tick path.
   */
  infer(x: Float32Array, batch: number): Float64Array {
    const L = this.sizes.length - 1;
    const p = this.params;
    // Every layer reads a Float64Array, so the loop below sees one array type.
    let input = this.buffer(0, batch * this.sizes[0]);
    for (let i = 0; i < batch * this.sizes[0]; i++) input[i] = x[i];
    for (let l = 0; l < L; l++) {
      const nin = this.sizes[l];
      const nout = this.sizes[l + 1];
      const out = this.buffer(l + 1, batch * nout);
      const w = this.wOff[l];
      const bo = this.bOff[l];
      const hidden = l < L - 1;
      let r = 0;
      for (; r + 3 < batch; r += 4) {
        const x0 = r * nin, x1 = x0 + nin, x2 = x1 + nin, x3 = x2 + nin;
        const o = r * nout;
        for (let j = 0; j < nout; j++) {
          const b = p[bo + j];
          let s0 = b, s1 = b, s2 = b, s3 = b;
          const wj = w + j * nin;
          for (let k = 0; k < nin; k++) {
            const wk = p[wj + k];
            s0 += wk * input[x0 + k];
            s1 += wk * input[x1 + k];
            s2 += wk * input[x2 + k];
            s3 += wk * input[x3 + k];
          }
          out[o + j] = hidden ? tanh(s0) : s0;
          out[o + nout + j] = hidden ? tanh(s1) : s1;
          out[o + 2 * nout + j] = hidden ? tanh(s2) : s2;
          out[o + 3 * nout + j] = hidden ? tanh(s3) : s3;
        }
      }
      for (; r < batch; r++) {
        const xi = r * nin;
        for (let j = 0; j < nout; j++) {
          let s = p[bo + j];
          const wj = w + j * nin;
          for (let k = 0; k < nin; k++) s += p[wj + k] * input[xi + k];
          out[r * nout + j] = hidden ? tanh(s) : s;
        }
      }
      input = out;
    }
    return input.subarray(0, batch * this.outputSize);
  }

  private buffer(i: number, n: number): Float64Array {
    let b = this.scratch[i];
    if (b === undefined || b.length < n) b = this.scratch[i] = new Float64Array(n);
    return b;
  }

  /** Adds d(loss)/d(params) to grads, given d(loss)/d(output) of the last forward; returns d(loss)/d(input). */
  backward(dOut: Float32Array): Float32Array {
    const L = this.sizes.length - 1;
    const p = this.params;
    const g = this.grads;
    const batch = this.batch;
    let delta = Float32Array.from(dOut);
    for (let l = L - 1; l >= 0; l--) {
      const nin = this.sizes[l];
      const nout = this.sizes[l + 1];
      const input = this.acts[l];
      const w = this.wOff[l];
      const bo = this.bOff[l];
      const dIn = new Float32Array(batch * nin);
      for (let r = 0; r < batch; r++) {
        const xi = r * nin;
        for (let j = 0; j < nout; j++) {
          const d = delta[r * nout + j];
          if (d === 0) continue;
          g[bo + j] += d;
          const wj = w + j * nin;
          for (let k = 0; k < nin; k++) {
            g[wj + k] += d * input[xi + k];
            dIn[xi + k] += d * p[wj + k];
          }
        }
      }
      if (l > 0) {
        // Through tanh of the layer below: d/dz = d/da * (1 - a^2).
        for (let i = 0; i < dIn.length; i++) dIn[i] *= 1 - input[i] * input[i];
      }
      delta = dIn;
    }
    return delta;
  }

  zeroGrad(): void { this.grads.fill(0); }
}

/** tanh from one exp (Math.tanh is slower); exact to float64 rounding, saturates cleanly. */
function tanh(s: number): number {
  return 1 - 2 / (Math.exp(2 * s) + 1);
}
