// Tenants against a real daemon (2 I/O threads, port 0, a real SQLite file):
// keys `pool/service/TENANT` made on first use from several threads at once
// (each once, none lost, each at its tier's rate), idle ones forgotten and
// their room reused, `max` then OVERLOADED, a tier change applied on the
// next acquire and after a restart (persisted, audited), a token's scope
// over tenant keys, STATUS and /metrics by tier, and dry runs counted.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { dbPath } from '../../src/storage/db.ts';
import { C_ACQUIRES_INDEX, counterBase, TICK_SEQ_INDEX } from '../../src/shm/layout.ts';
import { RawClient, httpGet, startTestDaemon, tempDir, type Reply } from '../fixtures/daemon.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, until } from '../fixtures/telemetry.ts';

const TENANT_POOL = {
  name: 'api', capacity_tps: 5000, burst: 500,
  services: [
    { name: 'v1', priority: 'HIGH', max_tps: 5000, burst: 500, tenants: {
      tiers: [{ name: 'pro', priority: 'HIGH', tps: 100, burst: 20 }, { name: 'free', priority: 'LOW', tps: 10, burst: 5 }],
      default_tier: 'free', max: 100, idle_s: 60 } },
    { name: 'small', priority: 'MEDIUM', max_tps: 1000, tenants: {
      tiers: [{ name: 'only', priority: 'MEDIUM', tps: 100 }], max: 2, idle_s: 0.3 } },
    { name: 'dry', priority: 'LOW', max_tps: 5, burst: 2, enforce: false },
    { name: 'trial', priority: 'LOW', max_tps: 1000, tenants: {
      tiers: [{ name: 'watch', priority: 'LOW', tps: 1, burst: 1, enforce: false }] } },
  ],
};

const start = (extra: Record<string, unknown> = {}) =>
  startTestDaemon({ policy: { mode: 'fair' }, pools: [TENANT_POOL], ...extra });
const ok = (r: Reply) => r[2] === 0;

async function status(d: Daemon): Promise<{ key: string; kind: string; tenants?: number; would_deny: number }[]> {
  return (JSON.parse((await httpGet(d.port, '/v1/status')).body) as { keys: { key: string; kind: string; tenants?: number; would_deny: number }[] }).keys;
}

