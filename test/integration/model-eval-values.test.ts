// `tpsd model eval` on a daemon's own history with tiers of different
// value_per_request (issue 16): a real daemon with a tenant service whose
// two tiers of one class are worth 5 and 1 serves two tenants, one in each,
// and records it in SQLite; model eval then replays that database. The
// replay's rows name the tiers' values, and its rewards differ from those of
// the same database evaluated under the same config without the values (the
// only difference between the two runs), so the values reached the reward
// and the simulated tier split. Real daemon, real CLI processes; the daemon
// is stopped (its telemetry flushed) before the verbs read the database, so
// both read the same rows.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { DEFAULT_MODEL_PATH } from '../../src/ppo/model.ts';
import { RawClient, startTestDaemon, tempDir } from '../fixtures/daemon.ts';
import { runCli, sleep } from '../fixtures/telemetry.ts';

function pools(values: boolean) {
  return [{
    name: 'api', capacity_tps: 1000, burst: 100,
    services: [{ name: 'v1', priority: 'HIGH', max_tps: 300, burst: 60, tenants: {
      tiers: [
        { name: 'basic', priority: 'HIGH', tps: 1000, ...(values ? { value_per_request: 1 } : {}) },
        { name: 'gold', priority: 'HIGH', tps: 1000, ...(values ? { value_per_request: 5 } : {}) },
      ], default_tier: 'basic', max: 10, idle_s: 600 } }],
  }];
}

type Row = { scenario: string; fair: number; current: number; candidate: number; values?: Record<string, number> };

describe('model eval scores a replay of valued tiers with their values', () => {
  let daemon: Daemon;
  let dir: string;
  let window: string[];
  const configOf = (values: boolean): string => {
    const file = join(dir, values ? 'valued.json' : 'plain.json');
    writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' }, tick_ms: 100,
      data_dir: join(dir, 'data'), policy: { mode: 'fair' }, pools: pools(values) }));
    return file;
  };

  before(async () => {
    dir = tempDir();
    daemon = await startTestDaemon({ tick_ms: 100, data_dir: join(dir, 'data'), policy: { mode: 'fair' }, pools: pools(true) });
    const since = new Date(Date.now() - 1000).toISOString();
    const [c, admin] = await Promise.all([RawClient.open(daemon.port), RawClient.open(daemon.port)]);
    assert.equal((await admin.call([17, 1, 'set', 'api/v1/midas', { tier: 'gold' }]))[2], 0);
    // Both tenants ask 20 tokens every 50 ms (400/s each, more than the service's 300), 60 rounds.
    let id = 1;
    for (let round = 0; round < 60; round++) {
      const replies = await Promise.all(['midas', 'joe'].flatMap((t) => Array.from({ length: 20 }, () => c.call([1, id++, `api/v1/${t}`, 1, 0]))));
      const releases = replies.filter((r) => r[2] === 0).map((r) => [2, 0, r[3], 0, 1000]);
      if (releases.length > 0) c.send(...releases);
      await sleep(50);
    }
    c.close();
    admin.close();
    window = ['--since', since, '--until', new Date().toISOString()];
    // Stopped (its telemetry flushed) before any verb reads the database: both evaluations read the same rows.
    await daemon.stop();
  });

  it('the replay row names the tiers\' values, and its rewards are not those of the same history without them', async () => {
    const evaluate = async (values: boolean): Promise<Row[]> => {
      const r = await runCli(['model', 'eval', DEFAULT_MODEL_PATH, '--config', configOf(values), '--json', ...window]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { rows: Row[] }).rows;
    };
    const valued = await evaluate(true);
    const plain = await evaluate(false);
    assert.equal(valued[0].scenario, 'replay-api');
    assert.deepEqual(valued[0].values, { 'api/v1/~basic': 1, 'api/v1/~gold': 5 });
    assert.ok(valued.every((row) => row.values !== undefined), 'the family variations carry the values too');
    assert.ok(plain.every((row) => row.values === undefined), JSON.stringify(plain[0]));
    assert.deepEqual(valued.map((r) => r.scenario), plain.map((r) => r.scenario));
    assert.ok(valued[0].fair !== 0 && plain[0].fair !== 0, `the replay has traffic: ${JSON.stringify([valued[0], plain[0]])}`);
    for (let i = 0; i < valued.length; i++) {
      assert.notEqual(valued[i].fair, plain[i].fair, `${valued[i].scenario}: fair's reward is computed with the values`);
    }
  });
});
