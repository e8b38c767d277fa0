// /readyz says whether the daemon can do its whole job: 503 with the reason
// while telemetry cannot be written (here: SQLite's files may not grow, the
// way a full disk looks to the writer), 200 again once writes succeed;
// /healthz (liveness) stays 200 all along. And a daemon whose mode asks for
// PPO but has no model says so: a warning at start naming the mode and the
// policy that applies, /readyz (still 200), STATUS (op 3 and /v1/status)
// and /metrics.
//
// Disk full, as root too: permissions do not stop root, so the test lowers
// the daemon process's RLIMIT_FSIZE with prlimit(1) (util-linux): its files
// cannot grow any more, writes that extend SQLite's WAL fail (EFBIG, "disk
// I/O error"), exactly what a full file system does to them; the limit is
// raised again to let writes succeed.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnDaemon, writeConfig } from '../fixtures/cli-daemon.ts';
import { BASE_POOL, RawClient, httpGet } from '../fixtures/daemon.ts';
import { runLoad, until } from '../fixtures/telemetry.ts';

function prlimitFsize(pid: number, soft: string): void {
  execFileSync('prlimit', ['--pid', String(pid), `--fsize=${soft}:`]);
}

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

describe('/readyz', () => {
  it('answers 503 with the reason while telemetry cannot be written, 200 again when it can; /healthz stays 200',
    { timeout: 120_000, skip: hasPrlimit ? false : 'prlimit (util-linux) not installed' }, async (t) => {
      const file = writeConfig({
        listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, tick_ms: 100, log: { level: 'info' },
        policy: { mode: 'fair' }, pools: [BASE_POOL],
      });
      const d = spawnDaemon(['--config', file]);
      const port = await d.port;
      const pid = d.child.pid!;
      try {
        await until(async () => (await httpGet(port, '/readyz')).status === 200, 10_000, 'ready at start');
        let stop = false;
        const load = runLoad(port, ['api/low', 'api/crit'], () => stop, { pauseMs: 5 });

        prlimitFsize(pid, '1'); // no file of the daemon may grow: the WAL cannot take the next tick
        let notReady = { status: 0, body: '' };
        await until(async () => (notReady = await httpGet(port, '/readyz')).status === 503, 20_000, '/readyz 503');
        t.diagnostic(`/readyz while writes fail: ${JSON.stringify(notReady.body)}`);
        assert.match(notReady.body, /^not ready: telemetry writes are failing \(\d+ failed so far\): .+/);
        assert.equal((await httpGet(port, '/healthz')).status, 200, 'still alive');
        const c = await RawClient.open(port);
        assert.equal((await c.call([1, 1, 'api/low', 1, 0]))[2], 0, 'still limiting');
        c.close();

        prlimitFsize(pid, 'unlimited');
        let ready = { status: 0, body: '' };
        await until(async () => (ready = await httpGet(port, '/readyz')).status === 200, 20_000, '/readyz 200 again');
        assert.equal(ready.body, 'ready\n');
        stop = true;
        await load;
      } finally {
        prlimitFsize(pid, 'unlimited');
        d.child.kill('SIGTERM');
      }
      assert.equal((await d.exit).code, 0);
    });

  it('says which policy applies when the mode asks for PPO and the model file is missing', { timeout: 60_000 }, async () => {
    const missing = join(tmpdir(), `tpsd-no-such-model-${process.pid}.json`);
    const file = writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: 100, log: { level: 'info' },
      policy: { mode: 'ppo', model: missing }, pools: [BASE_POOL],
    });
    const d = spawnDaemon(['--config', file]);
    const port = await d.port;
    try {
      const warning = d.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
        .find((j) => j.level === 40 && j.mode === 'ppo' && j.policy === 'fair');
      assert.ok(warning, `a warning at start names the mode and the policy that applies: ${d.stdout()}`);
      assert.match(warning.msg, /policy mode ppo configured, but fair applies/);
      assert.ok(warning.reason.includes(missing), `the reason names the file: ${warning.reason}`);

      const readyz = await httpGet(port, '/readyz');
      assert.equal(readyz.status, 200, 'usable: fair limits as it should');
      assert.match(readyz.body, /^ready\npolicy mode ppo configured, fair applies: no usable PPO model: .*tpsd-no-such-model-\d+\.json/);

      const c = await RawClient.open(port);
      const status = (await c.call([3, 1]))[3] as Record<string, unknown>;
      c.close();
      assert.equal(status.mode, 'ppo');
      assert.equal(status.policy_running, 'fair');
      assert.match(String(status.fallback_reason), /tpsd-no-such-model-\d+\.json/);
      const http = JSON.parse((await httpGet(port, '/v1/status')).body);
      assert.equal(http.policy_running, 'fair');
      assert.equal(http.fallback_reason, status.fallback_reason);

      const metrics = (await httpGet(port, '/metrics')).body;
      assert.match(metrics, /^tpsd_policy_running\{policy="fair"\} 1$/m);
      assert.match(metrics, /^tpsd_policy_running\{policy="ppo"\} 0$/m);
    } finally {
      d.child.kill('SIGTERM');
    }
    assert.equal((await d.exit).code, 0);
  });

  it('shows ppo running and no reason when the model loads', { timeout: 60_000 }, async () => {
    const file = writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: 100, log: { level: 'info' },
      policy: { mode: 'ppo' }, pools: [BASE_POOL],
    });
    const d = spawnDaemon(['--config', file]);
    const port = await d.port;
    try {
      assert.equal((await httpGet(port, '/readyz')).body, 'ready\n');
      const http = JSON.parse((await httpGet(port, '/v1/status')).body);
      assert.equal(http.policy_running, 'ppo');
      assert.equal(http.fallback_reason, null);
      assert.match((await httpGet(port, '/metrics')).body, /^tpsd_policy_running\{policy="ppo"\} 1$/m);
    } finally {
      d.child.kill('SIGTERM');
    }
    assert.equal((await d.exit).code, 0);
  });
});
