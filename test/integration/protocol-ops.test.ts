// Every request and reply of PROTOCOL.md v1 against a real daemon on port 0.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { RawClient, httpGet, startTestDaemon } from '../fixtures/daemon.ts';

describe('protocol v1 operations', () => {
  let daemon: Daemon;
  before(async () => { daemon = await startTestDaemon(); });
  after(async () => { await daemon.stop(); });

  it('HELLO answers the version, server name and tick', async () => {
    const c = await RawClient.open(daemon.port);
    const r = await c.call([0, 7, { v: 1, name: 'test' }]);
    assert.equal(r[0], 0); assert.equal(r[1], 7); assert.equal(r[2], 0);
    const body = r[3] as Record<string, unknown>;
    assert.equal(body.v, 1);
    assert.match(String(body.server), /^tpsd/);
    assert.equal(body.tick_ms, 100);
    const bad = await c.call([0, 8, { v: 2 }]);
    assert.deepEqual(bad.slice(0, 3), [0, 8, 16]);
    c.close();
  });

  it('ACQUIRE grants with a non-zero lease and the whole tokens left in the key', async () => {
    const c = await RawClient.open(daemon.port);
    const r = await c.call([1, 1, 'api/low', 10, 0]);
    assert.equal(r.length, 5);
    assert.deepEqual(r.slice(0, 3), [1, 1, 0]);
    assert.ok((r[3] as number) > 0, 'lease is non-zero');
    assert.ok((r[4] as number) <= 90 && (r[4] as number) >= 80, `remaining ${r[4]}`);
    c.close();
  });

  it('ACQUIRE with wait_ms 0 is DENIED with a retry estimate when the bucket is empty', async () => {
    const c = await RawClient.open(daemon.port);
    // api/crit/slow: 5 tokens/s, burst 2.
    const first = await c.call([1, 1, 'api/crit/slow', 2, 0]);
    assert.equal(first[2], 0);
    const denied = await c.call([1, 2, 'api/crit/slow', 2, 0]);
    assert.deepEqual(denied.slice(0, 4), [1, 2, 1, 0]);
    const retry = denied[4] as number;
    assert.ok(retry >= 1 && retry <= 400, `retry_after_ms ${retry} should be about 2 tokens / 5 per s`);
    c.close();
  });

  it('a waiting ACQUIRE is granted once tokens refill, and denied at its deadline otherwise', async () => {
    const c = await RawClient.open(daemon.port);
    // Empty the bucket whatever the test before left in it: granted once 2
    // tokens are there, it holds none, so one more takes 200 ms at 5/s.
    const t0 = Date.now();
    assert.equal((await c.call([1, 1, 'api/crit/slow', 2, 2000]))[2], 0);
    const granted = await c.call([1, 2, 'api/crit/slow', 1, 2000]);
    const waited = Date.now() - t0;
    assert.equal(granted[2], 0, `granted after waiting ${waited} ms`);
    assert.ok(waited >= 190, `2 + 1 tokens at 5/s, burst 2, within ${waited} ms`);
    // 2 tokens take 400 ms at 5/s; a 50 ms wait cannot be met.
    await c.call([1, 3, 'api/crit/slow', 2, 1000]);
    const t1 = Date.now();
    const late = await c.call([1, 4, 'api/crit/slow', 2, 50]);
    assert.deepEqual(late.slice(0, 4), [1, 4, 1, 0]);
    assert.ok(Date.now() - t1 >= 45, 'answered at the deadline, not before');
    assert.ok((late[4] as number) >= 1);
    c.close();
  });

  it('RELEASE answers, an unknown lease is code 19, and id 0 gets no reply', async () => {
    const c = await RawClient.open(daemon.port);
    const g = await c.call([1, 1, 'api/low', 1, 0]);
    const lease = g[3] as number;
    assert.deepEqual(await c.call([2, 2, lease, 0, 1500]), [2, 2, 0]);
    const again = await c.call([2, 3, lease, 0, 1500]);
    assert.deepEqual(again.slice(0, 3), [2, 3, 19]);
    assert.equal(typeof again[3], 'string');
    const g2 = await c.call([1, 4, 'api/low', 1, 0]);
    c.send([2, 0, g2[3] as number, 2, 10], [2, 0, 999999, 0, 1]);
    const after = await c.call([3, 5]);
    assert.equal(after[2], 0);
    assert.equal(c.replies.filter((r) => r[1] === 0).length, 0, 'no reply for id 0, even for an unknown lease');
    c.close();
  });

  it('STATUS returns every key with its figures, the pool capacity and the mode', async () => {
    const c = await RawClient.open(daemon.port);
    const r = await c.call([3, 9]);
    assert.deepEqual(r.slice(0, 3), [3, 9, 0]);
    const snap = r[3] as { mode: string; keys: Record<string, unknown>[]; pools: Record<string, unknown>[] };
    assert.ok(['ppo', 'shadow', 'fallback', 'static'].includes(snap.mode));
    const keys = snap.keys.map((k) => k.key);
    assert.deepEqual(keys, ['api', 'api/crit', 'api/crit/slow', 'api/low']);
    for (const k of snap.keys) {
      for (const f of ['key', 'priority', 'limit_tps', 'tps', 'demand_tps', 'denied_tps', 'queue', 'in_flight', 'capacity_tps', 'mode']) {
        assert.ok(f in k, `${k.key} has ${f}`);
      }
      assert.equal(k.capacity_tps, 1000);
    }
    assert.equal(snap.keys[1].priority, 'CRITICAL');
    assert.equal(snap.pools[0].capacity_tps, 1000);
    c.close();
  });

  it('accepts several requests in one message and packs the replies together', async () => {
    const c = await RawClient.open(daemon.port);
    const before = c.messages.length;
    c.send([1, 1, 'api/low', 1, 0], [1, 2, 'api/low', 1, 0], [3, 3], [1, 4, 'nope', 1, 0]);
    await c.reply(4);
    assert.equal(c.messages.length - before, 1, 'one reply message');
    assert.deepEqual(c.messages.at(-1)!.map((r) => r[1]), [1, 2, 3, 4]);
    c.close();
  });

  it('serves /healthz, /readyz, /v1/status and /metrics over HTTP', async () => {
    assert.equal((await httpGet(daemon.port, '/healthz')).status, 200);
    assert.equal((await httpGet(daemon.port, '/readyz')).status, 200);
    const s = await httpGet(daemon.port, '/v1/status');
    assert.equal(s.status, 200);
    assert.equal(JSON.parse(s.body).keys.length, 4);
    const m = await httpGet(daemon.port, '/metrics');
    assert.match(m.body, /^tpsd_limit_tps\{key="api\/low",pool="api",kind="service",priority="LOW"\} \d+/m);
    assert.equal((await httpGet(daemon.port, '/nope')).status, 404);
  });
});
