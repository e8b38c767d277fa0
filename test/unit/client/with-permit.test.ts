// withPermit reports how the guarded call went, read from what it returned
// as well as from what it threw (fetch resolves on a 429), with the
// upstream's rate-limit headers as hints; release() takes OUTCOME_TIMED_OUT
// and hints. Checked on the RELEASE requests a fake daemon receives.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, type TpsdClient } from '../../../src/client/client.ts';
import { OUTCOME_FAILED, OUTCOME_OK, OUTCOME_THROTTLED, OUTCOME_TIMED_OUT } from '../../../src/client/index.ts';
import { startFakeDaemon, waitFor, type FakeDaemon } from './fake-daemon.ts';

async function withClient(fn: (client: TpsdClient, releases: () => unknown[][]) => Promise<void>): Promise<void> {
  const fake: FakeDaemon = await startFakeDaemon();
  const client = await connect(fake.url);
  const releases = (): unknown[][] => fake.messages.flat().filter((r) => r[0] === 2);
  try {
    await fn(client, releases);
  } finally {
    await client.close();
    await fake.close();
  }
}

/** Runs withPermit(fn) and returns the RELEASE it sent, without its latency: [2, 0, lease, outcome, hints?]. */
async function releaseOf(client: TpsdClient, releases: () => unknown[][], fn: () => unknown): Promise<{ sent: unknown[]; result: unknown; error: unknown }> {
  const before = releases().length;
  let result: unknown, error: unknown;
  try {
    result = await client.withPermit('pool/svc', fn);
  } catch (err) {
    error = err;
  }
  await waitFor(() => releases().length === before + 1);
  const r = releases()[before];
  assert.equal(typeof r[4], 'number');
  return { sent: [r[0], r[1], typeof r[2], r[3], ...r.slice(5)], result, error };
}

test('a returned 429 Response is OUTCOME_THROTTLED with its rate-limit headers as hints, and is returned as it is', () => withClient(async (client, releases) => {
  const res = new Response('slow down', {
    status: 429,
    headers: { 'Retry-After': '2', 'RateLimit-Limit': '100', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '30' },
  });
  const { sent, result } = await releaseOf(client, releases, () => Promise.resolve(res));
  assert.equal(result, res);
  assert.deepEqual(sent, [2, 0, 'number', OUTCOME_THROTTLED, { limit: 100, remaining: 0, reset_ms: 30_000, retry_after_ms: 2000 }]);
}));

test('a returned 200 with X-RateLimit headers is OUTCOME_OK with hints; without headers, five elements', () => withClient(async (client, releases) => {
  const ok = new Response('ok', { headers: { 'X-RateLimit-Limit': '50', 'X-RateLimit-Remaining': '49' } });
  assert.deepEqual((await releaseOf(client, releases, () => ok)).sent, [2, 0, 'number', OUTCOME_OK, { limit: 50, remaining: 49 }]);
  assert.deepEqual((await releaseOf(client, releases, () => new Response('ok'))).sent, [2, 0, 'number', OUTCOME_OK]);
}));

test('a returned 5xx is OUTCOME_FAILED; a value that is not a response is OUTCOME_OK', () => withClient(async (client, releases) => {
  assert.deepEqual((await releaseOf(client, releases, () => new Response('', { status: 503 }))).sent, [2, 0, 'number', OUTCOME_FAILED]);
  // Node and axios style response objects count too (status or statusCode, with headers).
  assert.deepEqual((await releaseOf(client, releases, () => ({ statusCode: 429, headers: { 'retry-after': '1' } }))).sent,
    [2, 0, 'number', OUTCOME_THROTTLED, { retry_after_ms: 1000 }]);
  for (const v of [{ status: 429 }, { status: 500, id: 7 }, 'text', null, 42]) {
    assert.deepEqual((await releaseOf(client, releases, () => v)).sent, [2, 0, 'number', OUTCOME_OK], JSON.stringify(v));
  }
}));

test('thrown: an upstream 429 with its response headers, a timeout, anything else; the error is rethrown', () => withClient(async (client, releases) => {
  const axios429 = Object.assign(new Error('Request failed with status code 429'), {
    response: { status: 429, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } },
  });
  const t = await releaseOf(client, releases, () => { throw axios429; });
  assert.equal(t.error, axios429);
  assert.equal(t.sent[3], OUTCOME_THROTTLED);
  const retry = (t.sent[4] as { retry_after_ms: number }).retry_after_ms;
  assert.ok(retry > 55_000 && retry <= 60_000, `retry_after_ms ${retry}`);
  const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  assert.deepEqual((await releaseOf(client, releases, () => Promise.reject(timeout))).sent, [2, 0, 'number', OUTCOME_TIMED_OUT]);
  assert.deepEqual((await releaseOf(client, releases, () => { throw new Error('boom'); })).sent, [2, 0, 'number', OUTCOME_FAILED]);
}));

test('release() takes OUTCOME_TIMED_OUT and hints; refuses outcome 4 and bad hints', () => withClient(async (client, releases) => {
  const p = await client.acquire('pool/svc');
  assert.throws(() => client.release(p.lease, 4 as never, 1), /OUTCOME_TIMED_OUT/);
  assert.throws(() => client.release(p.lease, OUTCOME_OK, 1, { limit: -1 }), /limit/);
  assert.throws(() => client.release(p.lease, OUTCOME_OK, 1, { resetMs: Number.NaN }), /resetMs/);
  client.release(p.lease, OUTCOME_TIMED_OUT, 2_000_000, { limit: 10.4, windowMs: 1000, retryAfterMs: undefined });
  await waitFor(() => releases().length === 1);
  assert.deepEqual(releases()[0], [2, 0, p.lease, OUTCOME_TIMED_OUT, 2_000_000, { limit: 10, window_ms: 1000 }]);
  const q = await client.acquire('pool/svc');
  client.release(q.lease, OUTCOME_OK, 1, {});
  await waitFor(() => releases().length === 2);
  assert.deepEqual(releases()[1], [2, 0, q.lease, OUTCOME_OK, 1], 'empty hints: five elements');
}));

test('a result or error that cannot be read is still released (OK or FAILED, no hints)', () => withClient(async (client, releases) => {
  const trap = { status: 429, headers: { get: () => { throw new Error('trap'); } } };
  assert.deepEqual((await releaseOf(client, releases, () => trap)).sent, [2, 0, 'number', OUTCOME_THROTTLED]);
  const statusTrap = { get status(): number { throw new Error('trap'); }, headers: {} };
  assert.deepEqual((await releaseOf(client, releases, () => statusTrap)).sent, [2, 0, 'number', OUTCOME_OK]);
  const hostile = new Proxy({}, { get: () => { throw new Error('trap'); } });
  const r = await releaseOf(client, releases, () => { throw hostile; });
  assert.equal(r.error, hostile);
  assert.deepEqual(r.sent, [2, 0, 'number', OUTCOME_FAILED]);
}));
