import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBucket, LocalLimiter, defaultBurst } from '../../../src/client/local-bucket.ts';

test('default burst mirrors the daemon: max(1, ceil(tps / 20))', () => {
  assert.equal(defaultBurst(1), 1);
  assert.equal(defaultBurst(20), 1);
  assert.equal(defaultBurst(21), 2);
  assert.equal(defaultBurst(1000), 50);
  assert.equal(new LocalBucket(100, undefined, 0).burst, 5);
});

test('a full bucket grants up to its burst, then denies with the refill time', () => {
  const b = new LocalBucket(10, 3, 0);
  assert.deepEqual(b.take(1, 0, 0), { granted: true, delayMs: 0, remaining: 2, retryAfterMs: 0 });
  assert.equal(b.take(2, 0, 0).granted, true);
  const denied = b.take(1, 0, 0);
  assert.equal(denied.granted, false);
  assert.equal(denied.retryAfterMs, 100); // 1 token at 10/s
  assert.equal(b.take(1, 0, 50).retryAfterMs, 50);
  assert.equal(b.take(1, 0, 100).granted, true);
});

test('refill never exceeds the burst', () => {
  const b = new LocalBucket(10, 2, 0);
  b.take(2, 0, 0);
  assert.equal(b.take(1, 0, 60_000).remaining, 1);
});

test('a request that fits in waitMs reserves its tokens and is granted after a delay', () => {
  const b = new LocalBucket(10, 1, 0);
  assert.equal(b.take(1, 0, 0).granted, true);
  const first = b.take(1, 500, 0);
  assert.deepEqual(first, { granted: true, delayMs: 100, remaining: 0, retryAfterMs: 0 });
  const second = b.take(1, 500, 0); // queued behind the first reservation
  assert.equal(second.granted, true);
  assert.equal(second.delayMs, 200);
  const third = b.take(1, 250, 0);
  assert.equal(third.granted, false);
  assert.equal(third.retryAfterMs, 300);
});

test('more tokens than the burst are never granted', () => {
  const b = new LocalBucket(10, 2, 0);
  const d = b.take(3, 60_000, 0);
  assert.equal(d.granted, false);
  assert.ok(d.retryAfterMs >= 1);
});

test('the limiter keeps one bucket per key', () => {
  const l = new LocalLimiter({ tps: 1, burst: 1 });
  assert.equal(l.take('a', 1, 0, 0).granted, true);
  assert.equal(l.take('a', 1, 0, 0).granted, false);
  assert.equal(l.take('b', 1, 0, 0).granted, true);
  assert.equal(l.size, 2);
});

test('the limiter is bounded: full buckets are forgotten first, then the oldest', () => {
  const l = new LocalLimiter({ tps: 1, burst: 1 }, 3);
  l.take('a', 1, 0, 0);
  l.take('b', 1, 0, 0);
  l.take('c', 1, 0, 0);
  l.take('d', 1, 0, 0); // none full: 'a' (oldest) goes
  assert.equal(l.size, 3);
  assert.equal(l.take('b', 1, 0, 0).granted, false); // b still remembered and empty
  // At t=5s every bucket is full again: all are dropped before adding 'e'.
  l.take('e', 1, 0, 5000);
  assert.equal(l.size, 1);
});

test('the limiter rejects a rate that is not positive', () => {
  assert.throws(() => new LocalLimiter({ tps: 0 }), /tps/);
  assert.throws(() => new LocalLimiter({ tps: 5, burst: 0 }), /burst/);
});
