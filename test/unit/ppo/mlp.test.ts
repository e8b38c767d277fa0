import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Mlp } from '../../../src/ppo/mlp.ts';
import { Rng } from '../../../src/ppo/rng.ts';

// loss = sum(out * c) for fixed random c, so d(loss)/d(out) = c.
function loss(net: Mlp, x: Float32Array, batch: number, c: Float32Array): number {
  const out = net.forward(x, batch);
  let l = 0;
  for (let i = 0; i < out.length; i++) l += out[i] * c[i];
  return l;
}

test('MLP backprop matches central finite differences', () => {
  const rng = new Rng(7);
  const net = new Mlp([5, 8, 6, 2]).init(rng);
  for (let i = 0; i < net.params.length; i++) net.params[i] += rng.uniform(-0.05, 0.05); // non-zero biases
  const batch = 3;
  const x = Float32Array.from({ length: batch * 5 }, () => rng.uniform(-1, 1));
  const c = Float32Array.from({ length: batch * 2 }, () => rng.uniform(-1, 1));
  net.zeroGrad();
  net.forward(x, batch);
  const dIn = net.backward(c);
  const eps = 1e-2;
  let worst = 0;
  for (let i = 0; i < net.params.length; i++) {
    const p0 = net.params[i];
    net.params[i] = p0 + eps;
    const up = loss(net, x, batch, c);
    net.params[i] = p0 - eps;
    const down = loss(net, x, batch, c);
    net.params[i] = p0;
    const numeric = (up - down) / (2 * eps);
    const err = Math.abs(numeric - net.grads[i]) / Math.max(1e-2, Math.abs(numeric) + Math.abs(net.grads[i]));
    worst = Math.max(worst, err);
  }
  assert.ok(worst < 1e-2, `worst relative error ${worst}`);
  // Input gradient too.
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + eps;
    const up = loss(net, x, batch, c);
    x[i] = x0 - eps;
    const down = loss(net, x, batch, c);
    x[i] = x0;
    const numeric = (up - down) / (2 * eps);
    assert.ok(Math.abs(numeric - dIn[i]) < 1e-2 * Math.max(1, Math.abs(numeric)), `input ${i}: ${numeric} vs ${dIn[i]}`);
  }
});

test('MLP rejects a parameter vector of the wrong size', () => {
  assert.throws(() => new Mlp([3, 4, 1], new Float32Array(5)), /needs 21 parameters/);
});

test('Mlp.infer matches forward() and reuses its buffers across batch sizes', () => {
  const net = new Mlp([9, 32, 32, 2]).init(new Rng(5));
    for (const batch of [1, 7, 64, 3]) {
      const x = Float32Array.from({ length: batch * 9 }, (_, i) => Math.sin(i * 0.37) * 3);
      const a = net.forward(x, batch);
      const b = net.infer(x, batch);
      assert.equal(b.length, a.length);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `batch ${batch} out ${i}: ${a[i]} vs ${b[i]}`);
    }
});
