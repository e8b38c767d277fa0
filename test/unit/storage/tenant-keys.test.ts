// Tenant keys in the telemetry database (a real SQLite file): a tenant's
// key (kind 'tenant') is made by its first row; once retention has removed
// all its rows (raw rows rolled up, roll-ups past retention_rollup_d), the
// key goes too, so tenants that come and go cannot grow the keys table
// without bound. A tenant with rows left keeps its key, and one written
// again after its key went gets a key again. A database of an older tpsd
// (before migration 5) keeps its rows, which read as would_deny 0.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import Database from 'better-sqlite3';
import { dbPath, openDatabase } from '../../../src/storage/db.ts';
import { MIGRATIONS } from '../../../src/storage/migrations.ts';
import { Retention } from '../../../src/storage/retention.ts';
import { ROW, ROW_FIELDS, TelemetryStore, type TickBatch } from '../../../src/storage/telemetry-store.ts';
import { tempDir } from '../../fixtures/daemon.ts';

const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW', max_tps: 50,
  tenants: { tiers: [{ name: 'f', priority: 'LOW', tps: 10 }] } }] }] }, {});
const keys = KeyIndex.fromConfig(config);
const SERVICE = keys.find('p/s');
const OPTIONS = { retention_raw_h: 1, retention_rollup_d: 1, retention_decisions_h: 1 };
const H = 3_600_000;

function tick(tsMs: number, n: number, tenants: string[]): TickBatch {
  const values = new Float64Array(tenants.length * ROW_FIELDS);
  tenants.forEach((_, r) => {
    values[r * ROW_FIELDS + ROW.REQUESTED] = 5; values[r * ROW_FIELDS + ROW.GRANTED] = 5; values[r * ROW_FIELDS + ROW.WOULD_DENY] = 2;
  });
  return {
    tsMs, tick: n, dtMs: 100, durationMs: 1, mode: 'fair', model: 'none', count: 0, buckets: new Int32Array(0), values: new Float64Array(0),
    decisions: [], decisionValues: new Float64Array(0),
    tenantCount: tenants.length, tenantServices: new Int32Array(tenants.length).fill(SERVICE), tenantNames: tenants, tenantValues: values,
  };
}

const tenantKeys = (db: ReturnType<typeof openDatabase>) =>
  (db.prepare(`SELECT key FROM keys WHERE kind = 'tenant' ORDER BY key`).pluck().all() as string[]);

describe('tenant keys in the telemetry database', () => {
  it('a tenant\'s key goes once retention removed all its rows; keys with rows stay; a tenant written again gets one again', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const retention = new Retention(db, OPTIONS);
    const now = Date.UTC(2030, 0, 10, 12, 0, 0);
    // Gone: rows three days old (rolled up, and the roll-ups past a day). Rolled: 3 h old (roll-ups kept). Fresh: now.
    for (let i = 0; i < 5; i++) store.writeTick(tick(now - 72 * H + i * 100, i, Array.from({ length: 50 }, (_, k) => `gone-${k}`)));
    store.writeTick(tick(now - 3 * H, 10, ['rolled']));
    store.writeTick(tick(now - 1000, 11, ['fresh']));
    assert.equal(tenantKeys(db).length, 52);
    assert.equal(store.runRetention(retention, now, 10_000).done, true);
    assert.deepEqual(tenantKeys(db), ['p/s/fresh', 'p/s/rolled']);
    assert.equal(db.prepare(`SELECT m.would_deny FROM telemetry_1m m JOIN keys k ON k.id = m.key_id WHERE k.key = 'p/s/rolled'`).pluck().get(), 2,
      'would_deny rolled up');
    assert.equal(db.prepare('SELECT count(*) FROM telemetry_1m WHERE key_id NOT IN (SELECT id FROM keys)').pluck().get(), 0, 'no roll-up lost its key');
    assert.equal(db.prepare('SELECT count(*) FROM telemetry WHERE key_id NOT IN (SELECT id FROM keys)').pluck().get(), 0, 'no row lost its key');
    store.writeTick(tick(now + 1000, 12, ['gone-3', 'fresh']));
    assert.deepEqual(tenantKeys(db), ['p/s/fresh', 'p/s/gone-3', 'p/s/rolled']);
    const rows = db.prepare(`SELECT count(*) FROM telemetry t JOIN keys k ON k.id = t.key_id WHERE k.key = 'p/s/gone-3'`).pluck().get();
    assert.equal(rows, 1, 'its new row has its new key');
    db.close();
  });

  it('migration 5 on a database made before it: rows kept, would_deny 0, tenant keys can be written', () => {
    const dir = tempDir();
    const old = new Database(dbPath(dir));
    const before = MIGRATIONS.filter((x) => x.version < 5);
    for (const m of before) old.exec(m.sql);
    old.pragma(`user_version = ${before[before.length - 1].version}`);
    old.prepare(`INSERT INTO keys (id, key, kind, pool) VALUES (1, 'p', 'pool', 'p')`).run();
    old.prepare(`INSERT INTO ticks VALUES (1000, 1, 100, 1, 1, 'fair')`).run();
    old.prepare(`INSERT INTO telemetry VALUES (1000, 1, 1, 100, 5, 4, 1, 4, 0, 0, 0, 0, 0, 0, 0, 50)`).run();
    old.close();
    const db = openDatabase(dir);
    assert.deepEqual(db.prepare('SELECT requested, denied, would_deny FROM telemetry').get(), { requested: 5, denied: 1, would_deny: 0 });
    const store = new TelemetryStore(db, keys);
    store.writeTick(tick(2000, 2, ['acme']));
    assert.deepEqual(tenantKeys(db), ['p/s/acme']);
    db.close();
  });
});
