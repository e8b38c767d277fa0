// Learning from the daemon's own traffic, end to end: a real daemon (mode ppo,
// policy.model a file in its data_dir) serves traffic with upstream 429s and
// records it in SQLite; `tpsd train --from-history` fine-tunes the running
// model on scenario families built from that database and writes a candidate;
// `tpsd model list` and `model eval` show it against the running model;
// `tpsd model promote` refuses a worse model and promotes with --force, both
// audited in the database, and the daemon reloads the promoted file by itself
// (no SIGHUP).

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { DEFAULT_MODEL_PATH, PpoModel, type ModelFile } from '../../src/ppo/model.ts';
import { BASE_POOL, httpGet, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { FakeUpstream } from '../fixtures/fake-upstream.ts';
import { runCli, runLoad, sleep, until } from '../fixtures/telemetry.ts';

describe('train --from-history, model eval, model promote', () => {
  let daemon: Daemon;
  let dir: string;
  let configFile: string;
  let current: string;
  let shipped: string;
  let since: string;
  let window: string[];
  before(async () => {
    dir = tempDir();
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'models'), { recursive: true });
    current = join(dataDir, 'models', 'current.json');
    copyFileSync(DEFAULT_MODEL_PATH, current);
    shipped = PpoModel.load(current).version;
    const config = { tick_ms: 100, data_dir: dataDir, policy: { mode: 'ppo', model: current }, pools: [BASE_POOL] };
    configFile = join(dir, 'tpsd.json');
    writeFileSync(configFile, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' }, ...config }));
    daemon = await startTestDaemon(config);
    since = new Date(Date.now() - 1000).toISOString();
    let stop = false;
    // The upstream is a token bucket under the pool's capacity: its 429s say where its limit is, whatever the load's pace.
    const upstream = new FakeUpstream(600, 30);
    const load = runLoad(daemon.port, ['api/low', 'api/crit'], () => stop, { upstream: () => upstream.admit() });
    await sleep(2500);
    stop = true;
    await load;
    await sleep(500);
    // The window every verb reads: the history does not grow while the tests run.
    window = ['--since', since, '--until', new Date().toISOString()];
  });
  after(async () => { await daemon.stop(); });

  let candidate: string;
  let candidateVersion: string;

  it('train --from-history fine-tunes the running model on the recorded pools and writes a candidate into data_dir/models', async () => {
    const r = await runCli(['train', '--from-history', '--config', configFile, '--iterations', '2', '--episodes', '2', '--duration', '20',
      '--held-out', '2', '--eval-every', '1', '--workers', '1', ...window]);
    assert.equal(r.code, 0, r.stderr);
    candidate = r.stdout.trim();
    assert.match(candidate, /\/data\/models\/candidate-ppo-[0-9a-f]{8}\.json$/);
    const file = JSON.parse(readFileSync(candidate, 'utf8')) as ModelFile;
    candidateVersion = file.model_version;
    assert.equal(file.metadata.fine_tuned_from, shipped);
    assert.match(String(file.metadata.command), /^tpsd train --from-history --config /);
    assert.match((file.metadata.inputs_sha256 as Record<string, string>).history, /^[0-9a-f]{64}$/);
    // Chosen on held-out members of the history's family; the replay of the history is recorded apart.
    const ev = file.eval as { held_out: { reward: Record<string, unknown> }; reported: { reward: Record<string, unknown> } };
    assert.deepEqual(Object.keys(ev.held_out.reward).map((k) => k.replace(/-\d+$/, '')), ['hist-api', 'hist-api']);
    assert.deepEqual(Object.keys(ev.reported.reward), ['replay-api']);
    assert.match(r.stderr, /1 pool\(s\) \(api: 2 services/);
  });

  it('model list shows the running model and the candidate', async () => {
    const r = await runCli(['model', 'list', '--config', configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${shipped} +running \\(policy\\.model\\) `, 'm'));
    assert.match(r.stdout, new RegExp(`^${candidateVersion} +candidate .* ${shipped} +-?\\d+\\.\\d\\d% `, 'm'));
    assert.match(r.stdout, new RegExp(`last loaded by the daemon: ${shipped}`));
  });

  it('model eval replays the recorded history with fair, the running model and the candidate', async () => {
    const r = await runCli(['model', 'eval', candidate, '--config', configFile, '--json', ...window]);
    assert.equal(r.code, 0, r.stderr);
    const cmp = JSON.parse(r.stdout) as { current: string; candidate: string; rows: { scenario: string; fair: number; current: number; candidate: number }[] };
    assert.equal(cmp.current, shipped);
    assert.equal(cmp.candidate, candidateVersion);
    assert.equal(cmp.rows[0].scenario, 'replay-api');
    assert.equal(cmp.rows.length, 1 + 4, 'the replay and 4 held-out variations');
    for (const row of cmp.rows) assert.ok([row.fair, row.current, row.candidate].every(Number.isFinite), JSON.stringify(row));
    // A replay without demand scores exactly 0 for every policy. A few seconds of history may score below 0 (the
    // first ticks' 429s cost more than they serve), so the sign says nothing.
    assert.ok(cmp.rows[0].fair !== 0, `the replay has traffic: ${JSON.stringify(cmp.rows[0])}`);
  });

  it('the drift from the model\'s training distribution is in /metrics and STATUS', async () => {
    const m = await httpGet(daemon.port, '/metrics');
    assert.match(m.body, /^tpsd_model_drift \d+(\.\d+)?(e[-+]\d+)?$/m);
    assert.match(m.body, /^tpsd_model_retrain_due 0$/m, 'a few seconds of traffic are less than a window');
    const r = await runCli(['status', '--url', `ws://127.0.0.1:${daemon.port}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const drift = (JSON.parse(r.stdout) as { model_drift: { score: number; feature: string; retrain_due: boolean; ticks: number } }).model_drift;
    assert.ok(drift.ticks > 0 && drift.score > 0 && drift.feature !== '', JSON.stringify(drift));
    assert.equal(drift.retrain_due, false);
  });

  it('model promote refuses a worse model, promotes with --force; audited; the daemon reloads the file without SIGHUP', async () => {
    // A model that claims half of each service's demand and never drains a queue. PPO's actions are bounded
    // (water-filling hands out what claims leave), so whether it does worse on this short history is for the
    // evaluation to say: promote must follow its verdict, and the audit must say which it was.
    const raw = JSON.parse(readFileSync(current, 'utf8')) as ModelFile;
    raw.policy.params[raw.policy.params.length - 1] = -20; raw.policy.params[raw.policy.params.length - 2] = -20;
    const badModel = PpoModel.fromJson(raw);
    const bad = badModel.toJson({}, {}, raw.created);
    const badFile = join(dir, 'bad.json');
    writeFileSync(badFile, JSON.stringify(bad));
    const badVersion = bad.model_version;
    assert.notEqual(badVersion, shipped);
    const ev = await runCli(['model', 'eval', badFile, '--config', configFile, '--json', ...window]);
    const verdict = (JSON.parse(ev.stdout) as { mean: number }).mean;
    const first = await runCli(['model', 'promote', badFile, '--config', configFile, ...window]);
    if (verdict < 0) {
      assert.equal(first.code, 5, first.stderr);
      assert.match(first.stderr, /refused: the candidate does worse than the running model/);
      assert.equal(PpoModel.load(current).version, shipped, 'the running model file is untouched');
    } else {
      assert.equal(first.code, 0, first.stderr);
      assert.equal(PpoModel.load(current).version, badVersion);
    }

    const running = PpoModel.load(current).version;
    const ok = await runCli(['model', 'promote', candidate, '--config', configFile, '--force', ...window]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`promoted ${candidateVersion} \\(was ${running}\\)`));
    assert.equal(readFileSync(current, 'utf8'), readFileSync(candidate, 'utf8'));
    await until(() => daemon.controller.modelVersion === candidateVersion, 20_000, 'the daemon to reload the promoted model');

    const db = new Database(daemon.dbFile!, { readonly: true });
    const audit = db.prepare('SELECT action, version, previous, path, detail FROM model_audit ORDER BY id').all() as
      { action: string; version: string; previous: string; path: string; detail: string }[];
    const loaded = db.prepare('SELECT version FROM models').all() as { version: string }[];
    db.close();
    assert.deepEqual(audit.map((a) => [a.action, a.version, a.previous, a.path]),
      [[verdict < 0 ? 'refused' : 'promote', badVersion, shipped, current], ['promote', candidateVersion, running, current]]);
    assert.equal(JSON.parse(audit[1].detail).forced, true);
    assert.ok(loaded.some((m) => m.version === candidateVersion), 'the reload is in the model registry');
  });
});
