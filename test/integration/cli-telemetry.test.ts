// The operator verbs as processes against a real daemon and its database:
// `tpsd status`, `limits`, `history` (sparklines, CSV, PNG), `decisions`,
// `recommend`; their output, --help and exit codes.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { httpGet, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { countColor, parsePng } from '../fixtures/png.ts';
import { runCli, runLoad, sleep, until } from '../fixtures/telemetry.ts';

describe('operator verbs', () => {
  let daemon: Daemon;
  let dataDir: string;
  let url: string;
  before(async () => {
    dataDir = tempDir();
    daemon = await startTestDaemon({ data_dir: dataDir, policy: { mode: 'fair' } });
    url = `ws://127.0.0.1:${daemon.port}`;
    let stop = false;
    // Upstream 429s on api/low only: api/crit keeps the 429-free stretch `recommend` looks for.
    let lowGrants = 0;
    const load = runLoad(daemon.port, ['api/low', 'api/crit'], () => stop, { upstream: (key) => key !== 'api/low' || ++lowGrants % 25 !== 0 });
    await sleep(1500);
    stop = true;
    await load;
    await sleep(300);
  });
  after(async () => { await daemon.stop(); });

  it('status prints a row per key with priority, limit and a utilisation bar; --json, --watch; exit 3 when unreachable', async () => {
    const r = await runCli(['status', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], new RegExp(`^tpsd/0\\.1\\.0 at ${url}  mode fallback  tick \\d+ \\(every 100 ms\\)  up \\d`));
    assert.match(r.stdout, /^POOL +CAPACITY +EFFECTIVE +MODE +TPS +DEMAND +UTIL$/m);
    // The effective capacity moves with the load's 429s; below 100 it shows a decimal.
    assert.match(r.stdout, /^api +1000 +[\d.]+ +fallback /m);
    assert.match(r.stdout, /^KEY +PRIO +LIMIT +TPS +DEMAND +DENIED +429\/S +QUEUE +INFL +UTIL$/m);
    assert.match(r.stdout, /^ {2}api\/crit +CRITICAL +\d/m);
    assert.match(r.stdout, /^ {4}api\/crit\/slow +CRITICAL +5 +/m, 'endpoint indented, its 5 tps limit shown');
    assert.match(r.stdout, /^ {2}api\/low +LOW +[\d.k]+ .*[█░]{10} +\d+%$/m);

    const j = await runCli(['status', '--url', url, '--json']);
    const snap = JSON.parse(j.stdout) as { keys: { key: string }[] };
    assert.deepEqual(snap.keys.map((k) => k.key), ['api', 'api/crit', 'api/crit/slow', 'api/low']);

    const w = await runCli(['status', '--url', url, '--watch', '--count', '2', '--interval', '0.2']);
    assert.equal(w.code, 0);
    assert.equal(w.stdout.match(/^tpsd\/0\.1\.0 at /gm)?.length, 2, 'two snapshots');

    const down = await runCli(['status', '--url', 'ws://127.0.0.1:1', '--timeout', '1']);
    assert.equal(down.code, 3);
    assert.match(down.stderr, /ws:\/\/127\.0\.0\.1:1/);
  });

  it('limits set/get/rm change live limits, with exit codes 0, 2, 3, 4, 5', async () => {
    const set = await runCli(['limits', 'set', 'api/low', '--max-tps', '40', '--url', url]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^max_tps +40 +1000 +40 \(set .* by tpsd limits \(io-\d conn \d+\)\)$/m);
    assert.match(set.stdout, /persisted \(kept across restarts\)/);
    const all = await runCli(['limits', 'get', '--url', url]);
    assert.match(all.stdout, /^api\/low +service +0 +40 +LOW +max_tps$/m);
    assert.equal((await runCli(['limits', 'get', 'api/nope', '--url', url])).code, 4);
    const bad = await runCli(['limits', 'set', 'api/low', '--min-tps', '5000', '--url', url]);
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /BAD_REQUEST \(16\): min_tps 5000 above max_tps 40/);
    assert.equal((await runCli(['limits', 'set', 'api/low', '--url', url])).code, 2);
    assert.equal((await runCli(['limits', 'get', '--url', 'ws://127.0.0.1:1', '--timeout', '1'])).code, 3);
    const rm = await runCli(['limits', 'rm', 'api/low', '--url', url, '--json']);
    assert.equal(rm.code, 0);
    assert.deepEqual(JSON.parse(rm.stdout).overrides, {});
  });

  it('history shows sparklines, every stored row as CSV, and a PNG of the requested size', async () => {
    const r = await runCli(['history', 'api/low', '--data', dataDir, '--since', '10m'], { TPSD_PROGRESS: '1' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^api\/low \(service in pool api\): \d+ per-tick rows, 0 1-minute rows/);
    for (const name of ['limit', 'demand', 'granted', 'denied', '429s', 'queue', 'in-flight']) {
      assert.match(r.stdout, new RegExp(`^${name} +[▁▂▃▄▅▆▇█ ]+ +[\\d.k-]+ +[\\d.k-]+ +[\\d.k-]+$`, 'm'), name);
    }
    assert.match(r.stderr, /tpsd history: reading \d+ rows/, 'progress on stderr');

    const csv = await runCli(['history', 'api/low', '--data', dataDir, '--csv']);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines[0], 'time,ts_ms,span_ms,source,demand_tps,granted_tps,denied_tps,throttled_tps,failed_tps,latency_avg_us,queue_max,in_flight_max,limit_tps');
    const db = new Database(daemon.dbFile!, { readonly: true });
    const stored = db.prepare("SELECT count(*) FROM telemetry t JOIN keys k ON k.id = t.key_id WHERE k.key = 'api/low'").pluck().get() as number;
    db.close();
    assert.ok(lines.length - 1 >= stored - 2 && lines.length - 1 <= stored, `${lines.length - 1} CSV rows for ${stored} stored`);
    assert.ok(lines.slice(1).some((l) => Number(l.split(',')[5]) > 0), 'some rows have grants');

    const file = join(tempDir(), 'h.png');
    const png = await runCli(['history', 'api/low', '--data', dataDir, '--png', file, '--width', '640', '--height', '300']);
    assert.equal(png.code, 0, png.stderr);
    const p = parsePng(readFileSync(file));
    assert.deepEqual([p.width, p.height], [640, 300]);
    for (const c of [[214, 39, 40], [31, 119, 180], [44, 160, 44]]) assert.ok(countColor(p, c) > 20, `series ${c} drawn`);

    assert.equal((await runCli(['history', 'api/nope', '--data', dataDir])).code, 4);
    assert.equal((await runCli(['history', 'api/low', '--data', join(dataDir, 'missing')])).code, 6);
  });

  it('decisions shows per-tick decisions and limit changes; recommend gives 85/95/99 % with evidence and a verdict', async () => {
    const d = await runCli(['decisions', '--data', dataDir, '--limit', '3']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout.match(/ tick \d+ {2}api {2}mode fair {2}policy fair {2}capacity /g)?.length, 3);
    assert.match(d.stdout, /LIMIT SET {2}api\/low {2}max_tps 1000 -> 40 {2}by tpsd limits/);
    assert.match(d.stdout, /LIMIT RM {2}api\/low {2}max_tps 40 -> 1000/);
    // A row carries the services that changed since the pool's last one (the first carries every service): the newest
    // row may carry none once the load stopped, so every row of the window is read.
    const v = await runCli(['decisions', '--data', dataDir, '--limit', '0', '--kind', 'decisions', '--verbose']);
    assert.match(v.stdout, /^ {4}api\/low: [\d.k]+ -> [\d.k]+ \(proposed [\d.k]+\)/m);

    const r = await runCli(['recommend', 'api/crit', '--data', dataDir, '--sustain', '1s', '--json']);
    assert.equal(r.code, 0, r.stderr);
    type Rec = { key: string; recommendation: { verdict: string; sustainedTps: number | null; conservativeTps: number | null;
      maximumTps: number | null; applyTps: number | null; evidence: { samples: number; busiestTps: number } } };
    const [rec] = JSON.parse(r.stdout) as Rec[];
    assert.equal(rec.key, 'api/crit');
    // api/crit drew no 429s: whether the load pressed its limit or not, no change is suggested.
    assert.equal(rec.recommendation.applyTps, null);
    assert.ok(rec.recommendation.evidence.busiestTps > 0);
    assert.ok(rec.recommendation.evidence.samples > 5);
    if (rec.recommendation.verdict === 'upstream-limit-not-seen') {
      const s = rec.recommendation.sustainedTps!;
      assert.ok(s > 0);
      assert.ok(Math.abs(rec.recommendation.conservativeTps! - 0.85 * s) < 1e-9 && Math.abs(rec.recommendation.maximumTps! - 0.99 * s) < 1e-9);
    } else {
      assert.equal(rec.recommendation.verdict, 'demand-limited');
      assert.equal(rec.recommendation.sustainedTps, null);
    }
    const text = await runCli(['recommend', '--data', dataDir, '--sustain', '1s']);
    assert.match(text.stdout, /^KEY +SUSTAINED +CONSERVATIVE 85% +OPTIMAL 95% +MAXIMUM 99% +SAMPLES 429-FREE\/ALL +VERDICT$/m);
    assert.match(text.stdout, /^ {2}api\/crit: window .*no change suggested$/m);
    assert.doesNotMatch(text.stdout, /apply: tpsd limits set api\/crit/);
    assert.equal((await runCli(['recommend', '--data', dataDir, '--since', '1ms'])).code, 6);
  });

  it('every verb answers --help with exit 0 and wrong usage with exit 2', async () => {
    const verbs = ['status', 'limits', 'history', 'decisions', 'recommend'];
    const top = await runCli(['--help']);
    for (const v of verbs) assert.match(top.stdout, new RegExp(`^ {2}${v} `, 'm'));
    for (const v of verbs) {
      const h = await runCli([v, '--help']);
      assert.equal(h.code, 0);
      assert.match(h.stdout, new RegExp(`^Usage: tpsd ${v} `));
      assert.match(h.stdout, /Exit status: 0 ok/);
    }
    const wrong = await runCli(['history', 'api/low', '--sinse', '1h']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /did you mean --since/);
  });

  it('the daemon keeps serving /v1/status and writing ticks while the CLI reads its database', async () => {
    const ticksWritten = (): number => {
      const db = new Database(daemon.dbFile!, { readonly: true });
      try { return db.prepare('SELECT max(tick) FROM ticks').pluck().get() as number; } finally { db.close(); }
    };
    const status = async (): Promise<number> => {
      const r = await httpGet(daemon.port, '/v1/status');
      assert.equal(r.status, 200, r.body);
      return (JSON.parse(r.body) as { tick: number }).tick;
    };
    let exited = false;
    const cli = runCli(['history', 'api/low', '--data', dataDir, '--csv']).finally(() => { exited = true; });
    // /v1/status polled from the CLI's start to its exit (at least once while it runs).
    const seen: number[] = [];
    do {
      seen.push(await status());
      await sleep(20);
    } while (!exited);
    const r = await cli;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.trim().split('\n').length > 1, 'the CLI read rows');
    seen.forEach((tick, i) => assert.ok(i === 0 || tick >= seen[i - 1], `ticks never go back: ${seen.join(' ')}`));
    // And the daemon went on ticking and writing: a tick after the last one seen reaches the database.
    const last = seen.at(-1)!;
    await until(async () => await status() > last && ticksWritten() > last, 10_000, `tick ${last + 1} served and written`);
    const metrics = (await httpGet(daemon.port, '/metrics')).body;
    assert.match(metrics, /^tpsd_sqlite_errors_total 0$/m, 'no telemetry write failed');
  });
});
