// Adam (Kingma & Ba) over one flat Float32Array of parameters, with optional
// global-norm gradient clipping. Trainer thread only.

export class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;

  constructor(private readonly params: Float32Array, public lr = 3e-4,
    private readonly beta1 = 0.9, private readonly beta2 = 0.999, private readonly eps = 1e-8) {
    this.m = new Float32Array(params.length);
    this.v = new Float32Array(params.length);
  }

  /** One step against `grads` (a gradient of the loss to minimise). */
  step(grads: Float32Array, maxNorm = Infinity): void {
    let norm = 0;
    for (let i = 0; i < grads.length; i++) norm += grads[i] * grads[i];
    norm = Math.sqrt(norm);
    const scale = norm > maxNorm ? maxNorm / norm : 1;
    this.t++;
    const b1 = 1 - this.beta1 ** this.t;
    const b2 = 1 - this.beta2 ** this.t;
    for (let i = 0; i < grads.length; i++) {
      const gi = grads[i] * scale;
      this.m[i] = this.beta1 * this.m[i] + (1 - this.beta1) * gi;
      this.v[i] = this.beta2 * this.v[i] + (1 - this.beta2) * gi * gi;
      this.params[i] -= (this.lr * (this.m[i] / b1)) / (Math.sqrt(this.v[i] / b2) + this.eps);
    }
  }
}
