// Telemetry in SQLite against a real daemon and a real database file (a fresh
// temporary data_dir per test): rows each tick, roll-up under retention,
// SIGTERM under load loses nothing the daemon accepted, kill -9 reopens
// cleanly having lost at most the last tick.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { PpoModel } from '../../src/ppo/model.ts';
import { TICK_SEQ_INDEX } from '../../src/shm/layout.ts';
import { httpGet, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { dbTotals, runLoad, sleep, spawnDaemon, until, writeConfig } from '../fixtures/telemetry.ts';

const KEYS = ['api/low', 'api/crit', 'api/crit/slow'];

describe('telemetry in SQLite', () => {
  it('writes a tick row, per-key rows and a decision every tick while traffic flows', async () => {
    const daemon = await startTestDaemon({ policy: { mode: 'fair' } });
    let stop = false;
    const load = runLoad(daemon.port, ['api/low', 'api/crit'], () => stop, { throttleEvery: 10 });
    await sleep(1200);
    stop = true;
    const counts = await load;
    await sleep(300); // the releases' outcomes land in the next ticks
    const db = new Database(daemon.dbFile!, { readonly: true });
    try {
      const ticks = db.prepare('SELECT tick, rows FROM ticks ORDER BY ts_ms').all() as { tick: number; rows: number }[];
      assert.ok(ticks.length >= 10, `${ticks.length} ticks written in 1.5 s at 100 ms`);
      ticks.forEach((t, i) => assert.equal(t.tick, ticks[0].tick + i, 'one row per tick, none missing'));
      const busy = db.prepare(`SELECT count(*) AS n FROM telemetry t JOIN keys k ON k.id = t.key_id
        WHERE k.key = 'api/low' AND t.requested > 0`).get() as { n: number };
      assert.ok(busy.n >= 8, `api/low has a row in each tick with traffic (${busy.n})`);
      const decisions = db.prepare("SELECT count(*) AS n, min(policy) AS policy FROM decisions WHERE pool = 'api'").get() as { n: number; policy: string };
      assert.equal(decisions.n, ticks.length, 'one decision per pool per tick');
      assert.equal(decisions.policy, 'fair');
      // The pool's first row carries every service; later rows those whose figures changed (daemon/decision-rows.ts).
      const rows = db.prepare("SELECT services FROM decisions WHERE pool = 'api' ORDER BY id").all() as { services: string }[];
      const keysOf = (r: { services: string }) => JSON.parse(r.services).map((s: { key: string }) => s.key) as string[];
      assert.deepEqual(keysOf(rows[0]), ['api/crit', 'api/low']);
      for (const r of rows) assert.ok(keysOf(r).every((k) => k === 'api/crit' || k === 'api/low'), `a row's services: ${r.services}`);
      const row = db.prepare(`SELECT sum(latency_count) AS n, sum(throttled) AS t, max(limit_tps) AS lim FROM telemetry t JOIN keys k ON k.id = t.key_id
        WHERE k.key = 'api/low'`).get() as { n: number; t: number; lim: number };
      assert.ok(row.n > 0 && row.t > 0 && row.lim > 0, `latency count ${row.n}, 429s ${row.t}, limit ${row.lim} recorded`);
    } finally {
      db.close();
    }
    await daemon.stop();
    const granted = dbTotals(daemon.dbFile!, 'granted');
    assert.equal(granted['api/low'], counts.granted['api/low'], 'every grant is in the database after stop');
    assert.equal(granted['api/crit'], counts.granted['api/crit']);
  });

  it('rolls per-tick rows older than retention_raw_h into 1-minute rows without losing or doubling counts', async () => {
    // 1.8 s of raw retention, a pass every 0.3 s: rows roll up while the load runs.
    const daemon = await startTestDaemon({ policy: { mode: 'fair' }, telemetry: { retention_raw_h: 0.0005, rollup_every_s: 0.3 } });
    let stop = false;
    const load = runLoad(daemon.port, ['api/low'], () => stop);
    await sleep(3500);
    stop = true;
    const counts = await load;
    await daemon.stop();
    const db = new Database(daemon.dbFile!, { readonly: true });
    try {
      const rolled = db.prepare(`SELECT count(*) AS n, sum(samples) AS samples, sum(granted) AS granted FROM telemetry_1m m
        JOIN keys k ON k.id = m.key_id WHERE k.key = 'api/low'`).get() as { n: number; samples: number; granted: number };
      assert.ok(rolled.n >= 1 && rolled.samples >= 5, `rolled up ${rolled.samples} tick rows into ${rolled.n} minute rows`);
      assert.ok(rolled.granted > 0);
      const oldest = db.prepare('SELECT min(ts_ms) AS t FROM telemetry').get() as { t: number };
      const newest = db.prepare('SELECT max(ts_ms) AS t FROM ticks').get() as { t: number };
      assert.ok(newest.t - oldest.t < 1800 + 1000, `raw rows span ${newest.t - oldest.t} ms, about the 1.8 s kept`);
    } finally {
      db.close();
    }
    assert.equal(dbTotals(daemon.dbFile!, 'granted')['api/low'], counts.granted['api/low'], 'raw + roll-up = what was granted');
  });

  it('on SIGTERM under load writes every grant and denial the daemon accepted, and exits 0', async () => {
    const dir = tempDir();
    const d = spawnDaemon(writeConfig(dir));
    const port = await d.port;
    let stop = false;
    const loads = [runLoad(port, KEYS, () => stop, { batch: 30, pauseMs: 0 }), runLoad(port, ['api/low'], () => stop, { batch: 30, pauseMs: 0 })];
    await sleep(1000);
    d.child.kill('SIGTERM');
    const code = await d.exit;
    stop = true;
    const counts = await Promise.all(loads);
    assert.equal(code, 0, d.stderr());
    // Counts roll up the key path: api/crit includes api/crit/slow, api everything.
    const want = (what: 'granted' | 'denied', key: string) => counts.reduce((s, c) =>
      s + Object.entries(c[what]).filter(([k]) => k === key || k.startsWith(`${key}/`)).reduce((a, [, n]) => a + n, 0), 0);
    const granted = dbTotals(`${dir}/data/tpsd.db`, 'granted');
    const denied = dbTotals(`${dir}/data/tpsd.db`, 'denied');
    assert.ok(want('granted', 'api/low') > 50, `load was running (${want('granted', 'api/low')} grants)`);
    for (const key of ['api', ...KEYS]) {
      assert.equal(granted[key], want('granted', key), `${key}: grants in the database = grants answered`);
      assert.equal(denied[key], want('denied', key), `${key}: denials in the database = denials answered`);
    }
  });

  it('after kill -9 the database opens cleanly, has every tick but at most the last, and the daemon starts again', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);
    const d = spawnDaemon(config);
    const port = await d.port;
    let stop = false;
    const load = runLoad(port, KEYS, () => stop);
    await sleep(1000);
    const status = JSON.parse((await httpGet(port, '/v1/status')).body) as { tick: number };
    d.child.kill('SIGKILL');
    await d.exit;
    stop = true;
    await load;
    const db = new Database(`${dir}/data/tpsd.db`);
    try {
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      const ticks = db.prepare('SELECT tick FROM ticks ORDER BY ts_ms').pluck().all() as number[];
      assert.ok(ticks.length > 0);
      ticks.forEach((t, i) => assert.equal(t, ticks[0] + i, 'no tick missing in the middle'));
      assert.ok(ticks.at(-1)! >= status.tick - 1, `last tick written ${ticks.at(-1)}, tick at kill >= ${status.tick}`);
    } finally {
      db.close();
    }
    const again = spawnDaemon(config);
    const port2 = await again.port;
    await until(async () => JSON.parse((await httpGet(port2, '/v1/status')).body).tick >= 3, 5000, 'ticks after restart');
    again.child.kill('SIGTERM');
    assert.equal(await again.exit, 0, again.stderr());
    const db2 = new Database(`${dir}/data/tpsd.db`, { readonly: true });
    assert.ok((db2.prepare('SELECT count(*) FROM ticks').pluck().get() as number) > 0);
    db2.close();
  });

  it('registers the PPO model in use in the model registry: version, path, digest and size of the file', async () => {
    // A model file of its own, so the test knows a model loads (whatever is shipped in config/).
    const file = join(tempDir(), 'model.json');
    const json = PpoModel.create([8]).toJson({ purpose: 'telemetry test' }, {});
    writeFileSync(file, JSON.stringify(json));
    const bytes = readFileSync(file);
    const daemon = await startTestDaemon({ policy: { mode: 'shadow', model: file } });
    const version = daemon.controller.modelVersion;
    await daemon.stop();
    assert.equal(version, json.model_version, 'the daemon runs the model in the file');
    const db = new Database(daemon.dbFile!, { readonly: true });
    const models = db.prepare('SELECT version, path, sha256, bytes, loads FROM models').all();
    db.close();
    assert.deepEqual(models, [{
      version: json.model_version, path: resolve(file), sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, loads: 1,
    }]);
  });

  it('registers no model when the model file cannot be read', async () => {
    const daemon = await startTestDaemon({ policy: { mode: 'shadow', model: join(tempDir(), 'absent.json') } });
    const version = daemon.controller.modelVersion;
    await daemon.stop();
    assert.equal(version, 'none');
    const db = new Database(daemon.dbFile!, { readonly: true });
    const models = db.prepare('SELECT version, path FROM models').all();
    db.close();
    assert.deepEqual(models, []);
  });

  it('runs without a database when telemetry.enabled is false', async () => {
    const daemon = await startTestDaemon({ telemetry: { enabled: false } });
    assert.equal(daemon.dbFile, null);
    await until(() => Atomics.load(daemon.views.header, TICK_SEQ_INDEX) >= 2, 3000, 'ticks');
    const m = await httpGet(daemon.port, '/metrics');
    assert.match(m.body, /^tpsd_sqlite_enabled 0$/m);
    await daemon.stop();
  });
});
