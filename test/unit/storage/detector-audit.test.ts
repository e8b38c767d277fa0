// The surge and abuse defence's audit rows (control/tenant-guard.ts events,
// TickBatch.audits): written in the tick's transaction into limit_audit, read
// by `tpsd decisions` as limit changes, and deleted with the decisions after
// retention_decisions_h (an attack of many tenants cannot grow the database
// without bound); operators' limit changes are kept.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { openDatabase } from '../../../src/storage/db.ts';
import { OverrideStore, readAudit } from '../../../src/storage/overrides.ts';
import { Retention } from '../../../src/storage/retention.ts';
import { DETECTOR_ACTOR } from '../../../src/storage/overrides.ts';
import { TelemetryStore, type TickBatch } from '../../../src/storage/telemetry-store.ts';
import { tempDir } from '../../fixtures/daemon.ts';

const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW', max_tps: 50 }] }] }, {});
const keys = KeyIndex.fromConfig(config);
const H = 3_600_000;

function tick(tsMs: number, n: number, tenant: string): TickBatch {
  return {
    tsMs, tick: n, dtMs: 1000, durationMs: 1, mode: 'fair', model: 'none', count: 0, buckets: new Int32Array(0), values: new Float64Array(0),
    decisions: [], decisionValues: new Float64Array(0),
    audits: [{ action: 'defend', key: `p/s/${tenant}`, field: 'rate_tps', oldValue: '"20"', newValue: '"2"', actor: DETECTOR_ACTOR,
      detail: '{"tier":"p/s/~std","rate_tps":600}' }],
  };
}

describe('detector audit rows', () => {
  it('are written with the tick and deleted after retention_decisions_h; operators\' changes are kept', () => {
    const db = openDatabase(tempDir());
    const store = new TelemetryStore(db, keys);
    const now = Date.UTC(2030, 5, 1);
    assert.equal(store.writeTick(tick(now - 50 * H, 1, 'old')), 2, 'the tick row and the audit row');
    store.writeTick(tick(now - H, 2, 'new'));
    new OverrideStore(db).set('p/s', [{ field: 'max_tps', old: 50, value: 20 }], 'test', now - 60 * H);
    const seen = readAudit(db, now - 100 * H, now, { pool: null, limit: 0 }).map((a) => a.key).sort();
    assert.deepEqual(seen, ['p/s', 'p/s/new', 'p/s/old']);
    const r = new Retention(db, { retention_raw_h: 24, retention_rollup_d: 30, retention_decisions_h: 48 }).runPass(now, 10_000);
    assert.equal(r.done, true);
    const left = db.prepare('SELECT key, actor FROM limit_audit ORDER BY id').all();
    assert.deepEqual(left, [{ key: 'p/s/new', actor: DETECTOR_ACTOR }, { key: 'p/s', actor: 'test' }]);
    db.close();
  });
});
