// PROTOCOL.md "Auth scope" and the HTTP part of "HTTP/JSON on the same
// port", against a real daemon: key prefixes on path-segment boundaries,
// STATUS (op 3 and GET /v1/status) limited to the token's keys, bearer tokens
// on /v1/* and /metrics, and failed authentications limited per client
// address across connections and I/O threads.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';

const POOLS = [
  { name: 'pay', capacity_tps: 1000, burst: 100, services: [
    { name: 'checkout', priority: 'HIGH', max_tps: 1000, burst: 100, endpoints: [{ name: 'refund', max_tps: 100, burst: 10 }] },
  ] },
  { name: 'payroll', capacity_tps: 1000, burst: 100, services: [{ name: 'x', priority: 'LOW', max_tps: 1000, burst: 100 }] },
];
const ALL_KEYS = ['pay', 'pay/checkout', 'pay/checkout/refund', 'payroll', 'payroll/x'];
const TOKENS = [
  { token: 'pay-bare', keys: ['pay'] },
  { token: 'pay-slash', keys: ['pay/'] },
  { token: 'checkout', keys: ['pay/checkout'] },
  { token: 'everything', keys: [] },
  { token: 'admin', keys: ['payroll/x'], admin: true },
];

function start(auth: Record<string, unknown> = {}, io_threads = 2): Promise<Daemon> {
  return startTestDaemon({ pools: POOLS, io_threads, auth: { tokens: TOKENS, ...auth } });
}

async function helloed(port: number, token: string): Promise<RawClient> {
  const c = await RawClient.open(port);
  const r = await c.call([0, 1, { v: 1, token }]);
  assert.equal(r[2], 0, `HELLO with ${token} accepted`);
  return c;
}

interface Answer { status: number; body: string; json: unknown; headers: Headers }

async function get(port: number, path: string, token?: string): Promise<Answer> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  const body = await res.text();
  let json: unknown = null;
  try { json = JSON.parse(body); } catch { /* not JSON: left null */ }
  return { status: res.status, body, json, headers: res.headers };
}

function assertUnauthorized(a: Answer, status: number, what: string): void {
  assert.equal(a.status, status, `${what}: HTTP ${status}, got ${a.status} ${a.body.slice(0, 80)}`);
  const body = a.json as { code: number; error: string; message: string };
  assert.equal(body?.code, 18, `${what}: code 18`);
  assert.equal(body.error, 'UNAUTHORIZED');
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
}

const keysOf = (snapshot: unknown) => (snapshot as { keys: { key: string }[] }).keys.map((k) => k.key).sort();

describe('auth: key prefixes match whole path segments', () => {
  it('"pay" and "pay/" allow pay, pay/checkout, pay/checkout/refund, never payroll/x', async () => {
    const daemon = await start();
    try {
      for (const token of ['pay-bare', 'pay-slash']) {
        const c = await helloed(daemon.port, token);
        let id = 10;
        // Scope, not rate, is under test: a wait lets a starved run's empty bucket refill.
        for (const key of ['pay', 'pay/checkout', 'pay/checkout/refund']) {
          assert.equal((await c.call([1, ++id, key, 1, 2000]))[2], 0, `${token} may acquire ${key}`);
        }
        for (const key of ['payroll', 'payroll/x']) {
          const r = await c.call([1, ++id, key, 1, 0]);
          assert.deepEqual(r.slice(0, 3), [1, id, 18], `${token} may not acquire ${key}`);
        }
        c.close();
      }
      const c = await helloed(daemon.port, 'checkout');
      assert.equal((await c.call([1, 2, 'pay/checkout/refund', 1, 2000]))[2], 0);
      assert.equal((await c.call([1, 3, 'pay', 1, 0]))[2], 18, 'a prefix never allows the key above it');
      c.close();
    } finally {
      await daemon.stop();
    }
  });
});

