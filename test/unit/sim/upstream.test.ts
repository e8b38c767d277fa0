// The simulated upstream's three windows (src/sim/upstream.ts) against their
// definitions, on seeded random traffic, and the headers they send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../../src/ppo/rng.ts';
import { hintedRateMilli, noHints } from '../../../src/shm/hint-board.ts';
import { parseScenario, type Scenario } from '../../../src/sim/scenario.ts';
import { createUpstream } from '../../../src/sim/upstream.ts';

function scenario(extra: Record<string, unknown>): Scenario {
  return parseScenario({ name: 'u', duration_s: 60, capacity_tps: 1000, upstream_tps: 100,
    services: [{ name: 'a', priority: 'HIGH', demand: { kind: 'constant', tps: 1 } }], ...extra });
}

/** Accepted request times of random bursts over `ms` milliseconds (10 ms steps, as the simulator plays). */
function play(s: Scenario, ms: number, seed = 7): number[] {
  const u = createUpstream(s);
  const rng = new Rng(seed);
  const accepted: number[] = [];
  for (let t = 0; t < ms; t += 10) {
    const n = rng.next() < 0.3 ? rng.int(0, 40) : 0;
    for (let i = 0; i < n; i++) if (u.accept(t)) accepted.push(t);
  }
  return accepted;
}

const within = (times: number[], from: number, to: number) => times.filter((t) => t >= from && t < to).length;

test('fixed_1s: at most the limit in each calendar second, but two seconds\' worth across a boundary', () => {
  const times = play(scenario({}), 20_000);
  for (let s = 0; s < 20; s++) assert.ok(within(times, s * 1000, s * 1000 + 1000) <= 100);
  const u = createUpstream(scenario({}));
  let n = 0;
  for (let i = 0; i < 150; i++) if (u.accept(990)) n++;
  for (let i = 0; i < 150; i++) if (u.accept(1000)) n++;
  assert.equal(n, 200, 'a fixed window admits a full limit each side of its boundary');
});

test('sliding_1s: never more than the limit in any trailing second', () => {
  const times = play(scenario({ upstream_window: 'sliding_1s' }), 20_000);
  assert.ok(times.length > 1000);
  for (const t of times) assert.ok(within(times, t - 990, t + 10) <= 100, `at ${t}`);
});

test('token_bucket: over any interval at most the burst plus the rate times it; the burst defaults to a tenth of a second', () => {
  const times = play(scenario({ upstream_window: 'token_bucket' }), 20_000);
  for (let i = 0; i < times.length; i += 7) {
    for (const len of [10, 100, 1000, 5000]) assert.ok(within(times, times[i], times[i] + len) <= 10 + (100 * len) / 1000 + 1);
  }
  const u = createUpstream(scenario({ upstream_window: 'token_bucket', upstream_burst: 30 }));
  let n = 0;
  for (let i = 0; i < 100; i++) if (u.accept(0)) n++;
  assert.equal(n, 30, 'starts full, holds upstream_burst');
});

test('the upstream follows upstream_tps(t): a sliding window applies a ramp as it moves', () => {
  const s = scenario({ upstream_window: 'sliding_1s', upstream_tps: [[0, 100], [10, 100], [11, 50]] });
  const u = createUpstream(s);
  let n = 0;
  for (let t = 11_000; t < 12_000; t += 10) while (u.accept(t)) n++;
  assert.equal(n, 50);
});

test('headers: the hinted rate is the limit per second for each window; remaining counts down; a 429 says when to retry', () => {
  for (const w of ['fixed_1s', 'sliding_1s', 'token_bucket']) {
    const u = createUpstream(scenario({ upstream_window: w }));
    const h = noHints();
    assert.ok(u.accept(250));
    u.headers(250, false, h);
    assert.equal(hintedRateMilli(h), 100_000, w);
    const first = h.remaining;
    u.accept(250);
    u.headers(250, false, h);
    assert.equal(h.remaining, first - 1, w);
    while (u.accept(250));
    u.headers(250, true, h);
    assert.ok(h.retryAfterMs > 0 && h.remaining === 0, `${w}: ${JSON.stringify(h)}`);
  }
});
