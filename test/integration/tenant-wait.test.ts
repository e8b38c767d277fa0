// A tenant key's ACQUIRE with wait_ms against a real daemon (port 0, 2 I/O
// threads): it waits in the same queue as configured keys and is granted
// when its own bucket refills within wait_ms, over WebSocket and over HTTP
// /v1/acquire; a tenant's queue is bounded (OVERLOADED past
// limits.max_queue_per_key) without stopping another tenant of the tier from
// waiting; waiters of a closed connection leave the queue gauge at 0.
// No timed assertions: the waits asked for are far longer than the refills
// (200 ms a token), and tiers that refill once in 1000 s hold waiters still.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { RawClient, httpGet, startTestDaemon, type Reply } from '../fixtures/daemon.ts';
import { until } from '../fixtures/telemetry.ts';

const POOL = {
  name: 'api', capacity_tps: 5000, burst: 500,
  services: [
    // A token every 200 ms per tenant, one at most.
    { name: 'v1', priority: 'HIGH', max_tps: 5000, burst: 500, tenants: {
      tiers: [{ name: 'slow', priority: 'HIGH', tps: 5, burst: 1 }], max: 100, idle_s: 60 } },
    // A token every 1000 s: a second acquire waits for the whole of wait_ms.
    { name: 'still', priority: 'MEDIUM', max_tps: 1000, tenants: {
      tiers: [{ name: 'frozen', priority: 'MEDIUM', tps: 0.001, burst: 1 }], max: 100, idle_s: 60 } },
  ],
};
const QUEUE_MAX = 2;
const LONG_WAIT_MS = 60_000;

const start = () => startTestDaemon({ policy: { mode: 'fair' }, pools: [POOL], limits: { max_queue_per_key: QUEUE_MAX } });
const ok = (r: Reply) => r[2] === 0;

async function queueOf(d: Daemon, key: string): Promise<number> {
  const keys = (JSON.parse((await httpGet(d.port, '/v1/status')).body) as { keys: { key: string; queue: number }[] }).keys;
  const k = keys.find((x) => x.key === key);
  assert.ok(k, `${key} in STATUS`);
  return k.queue;
}

async function post(d: Daemon, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${d.port}/v1/acquire`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

describe('a tenant ACQUIRE that may wait', () => {
  it('over WebSocket: waits for its own bucket to refill and is granted within wait_ms', async () => {
    const d = await start();
    const c = await RawClient.open(d.port);
    assert.ok(ok(await c.call([1, 1, 'api/v1/w1', 1, 0])), 'the tenant made, its one token taken');
    const now = await c.call([1, 2, 'api/v1/w1', 1, 0]);
    assert.equal(now[2], 1, `wait_ms 0: DENIED at once (${JSON.stringify(now)})`);
    const waited = await c.call([1, 3, 'api/v1/w1', 1, 30_000], 35_000);
    assert.equal(waited[2], 0, `granted after waiting for the refill (${JSON.stringify(waited)})`);
    assert.ok(typeof waited[3] === 'number' && waited[3] > 0, 'with a lease');
    // Several waiters of one tenant, in one message: each granted in turn as tokens come.
    c.send([1, 10, 'api/v1/w1', 1, 30_000], [1, 11, 'api/v1/w1', 1, 30_000]);
    assert.ok(ok(await c.reply(10, 35_000)) && ok(await c.reply(11, 35_000)), 'both granted');
    assert.equal(await queueOf(d, 'api/v1/~slow'), 0, 'no waiter left on the tier');
    c.close();
    await d.stop();
  });

  it('over HTTP /v1/acquire: waits and answers 200 with a lease', async () => {
    const d = await start();
    assert.equal((await post(d, { key: 'api/v1/h1' })).status, 200);
    const denied = await post(d, { key: 'api/v1/h1' });
    assert.equal(denied.status, 429, `wait_ms 0: denied (${JSON.stringify(denied.body)})`);
    const waited = await post(d, { key: 'api/v1/h1', wait_ms: 30_000 });
    assert.equal(waited.status, 200, JSON.stringify(waited.body));
    assert.ok(typeof waited.body.lease === 'number' && waited.body.lease > 0);
    await d.stop();
  });

  it('a tenant\'s queue is bounded, another tenant of the tier still waits, and closing the connection frees every waiter', async () => {
    const d = await start();
    const c = await RawClient.open(d.port);
    assert.ok(ok(await c.call([1, 1, 'api/still/q1', 1, 0])));
    c.send([1, 2, 'api/still/q1', 1, LONG_WAIT_MS], [1, 3, 'api/still/q1', 1, LONG_WAIT_MS], [1, 4, 'api/still/q1', 1, LONG_WAIT_MS]);
    const over = await c.reply(4);
    assert.equal(over[2], 20, `past max_queue_per_key: OVERLOADED (${JSON.stringify(over)})`);
    assert.match(String(over[3]), /queue/);
    assert.equal(await queueOf(d, 'api/still/~frozen'), QUEUE_MAX, 'two waiters of q1 on the tier');
    // q1's full queue does not refuse q2's waiter.
    assert.ok(ok(await c.call([1, 5, 'api/still/q2', 1, 0])));
    c.send([1, 6, 'api/still/q2', 1, LONG_WAIT_MS]);
    await until(async () => (await queueOf(d, 'api/still/~frozen')) === QUEUE_MAX + 1, 5000, 'q2 waiting too');
    assert.equal(c.replies.filter((r) => [2, 3, 6].includes(r[1] as number)).length, 0, 'the waiters are not answered yet');
    c.close();
    await until(async () => (await queueOf(d, 'api/still/~frozen')) === 0, 5000, 'the closed connection\'s waiters gone');
    // The tenant still works after its waiters went.
    const c2 = await RawClient.open(d.port);
    const again = await c2.call([1, 1, 'api/still/q1', 1, 0]);
    assert.equal(again[2], 1, 'q1 still exists, still empty: DENIED');
    c2.close();
    await d.stop();
  });

  it('waiters still waiting when the daemon stops are answered SHUTTING_DOWN', async () => {
    const d = await start();
    const c = await RawClient.open(d.port);
    assert.ok(ok(await c.call([1, 1, 'api/still/s1', 1, 0])));
    c.send([1, 2, 'api/still/s1', 1, LONG_WAIT_MS]);
    await until(async () => (await queueOf(d, 'api/still/~frozen')) === 1, 5000, 's1 waiting');
    const stopped = d.stop();
    const r = await c.reply(2, 10_000);
    assert.equal(r[2], 21, `SHUTTING_DOWN (${JSON.stringify(r)})`);
    await stopped;
  });
});
