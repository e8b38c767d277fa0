// `tpsd start` as an operator runs it: a real process on port 0 that logs the
// port it bound, refuses a port already served, and on SIGTERM answers its
// waiters SHUTTING_DOWN and exits 0.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnDaemon } from '../fixtures/cli-daemon.ts';
import { BASE_POOL, RawClient } from '../fixtures/daemon.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

/** `tpsd start ARGS` as a child process (test/fixtures/cli-daemon.ts), exit as a code. */
function startCli(args: string[]) {
  const d = spawnDaemon(args);
  return { ...d, exit: d.exit.then((e) => e.code ?? e.signal) };
}

describe('tpsd start', () => {
  it('serves on port 0, refuses a second daemon on its port, drains on SIGTERM and exits 0', async () => {
    const dir = tempDir('tpsd-start-');
    const file = join(dir, 'tpsd.json');
    writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, data_dir: join(dir, 'data'), pools: [BASE_POOL] }));
    const d = startCli(['--config', file]);
    const port = await d.port;
    assert.ok(port > 0);

    const second = startCli(['--config', file, '--port', String(port)]);
    assert.equal(await second.exit, 1);
    assert.match(second.stderr(), /already in use/);

    const c = await RawClient.open(port);
    await c.call([1, 1, 'api/crit/slow', 2, 0]);
    c.send([1, 2, 'api/crit/slow', 2, 10_000]);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    const r = await c.reply(2);
    assert.equal(r[2], 21, 'the waiter is answered SHUTTING_DOWN');
    assert.equal(await d.exit, 0);
    assert.ok(Date.now() - t0 < 5000, 'stopped within 5 s');
    await assert.rejects(RawClient.open(port), 'no longer listening');
  });

  it('reloads the config on SIGHUP without dropping connections, keeping it when the new one is bad', async () => {
    const dir = tempDir('tpsd-hup-');
    const file = join(dir, 'tpsd.json');
    const base = { listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, tick_ms: 100, data_dir: join(dir, 'data'), pools: [BASE_POOL] };
    writeFileSync(file, JSON.stringify(base));
    const d = startCli(['--config', file]);
    const port = await d.port;
    const c = await RawClient.open(port);
    const limitOf = async (id: number, key: string) => {
      const snap = (await c.call([3, id]))[3] as { keys: { key: string; limit_tps: number; burst: number }[] };
      return snap.keys.find((k) => k.key === key)!;
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      const low = { ...BASE_POOL.services[1], max_tps: 7, burst: 3 };
      writeFileSync(file, JSON.stringify({ ...base, pools: [{ ...BASE_POOL, services: [BASE_POOL.services[0], low] }] }));
      d.child.kill('SIGHUP');
      await sleep(600);
      const after = await limitOf(1, 'api/low');
      assert.ok(after.limit_tps <= 7, `api/low limit ${after.limit_tps} after the reload`);
      assert.equal(after.burst, 3);
      assert.match(d.stdout(), /config reloaded/);

      writeFileSync(file, '{"pools": [');
      d.child.kill('SIGHUP');
      await sleep(300);
      writeFileSync(file, JSON.stringify({ ...base, io_threads: 1 }));
      d.child.kill('SIGHUP');
      await sleep(300);
      const log = d.stdout();
      assert.match(log, /config not reloaded/);
      assert.match(log, /io_threads needs a restart/);
      assert.equal((await limitOf(2, 'api/low')).burst, 3, 'the running config is kept');
      assert.equal(c.closeCode, null, 'the connection stayed open through every reload');
      assert.equal((await c.call([1, 3, 'api/crit', 1, 0]))[2], 0);
    } finally {
      c.close();
      d.child.kill('SIGTERM');
      assert.equal(await d.exit, 0, `exit after SIGTERM; stderr: ${d.stderr().slice(-2000)}; last log: ${d.stdout().slice(-1500)}`);
    }
  });

  it('refuses an invalid config with the field path and exit code 1', async () => {
    const dir = tempDir('tpsd-start-');
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ pools: [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'URGENT' }] }] }));
    const d = startCli(['--config', file]);
    assert.equal(await d.exit, 1);
    assert.match(d.stderr(), /pools\[0\]\.services\[0\]\.priority/);
  });
});