describe('auth: STATUS lists only the keys the token may use', () => {
  it('op 3: a scoped token sees its keys, an unscoped or admin token sees every key', async () => {
    const daemon = await start();
    try {
      const seen = async (token: string) => {
        const c = await helloed(daemon.port, token);
        const r = await c.call([3, 2]);
        c.close();
        assert.equal(r[2], 0);
        return keysOf(r[3]);
      };
      assert.deepEqual(await seen('pay-bare'), ['pay', 'pay/checkout', 'pay/checkout/refund']);
      assert.deepEqual(await seen('checkout'), ['pay/checkout', 'pay/checkout/refund']);
      assert.deepEqual(await seen('everything'), ALL_KEYS);
      assert.deepEqual(await seen('admin'), ALL_KEYS, 'an admin token sees every key, whatever its prefixes');
      // The pools part follows the keys: a token that may not use a pool's key does not see the pool's totals.
      const c = await helloed(daemon.port, 'checkout');
      const snap = (await c.call([3, 3]))[3] as { pools: { name: string }[] };
      assert.deepEqual(snap.pools.map((p) => p.name), []);
      c.close();
    } finally {
      await daemon.stop();
    }
  });

  it('GET /v1/status: 401 without a valid bearer token, else the token\'s keys', async () => {
    const daemon = await start();
    try {
      assertUnauthorized(await get(daemon.port, '/v1/status'), 401, 'no token');
      assertUnauthorized(await get(daemon.port, '/v1/status', 'wrong'), 401, 'a wrong token');
      const scoped = await get(daemon.port, '/v1/status', 'pay-slash');
      assert.equal(scoped.status, 200);
      assert.deepEqual(keysOf(scoped.json), ['pay', 'pay/checkout', 'pay/checkout/refund']);
      const admin = await get(daemon.port, '/v1/status', 'admin');
      assert.deepEqual(keysOf(admin.json), ALL_KEYS);
      // Every /v1/* call needs the token, even one with no route: nothing is learned without it.
      assertUnauthorized(await get(daemon.port, '/v1/nothing-here'), 401, 'an unknown /v1 path');
    } finally {
      await daemon.stop();
    }
  });
});