describe('tenants (keys made on first use)', () => {
  it('made from several connections on both I/O threads at once: each tenant once, none lost, each at its tier\'s rate', async () => {
    const d = await start();
    const clients: RawClient[] = [];
    try {
      await tenantsFromBothThreads(d, clients);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  });

  async function tenantsFromBothThreads(d: Daemon, clients: RawClient[]): Promise<void> {
    const names = Array.from({ length: 40 }, (_, i) => `cust-${i}@x.io`);
    // At least 10 connections, on both I/O threads (a lease id names its thread: id % 16); the kernel picks the thread.
    const threads = new Set<number>();
    while (clients.length < 64 && (clients.length < 10 || threads.size < 2)) {
      const c = await RawClient.open(d.port);
      clients.push(c);
      const r = await c.call([1, 1_000_000, 'api/v1', 1, 0]);
      assert.ok(ok(r), JSON.stringify(r));
      threads.add((r[3] as number) % 16);
      assert.ok(ok(await c.call([2, 1_000_001, r[3], 0, 0])));
      c.replies.splice(0); // the tenants' replies are counted below
    }
    assert.equal(threads.size, 2, 'connections on both I/O threads');
    const perName = 6;
    const t0 = performance.now();
    clients.forEach((c, k) => {
      const reqs: unknown[][] = [];
      for (let r = 0; r < perName; r++) for (let i = 0; i < names.length; i++) reqs.push([1, 1 + r * names.length + i, `api/v1/${names[(i + k) % names.length]}`, 1, 0]);
      c.send(...reqs);
    });
    const total = perName * names.length;
    await Promise.all(clients.map((c) => until(() => c.replies.length >= total, 10_000, 'every reply')));
    const elapsedS = (performance.now() - t0) / 1000;
    const granted = new Map<string, number>();
    clients.forEach((c, k) => {
      for (const r of c.replies) {
        assert.ok(r[2] === 0 || r[2] === 1, `granted or denied, not ${JSON.stringify(r)}`);
        const i = ((r[1] as number) - 1) % names.length;
        const name = names[(i + k) % names.length];
        if (ok(r)) granted.set(name, (granted.get(name) ?? 0) + 1);
      }
    });
    for (const name of names) {
      const n = granted.get(name) ?? 0;
      assert.ok(n >= 5, `${name}: its burst (5) granted, got ${n}`);
      assert.ok(n <= 5 + Math.ceil(10 * elapsedS) + 1, `${name}: ${n} grants in ${elapsedS.toFixed(2)} s is within 5 + 10/s`);
    }
    const tier = d.keys.find('api/v1/~free');
    for (let t = 0; t < 2; t++) {
      assert.ok(d.views.counters[counterBase(t, tier, d.keys.size) + C_ACQUIRES_INDEX] > 0, `I/O thread ${t} served tenant acquires`);
    }
    const admin = clients[0];
    const list = await admin.call([17, 9000, 'list', 'api/v1', { limit: 1000 }]);
    assert.equal(list[2], 0, String(list[3]));
    const body = list[3] as { total: number; tenants: { tenant: string; live: boolean; tier: string }[]; tiers: Record<string, number> };
    assert.equal(body.total, names.length, 'no duplicate, none lost');
    assert.deepEqual(body.tenants.map((t) => t.tenant).sort(), [...names].sort());
    assert.ok(body.tenants.every((t) => t.live && t.tier === 'free'));
    assert.deepEqual(body.tiers, { pro: 0, free: names.length });
    const keys = await status(d);
    assert.equal(keys.find((k) => k.key === 'api/v1/~free')?.tenants, names.length, 'STATUS: the tier with its tenant count');
    assert.equal(keys.find((k) => k.key === 'api/v1/~free')?.kind, 'tier');
    assert.equal(keys.filter((k) => k.key.startsWith('api/v1/cust')).length, 0, 'never every tenant');
    const metrics = (await httpGet(d.port, '/metrics')).body;
    assert.match(metrics, new RegExp(`tpsd_tenants\\{key="api/v1/~free"[^}]*\\} ${names.length}`));
    assert.ok(!metrics.includes('cust-'), '/metrics has no per-tenant series');
  }

  it('max reached: a new tenant is OVERLOADED until idle ones are forgotten, then their room is reused', async () => {
    const d = await start();
    const c = await RawClient.open(d.port);
    assert.ok(ok(await c.call([1, 1, 'api/small/a', 1, 0])));
    assert.ok(ok(await c.call([1, 2, 'api/small/b', 1, 0])));
    const full = await c.call([1, 3, 'api/small/c', 1, 0]);
    assert.equal(full[2], 20, 'OVERLOADED');
    assert.match(String(full[3]), /tenants\.max/);
    let id = 10;
    await until(async () => ok(await c.call([1, ++id, 'api/small/c', 1, 0])), 5000, 'c made once a and b were forgotten');
    const list = (await c.call([17, 99, 'list', 'api/small'])) [3] as { tenants: { tenant: string }[] };
    assert.deepEqual(list.tenants.map((t) => t.tenant), ['c']);
    c.close();
    await d.stop();
  });

  it('over HTTP a tenant key is made and limited like over WebSocket', async () => {
    const d = await start();
    const post = async (key: string) => {
      const res = await fetch(`http://127.0.0.1:${d.port}/v1/acquire`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, tokens: 5 }) });
      return { status: res.status, body: await res.json() as Record<string, unknown> };
    };
    const first = await post('api/v1/h1');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.remaining, 0, 'the free tier\'s burst (5) taken');
    assert.equal((await post('api/v1/~free')).status, 404, 'a tier is not a key');
    assert.equal((await post('api/small/a@b')).status, 200);
    await d.stop();
  });

  it('names that are not tenants, tiers and bad tokens are refused without making anything', async () => {
    const d = await start();
    const c = await RawClient.open(d.port);
    for (const [i, key] of ['api/v1/~free', 'api/v1/a b', 'api/v1/', `api/v1/${'x'.repeat(65)}`, 'api/dry/x', 'api/nope/x', 'api/v1/a/b'].entries()) {
      const r = await c.call([1, i + 1, key, 1, 0]);
      assert.equal(r[2], 17, `${key}: UNKNOWN_KEY (${JSON.stringify(r)})`);
    }
    const big = await c.call([1, 50, 'api/v1/t1', 6, 0]);
    assert.equal(big[2], 22, 'more than the free tier\'s burst: TOKENS_EXCEED_BURST');
    const list = (await c.call([17, 51, 'list', 'api/v1'])) [3] as { total: number };
    assert.equal(list.total, 1, 'only t1 (made by the acquire that was too large) exists');
    c.close();
    await d.stop();
  });

  it('a tier change applies on the tenant\'s next acquire, is audited, and survives a restart', async () => {
    const dataDir = tempDir();
    let d = await start({ data_dir: dataDir });
    let c = await RawClient.open(d.port);
    assert.equal((await c.call([1, 1, 'api/v1/t5', 8, 0]))[2], 22, 'free: burst 5');
    const set = await c.call([17, 2, 'set', 'api/v1/t5', { tier: 'pro' }]);
    assert.equal(set[2], 0, String(set[3]));
    assert.deepEqual(set[3], { key: 'api/v1/t5', tier: 'pro', assigned: true, live: true, remaining: 5, previous: 'free', persisted: true });
    const r = await c.call([1, 3, 'api/v1/t5', 8, 0]);
    assert.ok(r[2] === 0 || r[2] === 1, `pro (burst 20) takes 8 tokens: granted or denied for now, no longer TOKENS_EXCEED_BURST (${JSON.stringify(r)})`);
    await until(async () => ok(await c.call([1, 100 + Math.floor(Math.random() * 1e6), 'api/v1/t5', 8, 0])), 3000, 'granted at pro\'s rate');
    const bad = await c.call([17, 4, 'set', 'api/v1/t5', { tier: 'gold' }]);
    assert.equal(bad[2], 16);
    assert.match(String(bad[3]), /no tier "gold"/);
    c.close();
    await d.stop();

    d = await start({ data_dir: dataDir });
    c = await RawClient.open(d.port);
    assert.ok(ok(await c.call([1, 1, 'api/v1/t5', 8, 0])), 'the assignment is re-applied at start: 8 tokens fit at once');
    const got = await c.call([17, 2, 'get', 'api/v1/t5']);
    assert.equal((got[3] as { tier: string }).tier, 'pro');
    const rm = await c.call([17, 3, 'rm', 'api/v1/t5']);
    assert.equal((rm[3] as { tier: string }).tier, 'free');
    assert.equal((await c.call([1, 4, 'api/v1/t5', 8, 0]))[2], 22, 'back in free on the next acquire');
    c.close();
    await d.stop();
    const db = new Database(dbPath(dataDir), { readonly: true });
    const audit = db.prepare("SELECT action, key, old_value, new_value FROM limit_audit WHERE field = 'tier' ORDER BY id").all();
    db.close();
    assert.deepEqual(audit, [
      { action: 'set', key: 'api/v1/t5', old_value: '"free"', new_value: '"pro"' },
      { action: 'rm', key: 'api/v1/t5', old_value: '"pro"', new_value: '"free"' },
    ]);
  });

  it('a token scoped to one tenant uses that tenant only, never picks a tier, and sees only its keys', async () => {
    const d = await start({ auth: { tokens: [{ token: 'tok-t5', keys: ['api/v1/t5'] }, { token: 'tok-admin', keys: [], admin: true }] } });
    const c = await RawClient.open(d.port);
    assert.equal((await c.call([0, 1, { v: 1, token: 'tok-t5' }]))[2], 0);
    assert.ok(ok(await c.call([1, 2, 'api/v1/t5', 1, 0])));
    assert.equal((await c.call([1, 3, 'api/v1/t6', 1, 0]))[2], 18, 't6: UNAUTHORIZED');
    assert.equal((await c.call([1, 4, 'api/v1/t5x', 1, 0]))[2], 18, 'a name that only starts like t5');
    assert.equal((await c.call([17, 5, 'set', 'api/v1/t5', { tier: 'pro' }]))[2], 18, 'a tenant never picks its tier');
    const snap = (await c.call([3, 6]))[3] as { keys: { key: string }[] };
    assert.deepEqual(snap.keys.map((k) => k.key), [], 'no configured key is within api/v1/t5');
    const a = await RawClient.open(d.port);
    assert.equal((await a.call([0, 1, { v: 1, token: 'tok-admin' }]))[2], 0);
    const list = (await a.call([17, 2, 'list', 'api/v1'])) [3] as { tenants: { tenant: string }[] };
    assert.deepEqual(list.tenants.map((t) => t.tenant), ['t5'], 't6 was never made');
    c.close();
    a.close();
    await d.stop();
  });

  it('dry runs (enforce: false on a service or a tier) grant what would be denied and count it as would_deny', async () => {
    const d = await start();
    const c = await RawClient.open(d.port);
    const reqs = Array.from({ length: 10 }, (_, i) => [1, i + 1, 'api/dry', 1, 0]);
    c.send(...reqs);
    await until(() => c.replies.length >= 10, 3000, 'replies');
    assert.ok(c.replies.every(ok), 'all granted');
    c.send(...Array.from({ length: 5 }, (_, i) => [1, 100 + i, 'api/trial/w1', 1, 0]));
    await until(() => c.replies.length >= 15, 3000, 'replies');
    assert.ok(c.replies.every(ok), 'all granted on a dry-run tier');
    const keys = await status(d);
    const dry = keys.find((k) => k.key === 'api/dry')!;
    assert.ok(dry.would_deny >= 7, `api/dry would_deny ${dry.would_deny} (burst 2 of 10)`);
    const watch = keys.find((k) => k.key === 'api/trial/~watch')!;
    assert.ok(watch.would_deny >= 3, `api/trial/~watch would_deny ${watch.would_deny} (burst 1 of 5)`);
    assert.ok(keys.find((k) => k.key === 'api')!.would_deny >= dry.would_deny + watch.would_deny, 'counted up the chain');
    const metrics = (await httpGet(d.port, '/metrics')).body;
    assert.match(metrics, /tpsd_would_deny_tokens_total\{key="api\/dry"[^}]*\} ([7-9]|10)\b/);
    c.close();
    await d.stop();
  });
});

