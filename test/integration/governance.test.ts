// Governance (governance.approve_above) against a real daemon and a real
// database: an operator's large change (op 16) is held while the old limit
// stays in force, a small one passes, a newer change replaces the pending one
// under a new id, pending changes survive a restart, approve (op 18) applies
// one at once, reject drops one, everything is audited; a tier's allocation
// rise above the ratio is held at its ceiling until approved; op 18 is for
// admin tokens only; and without the section nothing is held.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { validateConfig } from '../../src/config/schema.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import type { PendingView } from '../../src/daemon/governance.ts';
import { TICK_SEQ_INDEX } from '../../src/shm/layout.ts';
import { RawClient, startTestDaemon, tempDir, type Reply } from '../fixtures/daemon.ts';
import { runCli, sleep, until } from '../fixtures/telemetry.ts';

const tickOf = (d: Daemon) => Atomics.load(d.views.header, TICK_SEQ_INDEX);
const rate = (d: Daemon, key: string) => d.controller.table.rateTps(d.keys.find(key));
async function ticks(d: Daemon, n = 2): Promise<void> {
  const t = tickOf(d);
  await until(() => tickOf(d) >= t + n, 5000, `${n} ticks`);
}
const okBody = <T>(r: Reply): T => { assert.equal(r[2], 0, `${JSON.stringify(r)}`); return r[3] as T; };
type Entry = { effective: Record<string, unknown>; overrides: Record<string, unknown>; held?: PendingView };
type List = { approve_above: number | null; pending: PendingView[]; persisted: boolean };