describe('auth: /metrics, /healthz and /readyz', () => {
  it('/metrics needs a bearer token and shows a scoped token only its keys; the probes never need one', async () => {
    const daemon = await start();
    try {
      assertUnauthorized(await get(daemon.port, '/metrics'), 401, 'no token');
      const none = await get(daemon.port, '/metrics');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assertUnauthorized(await get(daemon.port, '/metrics', 'wrong'), 401, 'a wrong token');
      // A scoped token sees the series of its own keys, as its STATUS does.
      const scoped = await get(daemon.port, '/metrics', 'pay-bare');
      assert.equal(scoped.status, 200);
      assert.match(scoped.body, /tpsd_limit_tps\{key="pay\/checkout"/);
      assert.doesNotMatch(scoped.body, /key="payroll/);
      assert.doesNotMatch(scoped.body, /pool="payroll"/);
      for (const token of ['admin', 'everything']) {
        const ok = await get(daemon.port, '/metrics', token);
        assert.equal(ok.status, 200, token);
        assert.match(ok.body, /tpsd_limit_tps\{key="payroll\/x"/);
      }
      assert.equal((await get(daemon.port, '/healthz')).status, 200);
      assert.equal((await get(daemon.port, '/readyz')).status, 200);
    } finally {
      await daemon.stop();
    }
  });

  it('auth.metrics_open serves /metrics without a token, and /v1/status still needs one', async () => {
    const daemon = await start({ metrics_open: true });
    try {
      const m = await get(daemon.port, '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.body, /tpsd_up 1/);
      assertUnauthorized(await get(daemon.port, '/v1/status'), 401, '/v1/status');
    } finally {
      await daemon.stop();
    }
  });
});

/** Sends a wrong token in HELLO on a fresh connection `times` times over; every answer is UNAUTHORIZED. */
async function failHellos(port: number, times: number): Promise<void> {
  const c = await RawClient.open(port);
  for (let i = 0; i < times; i++) assert.equal((await c.call([0, 100 + i, { v: 1, token: `guess-${i}` }]))[2], 18);
  c.close();
}

/** A HELLO with a valid token refused as the address is over its limit: UNAUTHORIZED, then close 1008. */
async function assertBlocked(c: RawClient, id: number): Promise<void> {
  const r = await c.call([0, id, { v: 1, token: 'admin' }]);
  assert.deepEqual(r.slice(0, 3), [0, id, 18], 'a valid token refused while the address is blocked');
  assert.equal(await c.closed(), 1008);
}

describe('auth: failed authentications limited per client address', () => {
  it('after 20 failed HELLOs in a minute, on any connections, a valid token is refused and the connection closed', async () => {
    const daemon = await start();
    try {
      const before = await helloed(daemon.port, 'pay-bare');
      // 10 connections x 2 failures: none reaches the per-connection limit (5).
      for (let i = 0; i < 10; i++) await failHellos(daemon.port, 2);
      await assertBlocked(await RawClient.open(daemon.port), 1);
      assertUnauthorized(await get(daemon.port, '/v1/status', 'admin'), 401, 'a valid bearer token while blocked');
      // A connection that authenticated before keeps working: the limit is on authentications.
      assert.equal((await before.call([1, 5, 'pay/checkout', 1, 0]))[2], 0);
      before.close();
    } finally {
      await daemon.stop();
    }
  });

  it('counts across I/O threads: failures on one thread block HELLOs on the other', async () => {
    const daemon = await start({ max_failures_per_minute: 4 });
    try {
      // One connection on each thread, found with an authenticated STATUS (io_thread).
      const by = new Map<number, RawClient>();
      for (let i = 0; i < 64 && by.size < 2; i++) {
        const c = await helloed(daemon.port, 'everything');
        const t = ((await c.call([3, 2]))[3] as { io_thread: number }).io_thread;
        if (by.has(t)) c.close(); else by.set(t, c);
      }
      assert.equal(by.size, 2, 'a connection on each of the 2 I/O threads');
      const [a, b] = [...by.values()];
      for (let i = 0; i < 3; i++) assert.equal((await a.call([0, 10 + i, { v: 1, token: `guess-a${i}` }]))[2], 18);
      assert.equal((await b.call([0, 20, { v: 1, token: 'guess-b' }]))[2], 18);
      // 3 + 1 = 4 failures from this address, on two threads: neither thread alone saw 4.
      await assertBlocked(b, 21);
      await assertBlocked(a, 22);
    } finally {
      await daemon.stop();
    }
  });

  it('failed bearer tokens count toward the same limit', async () => {
    const daemon = await start({ max_failures_per_minute: 3 });
    try {
      for (let i = 0; i < 3; i++) assertUnauthorized(await get(daemon.port, '/v1/status', `guess-${i}`), 401, `guess ${i}`);
      assertUnauthorized(await get(daemon.port, '/v1/status', 'admin'), 401, 'a valid token from a blocked address');
      await assertBlocked(await RawClient.open(daemon.port), 1);
      assert.equal((await get(daemon.port, '/healthz')).status, 200, 'probes are never blocked');
    } finally {
      await daemon.stop();
    }
  });

  it('max_failures_per_minute 0 turns the per-address limit off (the per-connection one stays)', async () => {
    const daemon = await start({ max_failures_per_minute: 0 });
    try {
      for (let i = 0; i < 12; i++) await failHellos(daemon.port, 4);
      (await helloed(daemon.port, 'admin')).close();
      const c = await RawClient.open(daemon.port);
      for (let i = 0; i < 5; i++) c.send([0, 10 + i, { v: 1, token: `guess${i}` }]);
      assert.equal(await c.closed(), 1008);
    } finally {
      await daemon.stop();
    }
  });
});
