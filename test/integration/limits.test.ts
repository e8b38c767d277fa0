// Live limits (op 16 LIMITS) against a real daemon and a real database: a
// change is validated, persisted, audited, applied to the buckets within one
// tick, and re-applied after a restart; admin tokens are enforced.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { validateConfig } from '../../src/config/schema.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import type { LimitEntry } from '../../src/daemon/live-limits.ts';
import { STAT_CAPACITY_INDEX, TICK_SEQ_INDEX, statsBase } from '../../src/shm/layout.ts';
import { OverrideStore } from '../../src/storage/overrides.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { RawClient, httpGet, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { until } from '../fixtures/telemetry.ts';

const tickOf = (d: Daemon) => Atomics.load(d.views.header, TICK_SEQ_INDEX);
const rate = (d: Daemon, key: string) => d.controller.table.rateTps(d.keys.lookup(key));

/**
 * Waits for the next tick to complete. With the fair policy a tick runs
 * without yielding to messages, so the tick after an answered change is the
 * first one to see it: "within one tick".
 */
async function nextTick(d: Daemon): Promise<void> {
  const t = tickOf(d);
  await until(() => tickOf(d) >= t + 1, 3000, 'the next tick');
}

async function keyStatus(d: Daemon, key: string): Promise<Record<string, unknown>> {
  const s = JSON.parse((await httpGet(d.port, '/v1/status')).body) as { keys: Record<string, unknown>[] };
  return s.keys.find((k) => k.key === key)!;
}

