// Retention on a real SQLite file (a fresh temporary data_dir per test):
// per-tick rows past retention_raw_h become 1-minute rows with the same sums,
// maxima and averages, even when a minute is rolled up in several passes;
// 1-minute rows, decisions and tick rows past their retention are deleted;
// limit changes are kept.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { openDatabase, type Db } from '../../../src/storage/db.ts';
import { OverrideStore } from '../../../src/storage/overrides.ts';
import { Retention } from '../../../src/storage/retention.ts';
import { DEC_FIELDS, ROW, ROW_FIELDS, TelemetryStore, type TickBatch } from '../../../src/storage/telemetry-store.ts';
import { tempDir } from '../../fixtures/daemon.ts';

const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW', max_tps: 50 }] }] }, {});
const keys = KeyIndex.fromConfig(config);
const OPTIONS = { retention_raw_h: 24, retention_rollup_d: 30, retention_decisions_h: 48 };
const H = 3_600_000;

/** One tick at tsMs: `granted` tokens on p/s (and p), queue q, limit lim. */
function tick(tsMs: number, n: number, granted: number, q: number, lim: number): TickBatch {
  const values = new Float64Array(2 * ROW_FIELDS);
  for (const r of [0, 1]) {
    values[r * ROW_FIELDS + ROW.REQUESTED] = granted + 1;
    values[r * ROW_FIELDS + ROW.GRANTED] = granted;
    values[r * ROW_FIELDS + ROW.THROTTLED] = n % 2;
    values[r * ROW_FIELDS + ROW.QUEUE] = q;
    values[r * ROW_FIELDS + ROW.LIMIT_TPS] = lim;
  }
  const decisionValues = new Float64Array(DEC_FIELDS).fill(10);
  return {
    tsMs, tick: n, dtMs: 1000, durationMs: 1, mode: 'fair', model: 'none', count: 2, buckets: Int32Array.from([0, 1]), values,
    decisions: [{ pool: 'p', policy: 'fair', fallbackReason: null, capacityTps: 100, effectiveTps: 100, demandTps: 1,
      stepCap: 1.8, stepFloorTps: 5, shadowRegret: null, offset: 0, services: 1 }], decisionValues,
  };
}

function one<T>(db: Db, sql: string, ...args: unknown[]): T {
  return db.prepare(sql).get(...args) as T;
}

describe('retention', () => {
  it('rolls raw rows older than retention_raw_h into 1-minute rows, keeping sums, maxima and averages', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const now = Date.UTC(2030, 0, 2, 12, 0, 0);
    const old = now - 25 * H; // past the 24 h raw retention, minute-aligned
    for (let i = 0; i < 120; i++) store.writeTick(tick(old + i * 1000, i + 1, i, i % 7, 10 + (i % 60)));
    for (let i = 0; i < 5; i++) store.writeTick(tick(now - 1000 * i, 1000 + i, 1, 0, 10));
    const r = new Retention(db, OPTIONS).runPass(now, 10_000);
    assert.equal(r.done, true);
    assert.equal(r.rolledUp, 240, '120 ticks x 2 keys rolled up');
    const m = db.prepare('SELECT * FROM telemetry_1m WHERE key_id = ? ORDER BY minute_ms').all(store.keyIds[1]) as Record<string, number>[];
    assert.equal(m.length, 2);
    assert.equal(m[0].minute_ms, old);
    assert.equal(m[0].samples, 60);
    assert.equal(m[0].granted, (59 * 60) / 2, 'sum of 0..59');
    assert.equal(m[1].granted, (60 + 119) * 30, 'sum of 60..119');
    assert.equal(m[0].throttled, 30);
    assert.equal(m[0].queue_max, 6);
    assert.equal(m[0].limit_min, 10);
    assert.equal(m[0].limit_max, 69);
    assert.equal(m[0].limit_sum / m[0].samples, 39.5);
    assert.equal(one<{ n: number }>(db, 'SELECT count(*) AS n FROM telemetry').n, 10, 'recent raw rows stay');
    assert.equal(one<{ n: number }>(db, 'SELECT count(*) AS n FROM ticks').n, 5, 'old tick rows go with them');
    db.close();
  });

  it('merges a minute rolled up in several passes without counting anything twice', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const base = Date.UTC(2030, 0, 1, 0, 0, 0);
    for (let i = 0; i < 60; i++) store.writeTick(tick(base + i * 1000, i + 1, 2, i, 5));
    const ret = new Retention(db, OPTIONS);
    // The cutoff falls mid-minute, then later past it.
    ret.runPass(base + 24 * H + 20_500, 10_000);
    const part = one<{ samples: number; granted: number }>(db, 'SELECT samples, granted FROM telemetry_1m WHERE key_id = ?', store.keyIds[1]);
    assert.deepEqual(part, { samples: 21, granted: 42 });
    ret.runPass(base + 24 * H + 90_000, 10_000);
    const all = one<{ samples: number; granted: number; queue_max: number }>(db, 'SELECT samples, granted, queue_max FROM telemetry_1m WHERE key_id = ?', store.keyIds[1]);
    assert.deepEqual(all, { samples: 60, granted: 120, queue_max: 59 });
    db.close();
  });

  it('deletes 1-minute rows past retention_rollup_d and decisions past retention_decisions_h, keeps limit changes', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const now = Date.UTC(2030, 5, 1);
    store.writeTick(tick(now - 31 * 24 * H, 1, 5, 0, 5)); // rolled up, then too old even as a roll-up
    store.writeTick(tick(now - 3 * 24 * H, 2, 5, 0, 5)); // rolled up and kept; its decision is past 48 h
    store.writeTick(tick(now - H, 3, 5, 0, 5));
    new OverrideStore(db).set('p/s', [{ field: 'max_tps', old: 50, value: 20 }], 'test', now - 40 * 24 * H);
    const r = new Retention(db, OPTIONS).runPass(now, 10_000);
    assert.equal(r.done, true);
    const minutes = db.prepare('SELECT minute_ms FROM telemetry_1m WHERE key_id = ?').pluck().all(store.keyIds[1]);
    assert.deepEqual(minutes, [now - 3 * 24 * H]);
    assert.deepEqual(db.prepare('SELECT tick FROM decisions').pluck().all(), [3]);
    assert.equal(one<{ n: number }>(db, 'SELECT count(*) AS n FROM limit_audit').n, 1);
    db.close();
  });

  it('works in bounded steps and reports when a pass ran out of time', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const base = Date.UTC(2030, 0, 1);
    for (let i = 0; i < 10; i++) store.writeTick(tick(base + i * 60_000, i + 1, 1, 0, 1)); // 10 minutes
    const ret = new Retention(db, OPTIONS);
    const step = ret.step(base + 30 * H);
    assert.equal(step.rolledUp, 2, 'one step handles one minute');
    const pass = ret.runPass(base + 30 * H, 0);
    assert.equal(pass.done, false, 'a zero budget stops after one step');
    assert.equal(ret.runPass(base + 30 * H, 10_000).done, true);
    assert.equal(one<{ n: number }>(db, 'SELECT sum(granted) AS n FROM telemetry_1m').n, 20);
    db.close();
  });
});
