// Telemetry of tenants and dry runs against a real daemon (2 I/O threads,
// port 0, a real SQLite file), read back through the CLI as an operator
// would: per-tier rows every tick, per-tenant rows only for the busiest
// TOP_TENANTS_PER_SERVICE tenants of each service each tick (so rows per
// tick stay bounded with 10 000 tenants active), `tpsd history` and
// `tpsd recommend` on a tier key and on a tenant key, and the would_deny
// column of a dry run (`enforce: false`) shown by `tpsd history`.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { TOP_TENANTS_PER_SERVICE } from '../../src/daemon/tenant-rows.ts';
import { TICK_SEQ_INDEX } from '../../src/shm/layout.ts';
import { RawClient, httpGet, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { runCli, sleep, until } from '../fixtures/telemetry.ts';
import { readFileSync } from 'node:fs';

const DASHBOARD = new URL('../../config/grafana-dashboard.json', import.meta.url);

const POOL = {
  name: 'api', capacity_tps: 100000, burst: 20000,
  services: [
    { name: 'v1', priority: 'HIGH', max_tps: 100000, burst: 20000, tenants: {
      tiers: [{ name: 'pro', priority: 'HIGH', tps: 1000, burst: 1000 }, { name: 'free', priority: 'LOW', tps: 100, burst: 100 }],
      default_tier: 'free', max: 10000, idle_s: 60 } },
    { name: 'dry', priority: 'LOW', max_tps: 5, burst: 2, enforce: false },
  ],
};

const start = (dataDir: string) => startTestDaemon({ policy: { mode: 'fair' }, pools: [POOL], data_dir: dataDir });

/** Waits until the controller has run `n` more ticks (their counters are then in a row). */
async function ticksPass(d: Daemon, n: number): Promise<void> {
  const from = Atomics.load(d.views.header, TICK_SEQ_INDEX);
  await until(() => Atomics.load(d.views.header, TICK_SEQ_INDEX) >= from + n, 5000, `${n} ticks`);
}

/** Sends `count` acquires of one token on `key` in one message; resolves when all are answered. */
async function burst(c: RawClient, key: string, count: number, firstId: number): Promise<void> {
  const before = c.replies.length;
  c.send(...Array.from({ length: count }, (_, i) => [1, firstId + i, key, 1, 0]));
  await until(() => c.replies.length >= before + count, 10_000, `${count} replies on ${key}`);
}

interface TickRows { ts: number; n: number }

function tenantRowsPerTick(file: string, service: string): TickRows[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT t.ts_ms AS ts, count(*) AS n FROM telemetry t JOIN keys k ON k.id = t.key_id
      WHERE k.kind = 'tenant' AND k.key LIKE ? GROUP BY t.ts_ms`).all(`${service}/%`) as TickRows[];
  } finally {
    db.close();
  }
}

/** The dashboard's Tenants row: every series it queries is a tier's, and exported by a daemon with tenants. */
function checkDashboard(metrics: string): void {
  type Panel = { type: string; title: string; gridPos: { y: number }; targets?: { expr: string }[] };
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const row = dash.panels.find((p) => p.type === 'row' && /^Tenants/.test(p.title));
  assert.ok(row !== undefined, 'a Tenants row');
  const panels = dash.panels.filter((p) => p.type !== 'row' && p.gridPos.y > row.gridPos.y);
  assert.ok(panels.length >= 3, 'tier panels under it');
  for (const p of panels) {
    for (const t of p.targets ?? []) {
      for (const sel of t.expr.matchAll(/\b(tpsd_[a-z_]+)\{([^}]*)\}/g)) {
        // A key series selects kind="tier"; the defence's series are per tier by their own `tier` label.
        assert.match(sel[2], /(^|,)(kind="tier"|tier=~"[^"]*")(,|$)/, `${p.title}: ${sel[0]} selects tiers only`);
        assert.match(metrics, new RegExp(`^${sel[1]}\\{[^}]*(kind="tier"|tier="[^"]*/~)`, 'm'), `${p.title}: ${sel[1]} is exported per tier`);
      }
    }
  }
}

describe('tenant telemetry', () => {
  it('writes the busiest tenants of each tick (at most TOP_TENANTS_PER_SERVICE), their tiers every tick; history and recommend read both', async () => {
    const dataDir = tempDir();
    const d = await start(dataDir);
    const c = await RawClient.open(d.port);
    let id = 1;
    // A steady tenant over about a second, so recommend has a stretch to look at; five heavy ones in between.
    for (let round = 0; round < 12; round++) {
      await burst(c, 'api/v1/steady', 20, id); id += 20;
      if (round === 2) for (let k = 0; k < 5; k++) { await burst(c, `api/v1/heavy-${k}`, 40, id); id += 40; }
      await sleep(80);
    }
    await ticksPass(d, 2);
    // 35 tenants at once: 10 with 5 tokens, 25 with 1.
    const mixed: unknown[][] = [];
    for (let k = 0; k < 10; k++) for (let i = 0; i < 5; i++) mixed.push([1, id++, `api/v1/mid-${k}`, 1, 0]);
    for (let k = 0; k < 25; k++) mixed.push([1, id++, `api/v1/small-${k}`, 1, 0]);
    const before = c.replies.length;
    c.send(...mixed);
    await until(() => c.replies.length >= before + mixed.length, 5000, 'mixed replies');
    await ticksPass(d, 3);
    const file = d.dbFile!;
    c.close();
    await d.stop();

    const perTick = tenantRowsPerTick(file, 'api/v1');
    assert.ok(perTick.length > 0, 'tenant rows were written');
    for (const t of perTick) assert.ok(t.n <= TOP_TENANTS_PER_SERVICE, `tick ${t.ts}: ${t.n} tenant rows, at most ${TOP_TENANTS_PER_SERVICE}`);
    const db = new Database(file, { readonly: true });
    const sumOf = (key: string) => db.prepare(`SELECT coalesce(sum(requested), 0) FROM telemetry t JOIN keys k ON k.id = t.key_id WHERE k.key = ?`).pluck().get(key) as number;
    const kindOf = (key: string) => db.prepare('SELECT kind FROM keys WHERE key = ?').pluck().get(key) as string | undefined;
    // Alone with steady, a heavy tenant is always among the busiest: every token it asked for is in its rows.
    for (let k = 0; k < 5; k++) assert.equal(sumOf(`api/v1/heavy-${k}`), 40, `heavy-${k}: its 40 tokens`);
    assert.equal(sumOf('api/v1/steady'), 240, 'steady: 12 x 20 tokens');
    assert.equal(kindOf('api/v1/heavy-0'), 'tenant');
    assert.equal(kindOf('api/v1/~free'), 'tier');
    const mixedSeen = db.prepare(`SELECT count(*) FROM keys WHERE kind = 'tenant' AND (key LIKE 'api/v1/mid-%' OR key LIKE 'api/v1/small-%')`).pluck().get() as number;
    assert.ok(mixedSeen >= TOP_TENANTS_PER_SERVICE, `${mixedSeen} of the 35 mixed tenants have rows`);
    // Every tick with tenant rows has its tier's row, and the tier counts at least what those tenants asked for: by
    // the next tick, as a request that lands between the tick's read of the tier and of its tenants counts for the
    // tenant in this tick and for the tier in the next.
    const tierRows = db.prepare(`SELECT t.ts_ms AS ts, t.requested AS requested FROM telemetry t
      WHERE t.key_id = (SELECT id FROM keys WHERE key = 'api/v1/~free') ORDER BY t.ts_ms`).all() as { ts: number; requested: number }[];
    const tenantTicks = db.prepare(`SELECT t.ts_ms AS ts, sum(t.requested) AS tenants FROM telemetry t JOIN keys k ON k.id = t.key_id
      WHERE k.kind = 'tenant' GROUP BY t.ts_ms ORDER BY t.ts_ms`).all() as { ts: number; tenants: number }[];
    let tenantsSoFar = 0;
    for (const r of tenantTicks) {
      tenantsSoFar += r.tenants;
      const at = tierRows.findIndex((x) => x.ts === r.ts);
      assert.ok(at >= 0, `tick ${r.ts}: its tier has a row`);
      const tierByNext = tierRows.slice(0, at + 2).reduce((sum, x) => sum + x.requested, 0);
      assert.ok(tierByNext >= tenantsSoFar, `tick ${r.ts}: the tier's ${tierByNext} by the next tick >= its tenants' ${tenantsSoFar}`);
    }
    // A tick where more tenants moved than are kept (which ones: test/unit/daemon/tenant-rows.test.ts).
    const full = db.prepare(`SELECT t.ts_ms AS ts, group_concat(k.key) AS keys FROM telemetry t JOIN keys k ON k.id = t.key_id
      WHERE k.kind = 'tenant' GROUP BY t.ts_ms HAVING count(*) = ?`).all(TOP_TENANTS_PER_SERVICE) as { ts: number; keys: string }[];
    assert.ok(full.length > 0, `a tick cut at ${TOP_TENANTS_PER_SERVICE} tenant rows`);
    db.close();

    for (const key of ['api/v1/~free', 'api/v1/heavy-0', 'api/v1/steady']) {
      const h = await runCli(['history', key, '--data', dataDir, '--since', '10m', '--json']);
      assert.equal(h.code, 0, `history ${key}: ${h.stderr}`);
      const j = JSON.parse(h.stdout) as { kind: string; points: { requested: number }[] };
      assert.equal(j.kind, key.includes('~') ? 'tier' : 'tenant');
      assert.ok(j.points.reduce((s, p) => s + p.requested, 0) >= 40, `history ${key}: its demand`);
      const text = await runCli(['history', key, '--data', dataDir, '--since', '10m']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^${key} \\(${j.kind} in pool api\\)`, 'm'));
    }
    for (const key of ['api/v1/~free', 'api/v1/steady']) {
      const r = await runCli(['recommend', key, '--data', dataDir, '--since', '10m', '--sustain', '300ms', '--json']);
      assert.equal(r.code, 0, `recommend ${key}: ${r.stderr}`);
      const [res] = JSON.parse(r.stdout) as { key: string; kind: string; recommendation: { evidence: { samples: number } } | null }[];
      assert.equal(res.key, key);
      assert.ok(res.recommendation !== null && res.recommendation.evidence.samples >= 3, `recommend ${key}: ${r.stdout}`);
      const t = await runCli(['recommend', key, '--data', dataDir, '--since', '10m', '--sustain', '300ms']);
      assert.equal(t.code, 0, t.stderr);
      assert.doesNotMatch(t.stdout, /apply: tpsd limits set/, 'no limit to set on a tier or a tenant');
    }
    const all = await runCli(['recommend', '--data', dataDir, '--since', '10m', '--sustain', '300ms', '--json']);
    const listed = (JSON.parse(all.stdout) as { key: string }[]).map((r) => r.key);
    assert.ok(!listed.some((k) => /\/(heavy|mid|small|steady)/.test(k)), `recommend without a key goes over configured keys and tiers, not tenants: ${listed}`);
    assert.equal((await runCli(['history', 'api/v1/nobody', '--data', dataDir])).code, 4, 'a tenant never written: not found');
  });

  it('with 10 000 tenants active, rows per tick stay bounded; STATUS and /metrics show the tier with its count', async () => {
    const dataDir = tempDir();
    const d = await start(dataDir);
    const clients = await Promise.all([RawClient.open(d.port), RawClient.open(d.port)]);
    const N = 10_000;
    let id = 1;
    for (let from = 0; from < N; from += 1000) {
      await Promise.all(clients.map(async (c, k) => {
        const reqs: unknown[][] = [];
        for (let i = from + k; i < from + 1000; i += 2) reqs.push([1, id++, `api/v1/u-${i}`, 1, 0]);
        const before = c.replies.length;
        c.send(...reqs);
        await until(() => c.replies.length >= before + reqs.length, 20_000, 'replies');
      }));
    }
    const status = JSON.parse((await httpGet(d.port, '/v1/status')).body) as { keys: { key: string; kind: string; tenants?: number }[] };
    assert.equal(status.keys.find((k) => k.key === 'api/v1/~free')?.tenants, N, 'STATUS: the tier and its tenant count');
    assert.equal(status.keys.filter((k) => /\/u-\d/.test(k.key)).length, 0, 'STATUS lists no tenant');
    const metrics = (await httpGet(d.port, '/metrics')).body;
    assert.ok(!/u-\d/.test(metrics), '/metrics has no per-tenant series');
    checkDashboard(metrics);
    await ticksPass(d, 2);
    const file = d.dbFile!;
    for (const c of clients) c.close();
    await d.stop();
    const perTick = tenantRowsPerTick(file, 'api/v1');
    const configured = d.keys.size;
    assert.ok(perTick.some((t) => t.n === TOP_TENANTS_PER_SERVICE), 'some tick had more active tenants than it kept');
    for (const t of perTick) assert.ok(t.n <= TOP_TENANTS_PER_SERVICE, `tick ${t.ts}: ${t.n} tenant rows`);
    const db = new Database(file, { readonly: true });
    const maxRows = db.prepare('SELECT max(rows) FROM ticks').pluck().get() as number;
    const tenantKeys = db.prepare(`SELECT count(*) FROM keys WHERE kind = 'tenant'`).pluck().get() as number;
    db.close();
    assert.ok(maxRows <= configured + TOP_TENANTS_PER_SERVICE, `at most ${configured} configured keys + ${TOP_TENANTS_PER_SERVICE} tenants a tick, saw ${maxRows}`);
    assert.ok(tenantKeys <= perTick.length * TOP_TENANTS_PER_SERVICE && tenantKeys < N, `${tenantKeys} tenant keys in the database`);
  });

  it('a dry run\'s would_deny is in the telemetry rows of each key up the chain, and tpsd history shows it where it is not zero', async () => {
    const dataDir = tempDir();
    const d = await start(dataDir);
    const c = await RawClient.open(d.port);
    await burst(c, 'api/dry', 10, 1);
    assert.ok(c.replies.every((r) => r[2] === 0), 'a dry run grants everything');
    await burst(c, 'api/v1/x', 5, 100);
    await ticksPass(d, 2);
    const file = d.dbFile!;
    c.close();
    await d.stop();
    const db = new Database(file, { readonly: true });
    const wouldDeny = (key: string) => db.prepare(`SELECT coalesce(sum(would_deny), 0) FROM telemetry t JOIN keys k ON k.id = t.key_id WHERE k.key = ?`).pluck().get(key) as number;
    assert.ok(wouldDeny('api/dry') >= 7, `api/dry: ${wouldDeny('api/dry')} tokens would have been denied (burst 2 of 10)`);
    assert.equal(wouldDeny('api'), wouldDeny('api/dry'), 'and its pool');
    db.close();
    const h = await runCli(['history', 'api/dry', '--data', dataDir, '--since', '10m']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^would-deny /m);
    const csv = await runCli(['history', 'api/dry', '--data', dataDir, '--since', '10m', '--csv']);
    const lines = csv.stdout.trim().split('\n');
    assert.match(lines[0], /,would_deny_tps$/);
    const col = lines[0].split(',').length - 1;
    assert.ok(lines.slice(1).some((l) => Number(l.split(',')[col]) > 0), 'a row with would_deny');
    const j = JSON.parse((await runCli(['history', 'api/dry', '--data', dataDir, '--since', '10m', '--json'])).stdout) as { points: { wouldDeny: number }[] };
    assert.ok(j.points.reduce((s, p) => s + p.wouldDeny, 0) >= 7);
    const plain = await runCli(['history', 'api/v1/~free', '--data', dataDir, '--since', '10m']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(plain.stdout, /would-deny/, 'not shown where it is zero');
  });
});
