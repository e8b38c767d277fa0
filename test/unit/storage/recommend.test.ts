// recommend(): 85/95/99 % of the best goodput sustained without 429s, with
// its evidence; clampsOf(): why an allocation differs from the proposal;
// migrations: versioned, idempotent, refusing a newer schema.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openDatabase, openReadOnly, StorageError } from '../../../src/storage/db.ts';
import { SCHEMA_VERSION } from '../../../src/storage/migrations.ts';
import type { Point } from '../../../src/storage/queries.ts';
import { recommend } from '../../../src/storage/recommend.ts';
import { DEC, DEC_FIELDS, clampsOf, type DecisionRow } from '../../../src/storage/telemetry-store.ts';
import { tempDir } from '../../fixtures/daemon.ts';

function pt(tsMs: number, grantedTps: number, throttled: number, limitTps = 1000): Point {
  return {
    tsMs, spanMs: 1000, source: 'raw', samples: 1, requested: grantedTps, granted: grantedTps, denied: 0, ok: grantedTps - throttled,
    failed: 0, throttled, latencySumUs: 0, latencyCount: 0, queueMax: 0, inFlightMax: 0, limitTps,
  };
}

describe('recommend', () => {
  it('takes 85/95/99 % of the best 429-free stretch of the sustain window', () => {
    const points: Point[] = [];
    // 60 s at 200/s, 60 s at 300/s, then 400/s with 429s, then 250/s.
    for (let i = 0; i < 60; i++) points.push(pt((i + 1) * 1000, 200, 0));
    for (let i = 60; i < 120; i++) points.push(pt((i + 1) * 1000, 300, 0));
    for (let i = 120; i < 150; i++) points.push(pt((i + 1) * 1000, 400, 20));
    for (let i = 150; i < 200; i++) points.push(pt((i + 1) * 1000, 250, 0));
    const r = recommend(points, 30_000)!;
    assert.equal(r.sustainedTps, 300);
    assert.equal(r.conservativeTps, 255);
    assert.equal(r.optimalTps, 285);
    assert.equal(r.maximumTps, 297);
    assert.equal(r.evidence.samples, 200);
    assert.equal(r.evidence.throttledSamples, 30);
    assert.equal(r.evidence.throttledAtTps, 400);
    assert.equal(r.evidence.bestToMs - r.evidence.bestFromMs, 30_000);
    assert.ok(r.evidence.bestFromMs >= 60_000 && r.evidence.bestToMs <= 120_000, 'best stretch inside the 300/s minute');
    assert.match(r.evidence.note, /429s were seen from 400 tps/);
  });

  it('needs a whole sustain window free of 429s, and says when tpsd\'s own limit was the bound', () => {
    const spiky = Array.from({ length: 100 }, (_, i) => pt((i + 1) * 1000, 500, i % 10 === 0 ? 1 : 0));
    assert.equal(recommend(spiky, 10_000), null, 'no 10 s stretch without a 429');
    const capped = Array.from({ length: 100 }, (_, i) => pt((i + 1) * 1000, 99, 0, 100));
    const r = recommend(capped, 10_000)!;
    assert.equal(r.evidence.limitBound, true);
    assert.match(r.evidence.note, /no 429s in the window/);
    assert.equal(recommend([], 1000), null);
  });

  it('counts idle gaps between rows as time without traffic', () => {
    const r = recommend([pt(1000, 100, 0), pt(10_000, 100, 0)], 10_000)!;
    assert.equal(r.sustainedTps, 20, '200 tokens over the 10 s the two rows span');
  });
});

describe('clampsOf', () => {
  it('names each safety stage that changed a service\'s value', () => {
    const d: DecisionRow = { pool: 'p', policy: 'ppo', fallbackReason: null, capacityTps: 100, effectiveTps: 100, demandTps: 0,
      stepCap: 2, stepFloorTps: 5, shadowRegret: null, offset: 0, services: 4 };
    const v = new Float64Array(4 * DEC_FIELDS);
    const set = (i: number, before: number, proposed: number, after: number, max: number, g: number) => {
      v.set([before, proposed, after, Number.NaN, max, g], i * DEC_FIELDS);
    };
    set(0, 10, 80, 20, 50, 0); // max_tps 80 -> 50, then step cap 50 -> 20
    set(1, 10, 1, 15, 100, 15); // guarantee 1 -> 15
    set(2, 10, 15, 12, 100, 0); // within caps, scaled to capacity 15 -> 12
    set(3, 10, Number.NaN, 0, 100, 0); // invalid
    assert.equal(v[DEC.PROPOSED], 80);
    assert.deepEqual(clampsOf(d, v, ['p/a', 'p/b', 'p/c', 'p/d']), [
      { key: 'p/a', from: 80, to: 50, why: 'max_tps' },
      { key: 'p/a', from: 50, to: 20, why: 'step_cap' },
      { key: 'p/b', from: 1, to: 15, why: 'min_tps' },
      { key: 'p/c', from: 15, to: 12, why: 'capacity' },
    ]);
  });
});

describe('migrations', () => {
  it('create the schema once, reopen without change, and refuse a newer database', () => {
    const dir = tempDir();
    const db = openDatabase(dir);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
    openDatabase(dir).close();
    const raw = new Database(`${dir}/tpsd.db`);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(() => openDatabase(dir), (e: Error) => e instanceof StorageError && /newer than this tpsd knows/.test(e.message));
    assert.throws(() => openReadOnly(`${dir}/missing.db`), StorageError);
  });
});