describe('live limits (op 16 LIMITS)', () => {
  it('set changes the bucket rate within one tick, priority at once, and both survive a restart', async () => {
    const dataDir = tempDir();
    const opts = { data_dir: dataDir, policy: { mode: 'fair' } };
    const daemon = await startTestDaemon(opts);
    await nextTick(daemon);
    assert.ok(rate(daemon, 'api/low') > 100, `api/low starts high (${rate(daemon, 'api/low')})`);
    const c = await RawClient.open(daemon.port);
    const r = await c.call([16, 1, 'set', 'api/low', { max_tps: 40, priority: 'HIGH' }]);
    assert.equal(r[2], 0, String(r[3]));
    const body = r[3] as { effective: Record<string, unknown>; configured: Record<string, unknown>; persisted: boolean };
    assert.deepEqual(body.effective, { min_tps: 0, max_tps: 40, priority: 'HIGH' });
    assert.deepEqual(body.configured, { min_tps: 0, max_tps: 1000, priority: 'LOW' });
    assert.equal(body.persisted, true);
    assert.equal((await keyStatus(daemon, 'api/low')).priority, 'HIGH', 'priority is in shared memory at once');
    await nextTick(daemon);
    assert.ok(rate(daemon, 'api/low') <= 40, `api/low rate ${rate(daemon, 'api/low')} <= 40 after one tick`);

    const cap = await c.call([16, 2, 'set', 'api', { capacity_tps: 300 }]);
    assert.equal(cap[2], 0, String(cap[3]));
    await nextTick(daemon);
    assert.ok(rate(daemon, 'api') <= 300, `pool rate ${rate(daemon, 'api')} <= 300`);
    assert.equal(daemon.views.stats[statsBase(daemon.keys.lookup('api')) + STAT_CAPACITY_INDEX], 300);
    c.close();
    await daemon.stop();

    const again = await startTestDaemon(opts);
    await nextTick(again);
    assert.ok(rate(again, 'api/low') <= 40, `after restart api/low rate ${rate(again, 'api/low')} <= 40`);
    assert.ok(rate(again, 'api') <= 300, 'pool capacity override re-applied');
    assert.equal((await keyStatus(again, 'api/low')).priority, 'HIGH');
    const c2 = await RawClient.open(again.port);
    const got = await c2.call([16, 3, 'get', 'api/low']);
    assert.deepEqual((got[3] as { overrides: Record<string, { value: unknown }> }).overrides.max_tps.value, 40);

    const rm = await c2.call([16, 4, 'rm', 'api/low', ['max_tps']]);
    assert.equal(rm[2], 0, String(rm[3]));
    assert.deepEqual((rm[3] as { effective: unknown }).effective, { min_tps: 0, max_tps: 1000, priority: 'HIGH' });
    await until(() => rate(again, 'api/low') > 40, 3000, 'api/low back above 40 after rm');
    c2.close();
    await again.stop();

    const db = new Database(again.dbFile!, { readonly: true });
    const audit = db.prepare('SELECT action, key, field, old_value, new_value FROM limit_audit ORDER BY id').all();
    db.close();
    assert.deepEqual(audit, [
      { action: 'set', key: 'api/low', field: 'max_tps', old_value: '1000', new_value: '40' },
      { action: 'set', key: 'api/low', field: 'priority', old_value: '"LOW"', new_value: '"HIGH"' },
      { action: 'set', key: 'api', field: 'capacity_tps', old_value: '1000', new_value: '300' },
      { action: 'rm', key: 'api/low', field: 'max_tps', old_value: '40', new_value: '1000' },
    ]);
  });

  it('a reload (SIGHUP) puts the new config\'s values under the overrides; the KeyIndex keeps the config it was built from', async () => {
    const daemon = await startTestDaemon({ policy: { mode: 'fair' } });
    try {
      daemon.limits.set('api/low', { priority: 'HIGH' }, 'test');
      const raw = JSON.parse(JSON.stringify(daemon.config)) as { pools: { services: { name: string; max_tps: number }[] }[] };
      raw.pools[0].services.find((s) => s.name === 'low')!.max_tps = 500;
      await daemon.reload(validateConfig(raw, {}));
      const entry = daemon.limits.get('api/low') as LimitEntry;
      assert.deepEqual(entry.configured, { min_tps: 0, max_tps: 500, priority: 'LOW' });
      assert.deepEqual(entry.effective, { min_tps: 0, max_tps: 500, priority: 'HIGH' });
      const b = daemon.keys.lookup('api/low');
      const live = daemon.controller.limitsOf(b);
      assert.deepEqual([live.maxTps, live.priority], [500, 1], 'the controller\'s limits in force');
      assert.equal(daemon.keys.specs[b].maxTps, 1000);
      await nextTick(daemon);
      assert.ok(rate(daemon, 'api/low') <= 500, `api/low rate ${rate(daemon, 'api/low')} <= 500 after the reload`);
    } finally {
      await daemon.stop();
    }
  });

  it('refuses bad changes with BAD_REQUEST or UNKNOWN_KEY and audits them', async () => {
    const daemon = await startTestDaemon();
    const c = await RawClient.open(daemon.port);
    const cases: [unknown[], number, RegExp][] = [
      [[16, 1, 'set', 'api/low', { min_tps: 2000 }], 16, /min_tps 2000 above max_tps 1000/],
      [[16, 2, 'set', 'api', { capacity_tps: 50 }], 16, /minimums of pool api would add up to 100, above its capacity_tps 50/],
      [[16, 3, 'set', 'api', { max_tps: 5 }], 16, /no live field "max_tps".*capacity_tps/],
      [[16, 4, 'set', 'api/low', { priority: 'URGENT' }], 16, /priority must be one of/],
      [[16, 5, 'set', 'api/low', { max_tps: -1 }], 16, /max_tps must be a number > 0/],
      [[16, 6, 'set', 'api/nope', { max_tps: 5 }], 17, /no bucket with key/],
      [[16, 7, 'set', 'api/low'], 16, /set is/],
      [[16, 8, 'frob', 'api/low'], 16, /LIMITS is/],
      [[16, 9, 'rm', 'api/low', ['burst']], 16, /has no field "burst"/],
    ];
    for (const [req, code, message] of cases) {
      const r = await c.call(req);
      assert.equal(r[2], code, `${JSON.stringify(req)} -> ${r[3]}`);
      assert.match(String(r[3]), message);
    }
    c.close();
    await daemon.stop();
    const db = new Database(daemon.dbFile!, { readonly: true });
    const rejected = db.prepare("SELECT count(*) FROM limit_audit WHERE action = 'rejected'").pluck().get();
    db.close();
    assert.equal(rejected, 5, 'value errors on known keys are audited');
  });

  it('needs an admin token when auth is on', async () => {
    const daemon = await startTestDaemon({ auth: { tokens: [{ token: 'user', keys: ['api/'] }, { token: 'root', admin: true }] } });
    const anon = await RawClient.open(daemon.port);
    assert.equal((await anon.call([16, 1, 'get', 'api/low']))[2], 18);
    const user = await RawClient.open(daemon.port);
    await user.call([0, 1, { v: 1, token: 'user' }]);
    const r = await user.call([16, 2, 'set', 'api/low', { max_tps: 10 }]);
    assert.deepEqual(r.slice(0, 3), [16, 2, 18]);
    assert.match(String(r[3]), /admin token/);
    const admin = await RawClient.open(daemon.port);
    await admin.call([0, 1, { v: 1, token: 'root', name: 'ops' }]);
    const ok = await admin.call([16, 2, 'set', 'api/low', { max_tps: 10 }]);
    assert.equal(ok[2], 0);
    assert.match((ok[3] as { overrides: Record<string, { set_by: string }> }).overrides.max_tps.set_by, /^ops \(io-\d conn \d+\)$/);
    for (const c of [anon, user, admin]) c.close();
    await daemon.stop();
  });

  it('skips, logs and audits a persisted override that no longer fits the config, and starts', async () => {
    const dataDir = tempDir();
    const db = openDatabase(dataDir);
    const store = new OverrideStore(db);
    store.set('api/gone', [{ field: 'max_tps', old: 1, value: 5 }], 'test', Date.now());
    store.set('api/low', [{ field: 'min_tps', old: 0, value: 5000 }], 'test', Date.now());
    store.set('api/crit', [{ field: 'max_tps', old: 1000, value: 500 }], 'test', Date.now());
    db.close();
    const daemon = await startTestDaemon({ data_dir: dataDir });
    assert.equal(daemon.limits.count, 1, 'only the override that still fits is in force');
    await daemon.stop();
    const check = new Database(daemon.dbFile!, { readonly: true });
    const skipped = check.prepare("SELECT key FROM limit_audit WHERE action = 'skipped' ORDER BY key").pluck().all();
    const kept = check.prepare('SELECT count(*) FROM limit_overrides').pluck().get();
    check.close();
    assert.deepEqual(skipped, ['api/gone', 'api/low']);
    assert.equal(kept, 3, 'skipped overrides are kept for the operator to remove');
  });
});
