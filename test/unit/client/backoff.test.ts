import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, DEFAULT_RECONNECT } from '../../../src/client/backoff.ts';

test('without jitter the delay doubles from 100 ms up to 5 s', () => {
  const b = new Backoff({ ...DEFAULT_RECONNECT }, () => 0.5); // 0.5: no spread
  const delays = Array.from({ length: 9 }, () => b.next());
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  b.reset();
  assert.equal(b.next(), 100);
});

test('jitter spreads each delay within +-jitter and never above the maximum', () => {
  const low = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2 }, () => 0);
  const high = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2 }, () => 0.999999);
  assert.equal(low.next(), 80);
  assert.equal(high.next(), 120);
  for (let i = 0; i < 10; i++) high.next();
  assert.equal(high.next(), 1000);
});
