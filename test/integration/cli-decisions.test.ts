// `tpsd decisions` on a real SQLite file written the way the daemon writes
// it (TelemetryStore.writeTick for the per-tick decisions, OverrideStore for
// the limit changes): --limit bounds every list it prints, after --pool.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/schema.ts';
import { KeyIndex } from '../../src/shm/key-index.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { OverrideStore } from '../../src/storage/overrides.ts';
import { DEC_FIELDS, TelemetryStore } from '../../src/storage/telemetry-store.ts';
import { tempDir } from '../fixtures/daemon.ts';
import { runCli } from '../fixtures/telemetry.ts';

const config = validateConfig({
  pools: [
    { name: 'a', capacity_tps: 100, services: [{ name: 's', priority: 'HIGH', max_tps: 100 }] },
    { name: 'b', capacity_tps: 100, services: [{ name: 't', priority: 'LOW', max_tps: 100 }] },
  ],
}, {});

describe('tpsd decisions --limit', () => {
  const dir = tempDir();
  before(() => {
    const db = openDatabase(dir);
    const store = new TelemetryStore(db, KeyIndex.fromConfig(config));
    const overrides = new OverrideStore(db);
    const t0 = Date.now() - 60_000;
    // 10 ticks, each with a decision for both pools; a limit change on a/s at every tick, one on b/t at ticks 8, 9.
    for (let i = 1; i <= 10; i++) {
      const decisionValues = new Float64Array(2 * DEC_FIELDS).fill(50);
      store.writeTick({
        tsMs: t0 + i * 1000, tick: i, dtMs: 1000, durationMs: 1, mode: 'fair', model: 'none', count: 0,
        buckets: new Int32Array(0), values: new Float64Array(0), decisionValues,
        decisions: ['a', 'b'].map((pool, p) => ({ pool, policy: 'fair', fallbackReason: null, capacityTps: 100, effectiveTps: 100,
          demandTps: 10, stepCap: 1.8, stepFloorTps: 5, shadowRegret: null, offset: p, services: 1 })),
      });
      overrides.set('a/s', [{ field: 'max_tps', old: 100 - i + 1, value: 100 - i }], 'test', t0 + i * 1000 + 500);
      if (i >= 8) overrides.set('b/t', [{ field: 'max_tps', old: 100, value: i }], 'test', t0 + i * 1000 + 600);
    }
    db.close();
  });

  it('prints at most N decisions and at most N limit changes, the newest', async () => {
    const r = await runCli(['decisions', '--data', dir, '--limit', '3']);
    assert.equal(r.code, 0, r.stderr);
    const decisions = r.stdout.match(/ tick (\d+) {2}(a|b) /g) ?? [];
    const changes = r.stdout.match(/LIMIT SET {2}\S+ {2}max_tps \S+ -> \d+/g) ?? [];
    assert.equal(decisions.length, 3, r.stdout);
    assert.equal(changes.length, 3, `--limit 3 bounds the limit changes too:\n${r.stdout}`);
    assert.deepEqual(changes, ['LIMIT SET  b/t  max_tps 100 -> 9', 'LIMIT SET  a/s  max_tps 91 -> 90', 'LIMIT SET  b/t  max_tps 100 -> 10'],
      'the newest three, oldest first');
    const json = JSON.parse((await runCli(['decisions', '--data', dir, '--limit', '2', '--json'])).stdout) as { type: string }[];
    assert.deepEqual(json.map((e) => e.type).sort(), ['decision', 'decision', 'limit', 'limit']);
  });

  it('applies --pool before --limit, and --limit 0 prints everything', async () => {
    const r = await runCli(['decisions', '--data', dir, '--limit', '2', '--pool', 'a', '--json']);
    const entries = JSON.parse(r.stdout) as { type: string; pool?: string; key?: string; newValue?: number }[];
    assert.deepEqual(entries.filter((e) => e.type === 'limit').map((e) => [e.key, e.newValue]), [['a/s', 91], ['a/s', 90]]);
    assert.deepEqual(entries.filter((e) => e.type === 'decision').map((e) => e.pool), ['a', 'a']);
    const all = JSON.parse((await runCli(['decisions', '--data', dir, '--limit', '0', '--json'])).stdout) as { type: string }[];
    assert.equal(all.filter((e) => e.type === 'decision').length, 20);
    assert.equal(all.filter((e) => e.type === 'limit').length, 13);
  });
});
