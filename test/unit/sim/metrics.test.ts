// The simulator's report (src/sim/metrics.ts): 429s are "initial" in the
// run's first 2 ticks and in the tick of an upstream drop and the 2 after it,
// "late" otherwise; waits are reported per class and pooled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRecorder } from '../../../src/sim/metrics.ts';

function record(m: MetricsRecorder, tick: number, upstreamTps: number, throttled: number, dropping = false): void {
  m.record({ tick, tickS: 1, upstreamTps, dropping, arrived: [10], granted: [10], served: [10 - throttled], throttled: [throttled],
    priority: [0], minTps: [0] });
}

const hist = (bins: number, at: number[]) => { const h = new Float64Array(bins); for (const a of at) h[a]++; return h; };

test('429s of the first 2 ticks, and of a drop\'s tick and the 2 after it, are initial; the rest late', () => {
  const m = new MetricsRecorder();
  const upstream = [100, 100, 100, 100, 80, 80, 80, 80, 90, 90, 85, 85, 85, 85];
  const throttled = [1, 2, 4, 0, 8, 16, 32, 64, 128, 0, 256, 512, 1024, 2048];
  upstream.forEach((u, t) => record(m, t, u, throttled[t]));
  const r = m.report('s', 'fair', 1, [hist(10, [])], 0);
  assert.equal(r.violations_initial, 1 + 2 + 8 + 16 + 32 + 256 + 512 + 1024);
  assert.equal(r.violations_late, 4 + 64 + 128 + 2048);
  assert.deepEqual(r.violations_by_tick.filter((v) => v[2] === 1).map((v) => v[0]), [2, 7, 8, 13]);
});

test('a tick in which the limit falls (sliding or token-bucket upstream) counts as a drop though its mean does not', () => {
  const m = new MetricsRecorder();
  for (let t = 0; t < 10; t++) record(m, t, 100, t >= 5 ? 1 : 0, t === 5);
  const r = m.report('s', 'fair', 1, [hist(10, [])], 0);
  assert.equal(r.violations_initial, 3);
  assert.equal(r.violations_late, 2);
});

test('wait_p99_ms per class with traffic, queue_p99_ms over all of them', () => {
  const m = new MetricsRecorder();
  m.record({ tick: 0, tickS: 1, upstreamTps: 100, arrived: [100, 100], granted: [100, 100], served: [100, 100], throttled: [0, 0],
    priority: [0, 3], minTps: [0, 0] });
  const crit = hist(5000, Array.from({ length: 100 }, (_, i) => (i < 99 ? 1 : 40)));
  const low = hist(5000, Array.from({ length: 100 }, () => 4990));
  const r = m.report('s', 'fair', 1, [crit, hist(5000, []), hist(5000, []), low], 0);
  assert.deepEqual(r.wait_p99_ms, { CRITICAL: 1, LOW: 4990 });
  assert.equal(r.queue_p99_ms, 4990);
});
