// The daemon's defences against clients that hold resources:
// (c) 10 000 idle connections held by a child process against a `tpsd start`
//     child (both with a raised `ulimit -n`): the daemon accepts them all and
//     still serves; its RSS is reported (no timing or memory assertions).
//     Skipped, visibly, when the hard fd limit cannot reach what it needs.
// (d) a client that sends without reading its replies is disconnected (1008)
//     once limits.max_backpressure_bytes pile up; a client that neither sends
//     nor answers pings is closed after limits.idle_timeout_s (8 s, the
//     minimum; a client that answers pings stays); limits.max_connections
//     refuses the next upgrade with 503 until a connection closes.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { rssKiB, spawnDaemon, writeConfig } from '../fixtures/cli-daemon.ts';
import { BASE_POOL, RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { rawUpgrade } from '../fixtures/raw-ws.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const CONNECTIONS = 10_000;
/** Per process: the connections plus the runtime's own descriptors. */
const NOFILE = CONNECTIONS + 2048;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a child can run with `ulimit -n n` (the hard limit, or root raising it). */
function canRaiseNofile(n: number): boolean {
  return spawnSync('bash', ['-c', `ulimit -n ${n}`]).status === 0;
}

/** GET a path on a fresh connection closed after the reply (no keep-alive socket left behind). */
function httpText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('10 000 concurrent connections', () => {
  it(`holds ${CONNECTIONS} idle connections and still serves`, { timeout: 120_000 }, async (t) => {
    const hard = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
    if (!canRaiseNofile(NOFILE)) { t.skip(`ulimit -n ${NOFILE} not allowed (hard limit ${hard}); raise it to run this test`); return; }
    const daemon = spawnDaemon(['--config', writeConfig({ listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, pools: [BASE_POOL] })], { nofile: NOFILE });
    const port = await daemon.port;
    const pid = daemon.child.pid!;
    const holder = spawn('bash', ['-c', `ulimit -n ${NOFILE} && exec "$@"`, 'bash',
      process.execPath, '--import', 'tsx', 'test/fixtures/conn-holder.ts', String(port), String(CONNECTIONS)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const holderExit = new Promise((resolve) => holder.once('exit', resolve));
    try {
      const idleRss = await rssKiB(pid);
      const t0 = Date.now();
      const final = await new Promise<{ open: number; failed: number; closed: number }>((resolve, reject) => {
        createInterface({ input: holder.stdout! }).on('line', (line) => {
          const p = JSON.parse(line) as { open: number; failed: number; closed: number; done: boolean };
          if (p.done) resolve(p);
        });
        holder.once('exit', (code) => reject(new Error(`connection holder exited with ${code}`)));
      });
      t.diagnostic(`${final.open} connections opened in ${((Date.now() - t0) / 1000).toFixed(1)} s (${final.failed} failed)`);
      assert.deepEqual({ open: final.open, failed: final.failed, closed: final.closed }, { open: CONNECTIONS, failed: 0, closed: 0 });

      const metrics = await httpText(port, '/metrics');
      const gauge = Number(/^tpsd_connections (\d+)/m.exec(metrics.body)?.[1]);
      assert.ok(gauge >= CONNECTIONS, `tpsd_connections ${gauge}`);
      const c = await RawClient.open(port);
      assert.deepEqual((await c.call([0, 1, { v: 1 }])).slice(0, 3), [0, 1, 0]);
      assert.equal((await c.call([1, 2, 'api/low', 1, 0]))[2], 0);
      assert.equal((await c.call([3, 3]))[2], 0);
      c.close();
      assert.equal((await httpText(port, '/healthz')).status, 200);
      const rss = await rssKiB(pid);
      t.diagnostic(`daemon RSS: ${idleRss} KiB before, ${rss} KiB with ${gauge} connections ` +
        `(~${(((rss ?? 0) - (idleRss ?? 0)) / CONNECTIONS).toFixed(1)} KiB per connection)`);
    } finally {
      holder.kill('SIGKILL');
      await holderExit;
      daemon.child.kill('SIGTERM');
    }
    assert.equal((await daemon.exit).code, 0, 'drains and exits 0 after the connections dropped');
  });
});

describe('connection limits', () => {
  it('disconnects a client that does not read its replies (1008), and keeps serving others', async () => {
    const daemon = await startTestDaemon({ limits: { max_backpressure_bytes: 64 * 1024 } });
    try {
      const c = await RawClient.open(daemon.port);
      const socket = (c.ws as unknown as { _socket: Socket })._socket;
      socket.pause(); // keep sending, stop reading: replies pile up in the daemon
      const statuses = Array.from({ length: 50 }, (_, i) => [3, i + 1]);
      for (let i = 0; i < 400 && c.closeCode === null; i++) c.send(...statuses);
      await sleep(200);
      socket.resume();
      assert.equal(await c.closed(10_000), 1008);
      const other = await RawClient.open(daemon.port);
      assert.equal((await other.call([1, 1, 'api/low', 1, 0]))[2], 0);
      other.close();
    } finally {
      await daemon.stop();
    }
  });

  it('closes a connection idle for limits.idle_timeout_s that does not answer pings; one that does stays', { timeout: 40_000 }, async (t) => {
    const IDLE_S = 8; // uWS's minimum
    const daemon = await startTestDaemon({ limits: { idle_timeout_s: IDLE_S } });
    try {
      const live = await RawClient.open(daemon.port); // the ws package answers pings
      const silent = await rawUpgrade(daemon.port);
      const t0 = Date.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still open after ${3 * IDLE_S} s`)), 3 * IDLE_S * 1000);
        silent.once('close', () => { clearTimeout(timer); resolve(); });
      });
      const s = (Date.now() - t0) / 1000;
      t.diagnostic(`silent connection closed after ${s.toFixed(1)} s (idle_timeout_s ${IDLE_S})`);
      assert.ok(s >= IDLE_S / 2, `closed by the idle timer, not at once (${s.toFixed(1)} s)`);
      assert.equal(live.closeCode, null, 'the connection that answers pings is still open');
      assert.equal((await live.call([1, 1, 'api/low', 1, 0]))[2], 0);
      live.close();
    } finally {
      await daemon.stop();
    }
  });

  it('refuses the upgrade beyond limits.max_connections with 503, and accepts again after a close', async () => {
    const daemon = await startTestDaemon({ limits: { max_connections: 3 } });
    try {
      const held = [await RawClient.open(daemon.port), await RawClient.open(daemon.port), await RawClient.open(daemon.port)];
      await assert.rejects(RawClient.open(daemon.port), /503/);
      held[0].close();
      await held[0].closed();
      let again: RawClient | null = null;
      for (let i = 0; i < 100 && again === null; i++) {
        again = await RawClient.open(daemon.port).catch(() => null);
        if (again === null) await sleep(20);
      }
      assert.ok(again, 'a connection is accepted once one has closed');
      assert.equal((await again.call([1, 1, 'api/low', 1, 0]))[2], 0);
      for (const c of [...held.slice(1), again]) c.close();
    } finally {
      await daemon.stop();
    }
  });
});
