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

/** One second at `grantedTps`; demand presses the limit unless the limit is above it. */
function pt(tsMs: number, grantedTps: number, throttled: number, limitTps = grantedTps): Point {
  return {
    tsMs, spanMs: 1000, source: 'raw', samples: 1, coveredMs: 1000, requested: grantedTps, granted: grantedTps, denied: 0, ok: grantedTps - throttled,
    failed: 0, throttled, latencySumUs: 0, latencyCount: 0, queueMax: 0, inFlightMax: 0, limitTps, wouldDeny: 0, late: 0,
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
    assert.equal(r.evidence.bestToMs! - r.evidence.bestFromMs!, 30_000);
    assert.ok(r.evidence.bestFromMs! >= 60_000 && r.evidence.bestToMs! <= 120_000, 'best stretch inside the 300/s minute');
    assert.match(r.evidence.note, /429s were seen from 400 tps/);
    assert.equal(r.verdict, 'measured');
    assert.equal(r.applyTps, 285);
  });

  it('needs a whole sustain window free of 429s, and says when tpsd\'s own limit was the bound', () => {
    const spiky = Array.from({ length: 100 }, (_, i) => pt((i + 1) * 1000, 500, i % 10 === 0 ? 1 : 0));
    assert.equal(recommend(spiky, 10_000), null, 'no 10 s stretch without a 429');
    const capped = Array.from({ length: 100 }, (_, i) => pt((i + 1) * 1000, 99, 0, 100));
    const r = recommend(capped, 10_000)!;
    assert.equal(r.evidence.limitBound, true);
    assert.match(r.evidence.note, /no 429s in the window/);
    assert.equal(r.verdict, 'upstream-limit-not-seen');
    assert.equal(r.sustainedTps, 99);
    assert.equal(r.applyTps, null, 'no 429s: no cut suggested');
    assert.equal(recommend([], 1000), null);
  });

  it('counts idle gaps between rows as time without traffic, and a stretch with a gap as not pressing the limit', () => {
    const r = recommend([pt(1000, 100, 0), pt(10_000, 100, 0)], 10_000)!;
    assert.equal(r.evidence.busiestTps, 20, '200 tokens over the 10 s the two rows span');
    assert.equal(r.verdict, 'demand-limited');
    assert.equal(r.sustainedTps, null);
    assert.equal(r.applyTps, null);
    assert.match(r.evidence.note, /the history does not show the upstream's limit, no change suggested/);
  });

  it('needs every point of a stretch to press the limit: denials, waiters or demand at the limit', () => {
    const busy = (i: number, over: Partial<Point>) => ({ ...pt((i + 1) * 1000, 100, 0, 100), ...over });
    // 20 s at the limit, one second at 60 % of it in the middle: no 15 s pressed stretch.
    const dip = Array.from({ length: 20 }, (_, i) => busy(i, i === 10 ? { requested: 60, granted: 60 } : {}));
    assert.equal(recommend(dip, 15_000)!.verdict, 'demand-limited');
    assert.equal(recommend(dip, 9_000)!.sustainedTps, 100);
    // Demand below the limit still presses when the key denied or queued.
    const denied = Array.from({ length: 20 }, (_, i) => busy(i, { requested: 80, granted: 70, denied: 10 }));
    assert.equal(recommend(denied, 15_000)!.sustainedTps, 70);
    const queued = Array.from({ length: 20 }, (_, i) => busy(i, { requested: 70, granted: 70, queueMax: 3 }));
    assert.equal(recommend(queued, 15_000)!.sustainedTps, 70);
    // A roll-up minute whose ticks covered a third of it was idle the rest: it does not press, denials or not.
    const minute = (m: number, coveredMs: number): Point => ({ ...pt((m + 1) * 60_000, 6000, 0, 100), spanMs: 60_000,
      source: '1m', samples: 200, coveredMs, requested: 7000, denied: 1000 });
    assert.equal(recommend([minute(0, 20_000), minute(1, 20_000)], 60_000)!.verdict, 'demand-limited');
    assert.equal(recommend([minute(0, 60_000), minute(1, 59_000)], 60_000)!.sustainedTps, 100);
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