describe('governance: large limit changes wait for approval', () => {
  it('holds a large operator change (old limit in force), passes a small one, replaces, survives a restart, approve applies, reject drops, all audited', async () => {
    const opts = { data_dir: tempDir(), policy: { mode: 'fair' }, governance: { approve_above: 2 } };
    let d = await startTestDaemon(opts);
    await ticks(d);
    let c = await RawClient.open(d.port);
    const cut = okBody<Entry>(await c.call([16, 1, 'set', 'api/low', { max_tps: 40 }]));
    assert.ok(cut.held !== undefined, 'a cut to 1/25 is held');
    assert.match(cut.held.id, /^chg_[A-Za-z0-9_-]{16}$/);
    assert.deepEqual([cut.held.source, cut.held.key, cut.held.old, cut.held.new, cut.held.step], ['operator', 'api/low', { max_tps: 1000 }, { max_tps: 40 }, 25]);
    assert.equal(cut.effective.max_tps, 1000, 'the old limit stays');
    assert.deepEqual(cut.overrides, {});
    await ticks(d);
    assert.ok(rate(d, 'api/low') > 40, `api/low still refills above 40 (${rate(d, 'api/low')})`);

    const small = okBody<Entry>(await c.call([16, 2, 'set', 'api/low', { max_tps: 800, priority: 'MEDIUM' }]));
    assert.equal(small.held, undefined, 'a change by 1.25 passes');
    assert.deepEqual(small.effective, { min_tps: 0, max_tps: 800, priority: 'MEDIUM' });
    const prio = okBody<Entry>(await c.call([16, 3, 'set', 'api/low', { priority: 'HIGH' }]));
    assert.equal(prio.held, undefined, 'a priority alone is never held');

    const again = okBody<Entry>(await c.call([16, 4, 'set', 'api/low', { max_tps: 30 }]));
    const id = again.held!.id;
    assert.notEqual(id, cut.held.id, 'a newer change on the same key gets a new id');
    let list = okBody<List>(await c.call([18, 5, 'list']));
    assert.deepEqual(list.pending.map((p) => [p.id, p.new]), [[id, { max_tps: 30 }]], 'it replaced the older one');
    assert.equal(list.approve_above, 2);
    const stale = await c.call([18, 6, 'approve', cut.held.id]);
    assert.equal(stale[2], 17, 'the replaced id approves nothing');
    const invalid = await c.call([16, 7, 'set', 'api/low', { max_tps: 5, min_tps: 10 }]);
    assert.equal(invalid[2], 16, 'an invalid change is refused, not held');
    c.close();
    await d.stop();

    d = await startTestDaemon(opts);
    c = await RawClient.open(d.port);
    list = okBody<List>(await c.call([18, 1, 'list']));
    assert.deepEqual(list.pending.map((p) => p.id), [id], 'pending after a restart');
    await ticks(d);
    assert.ok(rate(d, 'api/low') > 30, 'still not in force after the restart');
    const approved = okBody<{ approved: PendingView; entry: Entry }>(await c.call([18, 2, 'approve', id]));
    assert.equal(approved.approved.id, id);
    assert.equal(approved.entry.effective.max_tps, 30, 'approve applies it at once');
    await ticks(d);
    assert.ok(rate(d, 'api/low') <= 30, `api/low refills at most 30 now (${rate(d, 'api/low')})`);
    assert.equal((await c.call([18, 3, 'approve', id]))[2], 17, 'an id is used once');

    const raise = okBody<Entry>(await c.call([16, 4, 'set', 'api', { capacity_tps: 5000 }]));
    assert.equal(raise.held!.step, 5);
    const rejected = okBody<{ rejected: PendingView }>(await c.call([18, 5, 'reject', raise.held!.id]));
    assert.equal(rejected.rejected.key, 'api');
    assert.deepEqual(okBody<List>(await c.call([18, 6, 'list'])).pending, [], 'reject drops it');
    assert.equal(okBody<Entry>(await c.call([16, 7, 'get', 'api'])).effective.capacity_tps, 1000, 'and nothing changed');
    c.close();
    await d.stop();

    const db = new Database(d.dbFile!, { readonly: true });
    const audit = db.prepare(`SELECT action, key, field, old_value, new_value FROM limit_audit ORDER BY id`).all();
    const actors = db.prepare(`SELECT DISTINCT actor FROM limit_audit WHERE action IN ('approved', 'declined')`).pluck().all() as string[];
    const left = db.prepare('SELECT count(*) FROM pending_changes').pluck().get();
    db.close();
    assert.deepEqual(audit.filter((a) => (a as { action: string }).action !== 'rejected'), [
      { action: 'held', key: 'api/low', field: 'max_tps', old_value: '1000', new_value: '40' },
      { action: 'set', key: 'api/low', field: 'max_tps', old_value: '1000', new_value: '800' },
      { action: 'set', key: 'api/low', field: 'priority', old_value: '"LOW"', new_value: '"MEDIUM"' },
      { action: 'set', key: 'api/low', field: 'priority', old_value: '"MEDIUM"', new_value: '"HIGH"' },
      { action: 'replaced', key: 'api/low', field: 'max_tps', old_value: '1000', new_value: '40' },
      { action: 'held', key: 'api/low', field: 'max_tps', old_value: '800', new_value: '30' },
      { action: 'set', key: 'api/low', field: 'max_tps', old_value: '800', new_value: '30' },
      { action: 'approved', key: 'api/low', field: 'max_tps', old_value: '800', new_value: '30' },
      { action: 'held', key: 'api', field: 'capacity_tps', old_value: '1000', new_value: '5000' },
      { action: 'declined', key: 'api', field: 'capacity_tps', old_value: '1000', new_value: '5000' },
    ]);
    assert.ok(actors.every((a) => /^anonymous \(io-\d conn \d+\)$/.test(a)), `who decided: ${actors.join(', ')}`);
    assert.equal(left, 0);
  });

  it('holds a tier\'s allocation rise above the ratio at its ceiling until approved', async () => {
    const pool = {
      name: 'api', capacity_tps: 4000, burst: 400,
      services: [{ name: 'v1', priority: 'HIGH', max_tps: 4000, burst: 400, tenants: {
        tiers: [{ name: 'pro', priority: 'CRITICAL', tps: 4000, burst: 400 }, { name: 'free', priority: 'LOW', tps: 4000, burst: 400 }],
        default_tier: 'free', max: 10, idle_s: 60 } }],
    };
    const d = await startTestDaemon({ policy: { mode: 'fair' }, pools: [pool], governance: { approve_above: 1.5 } });
    const c = await RawClient.open(d.port);
    let stop = false;
    try {
      await ticks(d, 3);
      const idle = rate(d, 'api/v1/~free');
      // A tenant of the free tier asks far more than the tier's idle share, for as long as the test runs.
      let n = 0;
      const load = (async () => {
        while (!stop) {
          const reqs: unknown[][] = [];
          for (let i = 0; i < 300; i++) reqs.push([1, 1_000_000 + n++, 'api/v1/acme', 1, 0]);
          c.send(...reqs);
          await sleep(25);
        }
      })();
      let listId = 100;
      await until(async () => okBody<List>(await c.call([18, listId++, 'list'])).pending.length > 0, 10_000, 'a held tier rise');
      const [held] = okBody<List>(await c.call([18, 2, 'list'])).pending;
      assert.deepEqual([held.source, held.key, held.action], ['allocator', 'api/v1/~free', 'allocate']);
      const level = held.old.allocation_tps as number;
      assert.ok(Math.abs(level - idle) <= idle * 0.01 + 1e-9, `the level is the tier's first cap (${level} vs ${idle})`);
      assert.ok((held.new.allocation_tps as number) > level * 1.5);
      await ticks(d, 3);
      assert.ok(rate(d, 'api/v1/~free') <= level * 1.5 + 0.01, `the cap stays at the ceiling (${rate(d, 'api/v1/~free')} <= ${level * 1.5})`);
      const steady = okBody<List>(await c.call([18, 3, 'list'])).pending;
      assert.equal(steady.length, 1, 'one pending per tier, not one per tick');
      // The first proposals of the flood may still be rising (a bigger one replaces the pending under a new id): approve what is listed now.
      okBody(await c.call([18, 4, 'approve', steady[0].id]));
      await until(() => rate(d, 'api/v1/~free') > level * 1.5 + 1, 5000, 'the tier above its old ceiling after approval');
      stop = true;
      await load;
    } finally {
      stop = true;
      c.close();
      await d.stop();
    }
    const db = new Database(d.dbFile!, { readonly: true });
    const rows = db.prepare("SELECT action FROM limit_audit WHERE key = 'api/v1/~free' ORDER BY id").pluck().all();
    const levels = db.prepare('SELECT key FROM approved_levels').pluck().all();
    db.close();
    assert.deepEqual(rows.slice(0, 1), ['held']);
    assert.ok(rows.includes('approved'), `audited: ${rows.join(', ')}`);
    assert.deepEqual(levels, ['api/v1/~free'], 'the approved level is kept for the next start');
  });

  it('is turned on and off by a reload (SIGHUP)', async () => {
    const d = await startTestDaemon({ policy: { mode: 'fair' } });
    const c = await RawClient.open(d.port);
    try {
      const raw = JSON.parse(JSON.stringify(d.config)) as Record<string, unknown>;
      await d.reload(validateConfig({ ...raw, governance: { approve_above: 3 } }, {}));
      assert.ok(okBody<Entry>(await c.call([16, 1, 'set', 'api/low', { max_tps: 100 }])).held !== undefined, 'held after the reload');
      await d.reload(validateConfig({ ...raw, governance: null }, {}));
      assert.equal(okBody<Entry>(await c.call([16, 2, 'set', 'api/low', { max_tps: 100 }])).effective.max_tps, 100, 'applied once it is off');
      assert.equal(okBody<List>(await c.call([18, 3, 'list'])).pending.length, 1, 'what was held stays to be decided');
    } finally {
      c.close();
      await d.stop();
    }
  });

  it('is off without the section: a large change applies at once and nothing is pending', async () => {
    const d = await startTestDaemon({ policy: { mode: 'fair' } });
    const c = await RawClient.open(d.port);
    try {
      const r = okBody<Entry>(await c.call([16, 1, 'set', 'api/low', { max_tps: 1 }]));
      assert.equal(r.held, undefined);
      assert.equal(r.effective.max_tps, 1);
      const list = okBody<List>(await c.call([18, 2, 'list']));
      assert.deepEqual([list.approve_above, list.pending], [null, []]);
    } finally {
      c.close();
      await d.stop();
    }
  });

  it('tpsd limits says a change is held; tpsd approvals list|approve|reject, with exit codes 0, 2, 4, 5', async () => {
    const d = await startTestDaemon({ governance: { approve_above: 2 },
      auth: { tokens: [{ token: 'user', keys: ['api/'] }, { token: 'root', admin: true }] } });
    const url = `ws://127.0.0.1:${d.port}`;
    const as = (...args: string[]) => runCli([...args, '--url', url], { TPSD_TOKEN: 'root' });
    try {
      const set = await as('limits', 'set', 'api/low', '--max-tps', '40');
      assert.equal(set.code, 0, set.stderr);
      const id = /held for approval as (chg_[\w-]+) \(max_tps 1000 -> 40: a step of x25\)/.exec(set.stdout)?.[1];
      assert.ok(id !== undefined, set.stdout);
      assert.match(set.stdout, /^max_tps +1000 +1000 +-$/m, 'the old limit shown in force');
      const list = await as('approvals', 'list');
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^governance on: changes by more than x2 wait; 1 pending/);
      assert.match(list.stdout, new RegExp(`^${id} +api/low +operator +max_tps 1000 -> 40 +x25 +`, 'm'));
      const json = JSON.parse((await as('approvals', 'list', '--json')).stdout) as List;
      assert.equal(json.pending[0].id, id);
      assert.equal((await runCli(['approvals', 'list', '--url', url, '--token', 'user'])).code, 5, 'a non-admin token');
      assert.equal((await as('approvals', 'frob')).code, 2);
      assert.equal((await as('approvals', 'approve')).code, 2);
      const ok = await as('approvals', 'approve', id);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`^${id} approved: applies from the daemon's next tick \\(api/low: max_tps 1000 -> 40\\)$`, 'm'));
      assert.equal((d.limits.get('api/low') as Entry).effective.max_tps, 40);
      const again = await as('approvals', 'reject', id);
      assert.equal(again.code, 4, 'used once');
      assert.match(again.stderr, /no pending change with id/);
    } finally {
      await d.stop();
    }
  });

  it('APPROVALS needs an admin token and a well-formed request', async () => {
    const d = await startTestDaemon({ governance: { approve_above: 2 },
      auth: { tokens: [{ token: 'user', keys: ['api/'] }, { token: 'root', admin: true }] } });
    const anon = await RawClient.open(d.port);
    const user = await RawClient.open(d.port);
    const root = await RawClient.open(d.port);
    try {
      assert.equal((await anon.call([18, 1, 'list']))[2], 18);
      assert.equal((await user.call([0, 1, { v: 1, token: 'user' }]))[2], 0);
      assert.equal((await user.call([18, 2, 'list']))[2], 18, 'a non-admin token is refused');
      assert.equal((await user.call([16, 3, 'set', 'api/low', { max_tps: 5 }]))[2], 18);
      assert.equal((await root.call([0, 1, { v: 1, token: 'root' }]))[2], 0);
      const held = okBody<Entry>(await root.call([16, 2, 'set', 'api/low', { max_tps: 5 }])).held!;
      assert.equal((await user.call([18, 4, 'approve', held.id]))[2], 18, 'not even with a real id');
      const cases: [unknown[], number][] = [
        [[18, 3, 'approve'], 16], [[18, 4, 'approve', 7], 16], [[18, 5, 'approve', 'x'.repeat(65)], 16],
        [[18, 6, 'list', 'extra'], 16], [[18, 7, 'frob', held.id], 16], [[18, 8, 'reject', `${held.id}x`], 17],
        [[18, 9, 'approve', 'chg_AAAAAAAAAAAAAAAAAAAAAA'], 17],
      ];
      for (const [req, code] of cases) assert.equal((await root.call(req))[2], code, JSON.stringify(req));
      assert.equal(okBody<List>(await root.call([18, 10, 'list'])).pending.length, 1, 'nothing changed');
    } finally {
      for (const x of [anon, user, root]) x.close();
      await d.stop();
    }
  });
});
