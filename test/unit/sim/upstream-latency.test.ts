import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyModel, latencyAtLoad, loadWithin, TickLatencies } from '../../../src/sim/upstream-latency.ts';

test('the latency curve: base at low load, rising near the knee, no answer at or past it', () => {
  assert.equal(latencyAtLoad(40, 0), 40);
  assert.ok(Math.abs(latencyAtLoad(40, 0.5) - 45) < 1e-9);
  assert.ok(Math.abs(latencyAtLoad(40, 0.9) - 40 * (1 + 0.6561 / 0.1)) < 1e-9);
  let prev = 0;
  for (let r = 0; r < 1; r += 0.01) { const l = latencyAtLoad(40, r); assert.ok(l >= prev); prev = l; }
  assert.equal(latencyAtLoad(40, 1), Infinity);
  assert.equal(latencyAtLoad(40, 1.5), Infinity);
  const share = loadWithin(40, 300);
  assert.ok(latencyAtLoad(40, share) <= 300 && latencyAtLoad(40, share + 1e-6) > 300);
  assert.equal(loadWithin(400, 300), 0);
});

test('the model counts the trailing second: load rises with admissions and falls when they stop', () => {
  const m = new LatencyModel({ base_ms: 40, knee_tps: 1000, timeout_ms: 2000 });
  let last = 0;
  for (let ms = 0; ms < 1000; ms++) last = m.admit(ms); // 1000 in a second: at the knee
  assert.equal(last, Infinity);
  const after = m.admit(2500); // the second before is empty again
  assert.ok(Math.abs(after - latencyAtLoad(40, 0.001)) < 1e-6, `${after}`);
  const moving = new LatencyModel({ base_ms: 40, knee_tps: [[0, 1000], [10, 500]], timeout_ms: 2000 });
  assert.equal(moving.kneeAt(5000), 750);
});

test('a tick meets the SLO when its p95 is within it; timeouts count beyond it', () => {
  const t = new TickLatencies(300, 2000);
  for (let i = 0; i < 95; i++) t.served(100);
  for (let i = 0; i < 5; i++) t.timedOut();
  assert.ok(t.p95() <= 300);
  t.timedOut();
  assert.equal(t.p95(), Infinity);
  t.reset();
  assert.equal(t.p95(), 0);
});
