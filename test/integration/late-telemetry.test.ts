// Late releases (latency past the pool's upstream.slo_ms) in the telemetry
// database and in `tpsd history`: a real daemon on port 0 with a real SQLite
// file; a client releases with a fixed list of latencies above and below the
// SLO (a timeout among them), on an endpoint and on its service. After stop
// (every accepted row written), the rows' `late` sums are exact on the
// endpoint, the service and the pool, next to their latency_count; `tpsd
// history` shows the late share in text and JSON (and CSV's late_share).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { RawClient, acquireAndRelease, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { runCli } from '../fixtures/telemetry.ts';

const SLO_MS = 50;
const POOLS = [
  { name: 'api', capacity_tps: 5000, burst: 500, upstream: { slo_ms: SLO_MS, timeout_ms: 1000 },
    services: [{ name: 'svc', priority: 'HIGH', max_tps: 5000, burst: 500, endpoints: [{ name: 'ep', max_tps: 5000, burst: 500 }] }] },
];
/** [latency ms, outcome]: 3 past 50 ms (a timeout at the caller's deadline and a failure among them), 5 within it (50 exactly is not late). */
const ANSWERS: [number, number][] = [[10, 0], [49, 0], [50, 0], [51, 0], [20, 0], [30, 2], [1000, 3], [75, 1]];
const LATE = 3;

describe('late releases in telemetry and history', () => {
  it('rows count the late releases exactly on the key, service and pool; history shows the late share', async () => {
    const dataDir = tempDir();
    const d = await startTestDaemon({ pools: POOLS, data_dir: dataDir, policy: { mode: 'fair' } });
    const c = await RawClient.open(d.port);
    try {
      await acquireAndRelease(c, 'api/svc/ep', ANSWERS);
      await acquireAndRelease(c, 'api/svc', ANSWERS);
    } finally {
      c.close();
      await d.stop();
    }
    const db = new Database(d.dbFile!, { readonly: true });
    const sums = (key: string) => db.prepare(`SELECT sum(late) AS late, sum(latency_count) AS n FROM telemetry t JOIN keys k ON k.id = t.key_id
      WHERE k.key = ?`).get(key) as { late: number; n: number };
    try {
      assert.deepEqual(sums('api/svc/ep'), { late: LATE, n: ANSWERS.length }, 'the endpoint: its own releases');
      assert.deepEqual(sums('api/svc'), { late: 2 * LATE, n: 2 * ANSWERS.length }, 'the service: its endpoint\'s and its own');
      assert.deepEqual(sums('api'), { late: 2 * LATE, n: 2 * ANSWERS.length }, 'the pool: all of them');
    } finally {
      db.close();
    }

    const share = LATE / ANSWERS.length;
    const text = await runCli(['history', 'api/svc', '--data', dataDir, '--since', '10m']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^late % +[▁▂▃▄▅▆▇█ ]+ +[\d.-]+ +[\d.-]+ +[\d.-]+$/m, 'a late-share sparkline');
    assert.match(text.stdout, new RegExp(`^late: ${2 * LATE} of ${2 * ANSWERS.length} releases with a latency past slo_ms \\(${+(share * 100).toFixed(1)} %\\)$`, 'm'));

    const json = await runCli(['history', 'api/svc', '--data', dataDir, '--since', '10m', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { late: { late: number; latencyCount: number; share: number };
      points: { late: number; latencyCount: number; lateShare: number | null }[] };
    assert.deepEqual(out.late, { late: 2 * LATE, latencyCount: 2 * ANSWERS.length, share });
    assert.equal(out.points.reduce((a, p) => a + p.late, 0), 2 * LATE);
    for (const p of out.points) assert.equal(p.lateShare, p.latencyCount > 0 ? p.late / p.latencyCount : null);

    const csv = await runCli(['history', 'api/svc', '--data', dataDir, '--since', '10m', '--csv']);
    const lines = csv.stdout.trim().split('\n');
    assert.ok(lines[0].endsWith(',late_share'), lines[0]);
  });
});
