// The client SDK against the real daemon (port 0, two I/O threads):
// acquire/release/withPermit/status, batching, waiting, error replies, each
// failure mode with the daemon stopped, and reconnect to a new daemon on the
// same port.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  connect, PermitDeniedError, TokensExceedBurstError, UnauthorizedError, UnknownKeyError,
  type ConnectOptions, type TpsdClient,
} from '../../src/client/index.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { startTestDaemon } from '../fixtures/daemon.ts';

const POOLS = [{
  name: 'api',
  capacity_tps: 1000,
  burst: 100,
  services: [
    { name: 'fast', priority: 'HIGH', max_tps: 1000, burst: 100 },
    { name: 'slow', priority: 'LOW', max_tps: 5, burst: 1 },
    // The upstream 429 reported through withPermit below is a lone one at low
    // traffic: capacity discovery shrinks the pool in proportion (at most by
    // half), so the other tests of this pool are unaffected.
    { name: 'one', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 1 },
  ],
}];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}
const fastReconnect = { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 };

describe('client SDK against a running daemon', () => {
  let daemon: Daemon;
  let client: TpsdClient;
  before(async () => {
    daemon = await startTestDaemon({ pools: POOLS });
    client = await connect(`ws://127.0.0.1:${daemon.port}`, { name: 'sdk-test' });
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('says HELLO and learns the server', () => {
    assert.equal(client.connected, true);
    assert.equal(client.server?.v, 1);
    assert.equal(typeof client.server?.server, 'string');
    assert.equal(client.server?.tick_ms, 100);
  });

  it('acquires, and a release frees the concurrency slot', async () => {
    const first = await client.acquire('api/one');
    assert.equal(first.granted, true);
    assert.ok(first.lease > 0);
    assert.ok(first.remaining >= 0);
    const second = await client.acquire('api/one');
    assert.equal(second.granted, false, 'concurrency 1: the slot is taken');
    assert.ok(second.retryAfterMs >= 0);
    client.release(first.lease, 0, 1200);
    const third = await client.acquire('api/one'); // batched right behind the release
    assert.equal(third.granted, true);
    client.release(third.lease, 0, 1);
  });

  it('withPermit returns the result and releases on success, failure and upstream 429', async () => {
    assert.equal(await client.withPermit('api/one', (p) => p.lease > 0 ? 'ok' : 'no'), 'ok');
    await assert.rejects(client.withPermit('api/one', () => { throw new Error('boom'); }), /boom/);
    const throttled = Object.assign(new Error('429'), { status: 429 });
    await assert.rejects(client.withPermit('api/one', async () => { throw throttled; }), (e) => e === throttled);
    // Each call above released its slot, or this one (concurrency 1) would be denied.
    assert.equal(await client.withPermit('api/one', () => 42), 42);
  });

  it('withPermit throws PermitDeniedError when no tokens are left', async () => {
    await client.acquire('api/slow'); // burst 1: the only token
    await assert.rejects(client.withPermit('api/slow', () => 'never'), (e: unknown) => {
      assert.ok(e instanceof PermitDeniedError);
      assert.equal(e.key, 'api/slow');
      assert.ok(e.retryAfterMs > 0);
      assert.equal(e.local, false);
      return true;
    });
  });

  it('a waiting acquire is answered by the daemon: granted when tokens come, denied after waitMs', async () => {
    await sleep(250); // api/slow refills its single token (5 tps)
    assert.equal((await client.acquire('api/slow')).granted, true);
    const t0 = performance.now();
    const granted = await client.acquire('api/slow', 1, { waitMs: 1000, timeoutMs: 2000 });
    assert.equal(granted.granted, true);
    assert.ok(performance.now() - t0 >= 100, 'waited for the refill');
    const denied = await client.acquire('api/slow', 1, { waitMs: 50, timeoutMs: 2000 });
    assert.equal(denied.granted, false);
    assert.equal(denied.local, undefined);
  });

  it('many acquires in one tick are batched and all answered with distinct leases', async () => {
    const permits = await Promise.all(Array.from({ length: 50 }, () => client.acquire('api/fast')));
    assert.ok(permits.every((p) => p.granted));
    assert.equal(new Set(permits.map((p) => p.lease)).size, 50);
    for (const p of permits) client.release(p.lease, 0, 10);
  });

  it('error replies reject with the TpsdError subclass', async () => {
    await assert.rejects(client.acquire('api/missing'), UnknownKeyError);
    await assert.rejects(client.acquire('api/slow', 2), TokensExceedBurstError);
  });

  it('status returns the snapshot with per-key fields', async () => {
    const snap = await client.status();
    const keys = snap.keys as Record<string, unknown>[];
    assert.ok(Array.isArray(keys));
    const fast = keys.find((k) => k.key === 'api/fast');
    assert.ok(fast, 'api/fast is in the snapshot');
    for (const f of ['priority', 'limit_tps', 'tps', 'demand_tps', 'denied_tps', 'queue', 'in_flight']) assert.ok(f in fast, f);
  });
});

describe('client SDK with auth on', () => {
  it('a wrong token rejects connect with UnauthorizedError', async () => {
    const daemon = await startTestDaemon({ pools: POOLS, auth: { tokens: [{ token: 'right-token' }] } });
    try {
      await assert.rejects(connect(`ws://127.0.0.1:${daemon.port}`, { token: 'wrong' }), UnauthorizedError);
      const ok = await connect(`ws://127.0.0.1:${daemon.port}`, { token: 'right-token' });
      assert.equal((await ok.acquire('api/fast')).granted, true);
      await ok.close();
    } finally {
      await daemon.stop();
    }
  });
});

describe('client SDK when the daemon goes away', () => {
  async function stoppedDaemonClient(options: ConnectOptions): Promise<{ client: TpsdClient; port: number }> {
    const daemon = await startTestDaemon({ pools: POOLS });
    const client = await connect(`ws://127.0.0.1:${daemon.port}`, { reconnect: fastReconnect, ...options });
    assert.equal((await client.acquire('api/fast')).granted, true);
    await daemon.stop();
    await waitFor(() => !client.connected);
    return { client, port: daemon.port };
  }

  it("'closed' (default) denies with retryAfterMs", async () => {
    const { client } = await stoppedDaemonClient({});
    const p = await client.acquire('api/fast');
    assert.equal(p.granted, false);
    assert.equal(p.local, true);
    assert.ok(p.retryAfterMs >= 1 && p.retryAfterMs <= 200);
    await client.close();
  });

  it("'open' grants locally with lease 0", async () => {
    const { client } = await stoppedDaemonClient({ failureMode: 'open' });
    assert.deepEqual(await client.acquire('api/fast'), { granted: true, lease: 0, remaining: 0, retryAfterMs: 0, local: true });
    assert.equal(await client.withPermit('api/fast', () => 'ran'), 'ran');
    await client.close();
  });

  it("'local' applies localRate per key", async () => {
    const { client } = await stoppedDaemonClient({ failureMode: 'local', localRate: { tps: 10, burst: 2 } });
    const got = await Promise.all([1, 2, 3].map(() => client.acquire('api/fast')));
    assert.deepEqual(got.map((p) => p.granted), [true, true, false]);
    assert.ok(got.every((p) => p.local === true));
    await client.close();
  });

  it('a waiting acquire is not left hanging when the daemon stops', async () => {
    const daemon = await startTestDaemon({ pools: POOLS });
    const client = await connect(`ws://127.0.0.1:${daemon.port}`, { failureMode: 'open', reconnect: fastReconnect });
    await client.acquire('api/slow'); // take the only token
    const waiting = client.acquire('api/slow', 1, { waitMs: 60_000 });
    await sleep(50);
    await daemon.stop();
    const p = await waiting;
    assert.equal(p.granted, true);
    assert.equal(p.local, true);
    await client.close();
  });

  it('reconnects when a new daemon comes up on the same port', async () => {
    const states: string[] = [];
    const { client, port } = await stoppedDaemonClient({ onStateChange: (s) => states.push(s) });
    await sleep(300); // a few failed attempts with backoff
    assert.equal(client.connected, false);
    const next = await startTestDaemon({ pools: POOLS, listen: { host: '127.0.0.1', port } });
    try {
      await waitFor(() => client.connected);
      assert.deepEqual(states, ['connected', 'disconnected', 'connected']);
      const p = await client.acquire('api/fast');
      assert.equal(p.granted, true);
      assert.equal(p.local, undefined);
      assert.ok((await client.status()).keys);
      await client.close();
    } finally {
      await next.stop();
    }
  });

  it('connect to a stopped daemon rejects naming the url, unless lazy', async () => {
    const daemon = await startTestDaemon({ pools: POOLS });
    const url = `ws://127.0.0.1:${daemon.port}`;
    await daemon.stop();
    await assert.rejects(connect(url, { timeoutMs: 1000 }), (e: unknown) => e instanceof Error && e.message.includes(url));
    const lazy = await connect(url, { lazy: true, failureMode: 'open' });
    assert.equal((await lazy.acquire('api/fast')).local, true);
    await lazy.close();
  });
});
