// The upstream's rate-limit headers read into RELEASE hints: each family
// of headers (IETF drafts old and new, X-RateLimit-*, Retry-After), each
// shape of headers object (fetch Headers, Node's lower-case object with
// arrays, a get() that is case-insensitive), and garbage left out.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerValue, readRateLimitHeaders, retryAfterMs } from '../../../src/client/rate-limit-headers.ts';

const NOW_MS = Date.UTC(2026, 11, 6, 12, 0, 0);

test('IETF draft headers up to 06: RateLimit-Limit / -Remaining / -Reset, and the window of the same quota', () => {
  const h = new Headers({ 'RateLimit-Limit': '100, 100;w=60, 1000;w=3600', 'RateLimit-Remaining': '42', 'RateLimit-Reset': '17' });
  assert.deepEqual(readRateLimitHeaders(h, 200, NOW_MS), { limit: 100, remaining: 42, resetMs: 17_000, windowMs: 60_000 });
  const policy = new Headers({ 'RateLimit-Limit': '10', 'RateLimit-Policy': '10;w=1', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '0.25' });
  assert.deepEqual(readRateLimitHeaders(policy, 200, NOW_MS), { limit: 10, remaining: 0, resetMs: 250, windowMs: 1000 });
});

test('IETF draft 07+: RateLimit with r and t, RateLimit-Policy with q and w (the first policy)', () => {
  const h = new Headers({ RateLimit: '"default";r=50;t=30, "burst";r=2;t=1', 'RateLimit-Policy': '"default";q=100;w=60, "burst";q=5;w=1' });
  assert.deepEqual(readRateLimitHeaders(h, 200, NOW_MS), { limit: 100, remaining: 50, resetMs: 30_000, windowMs: 60_000 });
  const old = new Headers({ RateLimit: 'limit=20, remaining=3, reset=4' }); // drafts 01-03
  assert.deepEqual(readRateLimitHeaders(old, 200, NOW_MS), { limit: 20, remaining: 3, resetMs: 4000 });
});

test('X-RateLimit-*: a reset as seconds from now, a Unix time in s or ms, or Reset-After', () => {
  const inSeconds = { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': '90' };
  assert.deepEqual(readRateLimitHeaders(inSeconds, 200, NOW_MS), { limit: 5000, remaining: 4999, resetMs: 90_000 });
  const unixS = { 'x-ratelimit-limit': '60', 'x-ratelimit-reset': String(NOW_MS / 1000 + 120) }; // GitHub
  assert.deepEqual(readRateLimitHeaders(unixS, 200, NOW_MS), { limit: 60, resetMs: 120_000 });
  const unixMs = { 'x-ratelimit-reset': String(NOW_MS + 1500) };
  assert.deepEqual(readRateLimitHeaders(unixMs, 200, NOW_MS), { resetMs: 1500 });
  const past = { 'x-ratelimit-reset': String(NOW_MS / 1000 - 10) };
  assert.deepEqual(readRateLimitHeaders(past, 200, NOW_MS), { resetMs: 0 });
  const discord = { 'x-ratelimit-reset': String(NOW_MS / 1000 + 9), 'x-ratelimit-reset-after': '1.5', 'x-rate-limit-limit': '5' };
  assert.deepEqual(readRateLimitHeaders(discord, 200, NOW_MS), { limit: 5, resetMs: 1500 });
});

test('the IETF headers win over X-RateLimit-*', () => {
  const h = new Headers({ 'RateLimit-Limit': '10', 'X-RateLimit-Limit': '99', 'X-RateLimit-Remaining': '7' });
  assert.deepEqual(readRateLimitHeaders(h, 200, NOW_MS), { limit: 10, remaining: 7 });
});

test('Retry-After in seconds or as an HTTP date, on a 429 or 503 only', () => {
  assert.deepEqual(readRateLimitHeaders(new Headers({ 'Retry-After': '3' }), 429, NOW_MS), { retryAfterMs: 3000 });
  const date = new Date(NOW_MS + 7000).toUTCString();
  assert.deepEqual(readRateLimitHeaders(new Headers({ 'Retry-After': date }), 503, NOW_MS), { retryAfterMs: 7000 });
  assert.equal(readRateLimitHeaders(new Headers({ 'Retry-After': '3' }), 200, NOW_MS), undefined);
  assert.equal(retryAfterMs(new Date(NOW_MS - 5000).toUTCString(), NOW_MS), 0, 'a date in the past: now');
  for (const bad of ['', 'soon', '-1', '1e3', 'NaN', '3 s', 'Thu, 99 Foo 2026']) assert.equal(retryAfterMs(bad, NOW_MS), undefined, bad);
});

test('header objects: Node style (lower-case, arrays, numbers), a case-insensitive get(), and anything else', () => {
  assert.equal(headerValue({ 'x-ratelimit-limit': ['10', '20'] }, 'X-RateLimit-Limit'), '10, 20');
  assert.equal(headerValue({ 'x-ratelimit-limit': 10 }, 'X-RateLimit-Limit'), '10');
  assert.equal(headerValue({ 'x-ratelimit-limit': { a: 1 } }, 'x-ratelimit-limit'), undefined);
  const getter = { get: (n: string) => (n.toLowerCase() === 'ratelimit-remaining' ? '3' : null) }; // axios' AxiosHeaders
  assert.deepEqual(readRateLimitHeaders(getter, 200, NOW_MS), { remaining: 3 });
  assert.deepEqual(readRateLimitHeaders({ 'x-ratelimit-limit': ['10', '20'] }, 200, NOW_MS), { limit: 10 });
  for (const h of [null, undefined, 'RateLimit-Limit: 5', 42, {}, new Headers()]) assert.equal(readRateLimitHeaders(h, 429, NOW_MS), undefined);
});

test('values that are not numbers >= 0 are left out, never guessed', () => {
  const h = new Headers({
    'RateLimit-Limit': 'lots', 'RateLimit-Remaining': '-1', 'RateLimit-Reset': '1e9',
    'X-RateLimit-Limit': '0x10', 'X-RateLimit-Remaining': ' 12 ', 'Retry-After': 'Infinity',
  });
  assert.deepEqual(readRateLimitHeaders(h, 429, NOW_MS), { remaining: 12 });
  assert.deepEqual(readRateLimitHeaders(new Headers({ 'RateLimit-Limit': '12.7' }), 200, NOW_MS), { limit: 12 });
});

test('a number too large for the wire is left out', () => {
  const huge = '9'.repeat(306); // finite as seconds, Infinity as ms
  const h = new Headers({ 'RateLimit-Reset': huge, 'RateLimit-Limit': huge, 'X-RateLimit-Reset-After': huge, 'RateLimit-Remaining': '1' });
  assert.deepEqual(readRateLimitHeaders(h, 200, NOW_MS), { remaining: 1 });
});
