// Idle keys cost nothing in telemetry, against a real daemon and its SQLite
// file: a key that goes idle writes one row of zeros and then nothing; a
// pool stops writing decision rows once it is at rest (control/pool-rest.ts:
// at once when it never had traffic, 64 ticks after its last grant when it
// had) and writes them again when a key of it is used.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { HINT_MEMORY_TICKS } from '../../src/control/pool-rest.ts';
import { BASE_POOL, startTestDaemon } from '../fixtures/daemon.ts';
import { runLoad, until } from '../fixtures/telemetry.ts';

const QUIET_POOL = { name: 'quiet', capacity_tps: 500, services: [{ name: 'a', priority: 'HIGH', max_tps: 200 }, { name: 'b', priority: 'LOW', max_tps: 200 }] };

describe('telemetry of idle keys', () => {
  it('one row of zeros when a key goes idle, then none; decision rows stop while a pool sleeps and resume when it wakes', async () => {
    const daemon = await startTestDaemon({ tick_ms: 20, policy: { mode: 'fair' }, pools: [BASE_POOL, QUIET_POOL] });
    const ticks = () => daemon.controller.ticks;
    let wokeAt = 0;
    try {
      await runLoad(daemon.port, ['api/low'], () => false, { maxBatches: 5 });
      const loadEnded = ticks();
      // Past the sleep: the forecasts decay, 64 ticks without grants, then some 60 ticks asleep.
      await until(() => ticks() > loadEnded + HINT_MEMORY_TICKS + 120, 30_000, 'the pools to sleep');
      await runLoad(daemon.port, ['quiet/a'], () => false, { maxBatches: 1 });
      wokeAt = ticks();
      await until(() => ticks() > wokeAt + 5, 10_000, 'ticks after the wake');
    } finally {
      await daemon.stop();
    }
    const db = new Database(daemon.dbFile!, { readonly: true });
    try {
      const rows = db.prepare(`SELECT t.tick, t.requested + t.granted + t.denied + t.ok + t.failed + t.throttled + t.expired
        + t.latency_count + t.queue + t.in_flight AS moved FROM telemetry t JOIN keys k ON k.id = t.key_id
        WHERE k.key = 'api/low' ORDER BY t.tick`).all() as { tick: number; moved: number }[];
      const lastBusy = rows.filter((r) => r.moved > 0).at(-1)!.tick;
      const after = rows.filter((r) => r.tick > lastBusy);
      assert.ok(after.length >= 1 && after[0].tick === lastBusy + 1,
        `the tick after its last request or release, api/low writes a row of zeros: ${JSON.stringify(after.slice(0, 3))}`);
      // Later rows only where its limit moved (the allocator settling), never a stream of idle rows.
      assert.ok(after.length < HINT_MEMORY_TICKS / 2, `${after.length} rows for api/low once idle`);
      const lastTick = (db.prepare('SELECT max(tick) AS t FROM ticks').get() as { t: number }).t;
      const decisionTicks = (pool: string) => (db.prepare('SELECT tick FROM decisions WHERE pool = ? ORDER BY tick').pluck().all(pool) as number[]);
      const api = decisionTicks('api');
      const quiet = decisionTicks('quiet');
      const gap = (ts: number[]) => Math.max(...ts.slice(1).map((t, i) => t - ts[i]));
      assert.ok(api.length < lastTick - 40, `pool api slept: ${api.length} decisions in ${lastTick} ticks`);
      assert.ok(gap(quiet) > 40, `pool quiet wrote no decision while asleep (largest gap ${gap(quiet)} ticks)`);
      assert.ok(quiet.at(-1)! >= wokeAt, `and decisions again once quiet/a was used (tick ${wokeAt}): ${quiet.slice(-3)}`);
      const grantedQuiet = db.prepare(`SELECT sum(t.granted) AS g FROM telemetry t JOIN keys k ON k.id = t.key_id WHERE k.key = 'quiet/a'`).get() as { g: number };
      assert.ok(grantedQuiet.g > 0, 'the woken key\'s traffic is recorded');
    } finally {
      db.close();
    }
  });
});
