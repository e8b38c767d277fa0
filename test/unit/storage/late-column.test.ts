// The `late` column (migration 6) of telemetry and telemetry_1m, in a real
// SQLite file: a tick's late releases are written with latency_count and
// rolled up by retention without loss; a database made before migration 6
// opens, migrates, and its rows read late 0 (per-tick and rolled up).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { validateConfig } from '../../../src/config/schema.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { dbPath, openDatabase } from '../../../src/storage/db.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../../../src/storage/migrations.ts';
import { findKey, readPoints } from '../../../src/storage/queries.ts';
import { Retention } from '../../../src/storage/retention.ts';
import { ROW, ROW_FIELDS, TelemetryStore, type TickBatch } from '../../../src/storage/telemetry-store.ts';
import { tempDir } from '../../fixtures/daemon.ts';

const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW', max_tps: 50 }] }] }, {});
const keys = KeyIndex.fromConfig(config);
const OPTIONS = { retention_raw_h: 1, retention_rollup_d: 1, retention_decisions_h: 1 };
const H = 3_600_000;

/** One tick with a row for p/s: `n` releases with a latency, `late` of them past the SLO. */
function tick(tsMs: number, t: number, n: number, late: number): TickBatch {
  const values = new Float64Array(ROW_FIELDS);
  values[ROW.OK] = n; values[ROW.LATENCY_COUNT] = n; values[ROW.LATENCY_SUM_US] = n * 1000; values[ROW.LATE] = late; values[ROW.LIMIT_TPS] = 50;
  return { tsMs, tick: t, dtMs: 100, durationMs: 1, mode: 'fair', model: 'none', count: 1, buckets: Int32Array.of(keys.find('p/s')),
    values, decisions: [], decisionValues: new Float64Array(0) };
}

describe('late releases in the telemetry database', () => {
  it('are written per tick and rolled up by retention, nothing lost or doubled', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const now = Date.UTC(2030, 0, 10, 12, 0, 0);
    // Two ticks in the same old minute, rolled up in two passes (merged into the same roll-up), one fresh tick.
    store.writeTick(tick(now - 3 * H, 1, 10, 3));
    assert.equal(new Retention(db, OPTIONS).runPass(now, 10_000).done, true);
    store.writeTick(tick(now - 3 * H + 100, 2, 7, 2));
    assert.equal(new Retention(db, OPTIONS).runPass(now, 10_000).done, true);
    store.writeTick(tick(now - 1000, 3, 4, 4));
    assert.deepEqual(db.prepare('SELECT late, latency_count FROM telemetry_1m').all(), [{ late: 5, latency_count: 17 }]);
    assert.deepEqual(db.prepare('SELECT late, latency_count FROM telemetry').all(), [{ late: 4, latency_count: 4 }]);
    const points = readPoints(db, findKey(db, 'p/s')!.id, now - 4 * H, now);
    assert.deepEqual(points.map((p) => [p.source, p.late, p.latencyCount]), [['1m', 5, 17], ['raw', 4, 4]]);
    db.close();
  });

  it('a database made before migration 6 migrates; its rows read late 0', () => {
    const dir = tempDir();
    const old = new Database(dbPath(dir));
    const before = MIGRATIONS.filter((x) => x.version < 6);
    for (const m of before) old.exec(m.sql);
    old.pragma(`user_version = ${before[before.length - 1].version}`);
    old.prepare(`INSERT INTO keys (id, key, kind, pool) VALUES (1, 'p/s', 'service', 'p')`).run();
    old.prepare(`INSERT INTO ticks VALUES (1000, 1, 100, 1, 1, 'fair')`).run();
    old.prepare(`INSERT INTO telemetry (ts_ms, key_id, tick, dt_ms, requested, granted, denied, ok, failed, throttled, expired,
      latency_sum_us, latency_count, queue, in_flight, limit_tps) VALUES (1000, 1, 1, 100, 5, 5, 0, 5, 0, 0, 0, 5000, 5, 0, 0, 50)`).run();
    old.prepare(`INSERT INTO telemetry_1m (key_id, minute_ms, samples, dt_ms, requested, granted, denied, ok, failed, throttled, expired,
      latency_sum_us, latency_count, queue_sum, queue_max, in_flight_sum, in_flight_max, limit_sum, limit_min, limit_max)
      VALUES (1, 0, 1, 100, 2, 2, 0, 2, 0, 0, 0, 2000, 2, 0, 0, 0, 0, 50, 50, 50)`).run();
    old.close();
    const db = openDatabase(dir);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.deepEqual(db.prepare('SELECT latency_count, late FROM telemetry').get(), { latency_count: 5, late: 0 });
    assert.deepEqual(db.prepare('SELECT latency_count, late FROM telemetry_1m').get(), { latency_count: 2, late: 0 });
    const store = new TelemetryStore(db, keys);
    store.writeTick(tick(2000, 2, 6, 1));
    assert.deepEqual(readPoints(db, 1, 0, 3000).map((p) => [p.source, p.late, p.latencyCount]), [['raw', 0, 5], ['raw', 1, 6], ['1m', 0, 2]]);
    db.close();
  });
});