describe('tpsd tenants', () => {
  it('set, get, list, rm and import FILE against a running daemon, with exit codes 0, 2, 4, 5', async () => {
    const d = await start({ auth: { tokens: [{ token: 'adm', keys: [], admin: true }, { token: 'user', keys: ['api/v1'] }] } });
    const url = `ws://127.0.0.1:${d.port}/v1`;
    const env = { TPSD_TOKEN: 'adm' };
    const set = await runCli(['tenants', 'set', 'api/v1/acme', 'pro', '--url', url], env);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^api\/v1\/acme: tier pro$/m);
    const dir = tempDir();
    const file = join(dir, 'tiers.csv');
    writeFileSync(file, '# tenant,tier\nbeta,pro\napi/v1/gamma, free\n\ndelta,pro\n');
    const imp = await runCli(['tenants', 'import', file, '--service', 'api/v1', '--url', url], env);
    assert.equal(imp.code, 0, imp.stderr);
    const list = await runCli(['tenants', 'list', 'api/v1', '--tier', 'pro', '--url', url, '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { tenants: { tenant: string }[] }).tenants.map((t) => t.tenant), ['acme', 'beta', 'delta']);
    writeFileSync(file, 'epsilon,gold\n');
    const refused = await runCli(['tenants', 'import', file, '--service', 'api/v1', '--url', url], env);
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /api\/v1\/epsilon: BAD_REQUEST: no tier "gold"/);
    assert.equal((await runCli(['tenants', 'get', 'api/nope/x', '--url', url], env)).code, 4);
    assert.equal((await runCli(['tenants', 'set', 'api/v1/acme', '--url', url], env)).code, 2, 'set without a tier');
    assert.equal((await runCli(['tenants', 'set', 'api/v1/acme', 'free', '--url', url], { TPSD_TOKEN: 'user' })).code, 5, 'not an admin token');
    const rm = await runCli(['tenants', 'rm', 'api/v1/acme', '--url', url, '--json'], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(JSON.parse(rm.stdout).tier, 'free');
    await d.stop();
  });
});

void TICK_SEQ_INDEX;
