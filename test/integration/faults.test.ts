// Faults around the daemon's clients:
// (a) `kill -9` of a `tpsd start` process under load from three SDK clients
//     (failureMode 'open', 'closed', 'local'): while it is down each mode
//     answers as documented, nothing rejects unhandled, nothing throws; once
//     the daemon is back on the same port every client reconnects and gets
//     real leases again.
// (b) a client process killed (SIGKILL) while holding every concurrency slot
//     of a key: the slots stay taken after the connection drops and are freed
//     at lease_ttl_ms, after which the key grants `concurrency` leases again.
// Limits (10 000 connections, backpressure, idle timeout, max_connections)
// are in faults-limits.test.ts.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { connect, type FailureMode, type TpsdClient } from '../../src/client/index.ts';
import { freePort, spawnDaemon, writeConfig, type CliDaemon } from '../fixtures/cli-daemon.ts';
import { BASE_POOL, RawClient, startTestDaemon } from '../fixtures/daemon.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what()}`);
    await sleep(10);
  }
}

type Phase = 'up' | 'down' | 'back';
interface Tally { real: number; localGranted: number; localDenied: number; denied: number; errors: string[] }

describe('the daemon killed under load', () => {
  it('kill -9: open/closed/local engage while it is down; clients reconnect to the restarted daemon', { timeout: 60_000 }, async (t) => {
    const port = await freePort();
    const file = writeConfig({ listen: { host: '127.0.0.1', port }, io_threads: 2, tick_ms: 100, pools: [BASE_POOL] });
    let daemon: CliDaemon = spawnDaemon(['--config', file, '--port', String(port)]);
    assert.equal(await daemon.port, port);

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    const modes: FailureMode[] = ['open', 'closed', 'local'];
    const LOCAL_TPS = 20;
    const clients: TpsdClient[] = await Promise.all(modes.map((failureMode) => connect(`ws://127.0.0.1:${port}`, {
      name: `fault-${failureMode}`, failureMode, timeoutMs: 2000,
      localRate: failureMode === 'local' ? { tps: LOCAL_TPS, burst: 2 } : undefined,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    })));
    let phase: Phase = 'up';
    const tally = modes.map(() => ({ up: tallyOf(), down: tallyOf(), back: tallyOf() }));
    let running = true;
    const loops = clients.map(async (c, i) => {
      while (running) {
        const t = tally[i][phase];
        try {
          const p = await c.acquire('api/low', 1, { waitMs: 0 });
          if (p.local) { if (p.granted) t.localGranted++; else t.localDenied++; }
          else if (p.granted) { t.real++; c.release(p.lease, 0, 50); }
          else t.denied++;
        } catch (err) {
          t.errors.push(String(err));
        }
        await sleep(2);
      }
    });
    const show = () => JSON.stringify(Object.fromEntries(modes.map((m, i) => [m, tally[i]])));
    try {
      await until(() => tally.every((x) => x.up.real >= 20), 10_000, () => `real leases before the kill: ${show()}`);

      phase = 'down';
      const downAt = Date.now();
      daemon.child.kill('SIGKILL');
      assert.equal((await daemon.exit).signal, 'SIGKILL');
      await until(() => clients.every((c) => !c.connected), 3000, () => 'every client to see the daemon gone');
      await until(() => tally[0].down.localGranted >= 50 && tally[1].down.localDenied >= 50 &&
        tally[2].down.localGranted >= 5 && tally[2].down.localDenied >= 50, 10_000, () => `failure modes while down: ${show()}`);
      const downS = (Date.now() - downAt) / 1000;
      assert.equal(tally[0].down.localDenied, 0, "'open' never denies");
      assert.equal(tally[1].down.localGranted, 0, "'closed' never grants");
      assert.ok(tally[2].down.localGranted <= LOCAL_TPS * downS + 2 + 2, `'local' keeps to ${LOCAL_TPS}/s: ${tally[2].down.localGranted} in ${downS.toFixed(1)} s`);

      phase = 'back';
      const restartAt = Date.now();
      daemon = spawnDaemon(['--config', file, '--port', String(port)]);
      assert.equal(await daemon.port, port, 'restarted on the same port');
      const listeningAfter = Date.now() - restartAt;
      await until(() => clients.every((c) => c.connected), 5000, () => 'every client to reconnect');
      t.diagnostic(`restart: listening after ${listeningAfter} ms, every client reconnected after ${Date.now() - restartAt} ms`);
      await until(() => tally.every((x) => x.back.real >= 20), 10_000, () => `real leases after the restart: ${show()}`);
      running = false;
      await Promise.all(loops);
      for (const [i, m] of modes.entries()) {
        for (const p of ['up', 'down', 'back'] as const) assert.deepEqual(tally[i][p].errors, [], `${m}: no acquire rejected while ${p}`);
      }
      assert.deepEqual(unhandled, [], 'no unhandled rejection');
      t.diagnostic(show());
    } finally {
      running = false;
      process.off('unhandledRejection', onUnhandled);
      await Promise.all(clients.map((c) => c.close()));
      daemon.child.kill('SIGTERM');
    }
    assert.equal((await daemon.exit).code, 0, 'the restarted daemon drains and exits 0');
  });
});

function tallyOf(): Tally {
  return { real: 0, localGranted: 0, localDenied: 0, denied: 0, errors: [] };
}

describe('a client killed while holding leases', () => {
  it('its concurrency slots stay taken after the disconnect and are freed at lease_ttl_ms', { timeout: 30_000 }, async (t) => {
    const TTL = 1500;
    const daemon = await startTestDaemon({
      lease_ttl_ms: TTL,
      pools: [{ name: 'api', capacity_tps: 1000, burst: 100,
        services: [{ name: 'conc', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 3 }] }],
    });
    const c = await RawClient.open(daemon.port);
    let id = 0;
    const inFlight = async () => ((await c.call([3, ++id]))[3] as { keys: { key: string; in_flight: number }[] })
      .keys.find((k) => k.key === 'api/conc')!.in_flight;
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/lease-holder.ts', `ws://127.0.0.1:${daemon.port}`, 'api/conc', '3'],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`lease holder exited with ${code}`)));
      });
      const heldAt = performance.now();
      assert.equal((JSON.parse(line) as { held: number[] }).held.length, 3);
      assert.equal(await inFlight(), 3);
      assert.deepEqual((await c.call([1, ++id, 'api/conc', 1, 0])).slice(2, 4), [1, 0], 'every slot is taken');

      child.kill('SIGKILL');
      await exited;
      await sleep(300);
      if (performance.now() - heldAt < TTL - 200) assert.equal(await inFlight(), 3, 'the leases outlive the connection');

      while (await inFlight() > 0) {
        assert.ok(performance.now() - heldAt < TTL + 3000, 'slots freed within the TTL (+ the expiry sweep)');
        await sleep(20);
      }
      const freedAfter = performance.now() - heldAt;
      t.diagnostic(`slots freed ${freedAfter.toFixed(0)} ms after the grants (lease_ttl_ms ${TTL})`);
      assert.ok(freedAfter >= TTL - 250, `not freed before the TTL (${freedAfter.toFixed(0)} ms)`);

      const again: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await c.call([1, ++id, 'api/conc', 1, 0]);
        assert.equal(r[2], 0, `lease ${i + 1} of 3 granted again`);
        again.push(r[3] as number);
      }
      assert.equal((await c.call([1, ++id, 'api/conc', 1, 0]))[2], 1, 'and no more than 3');
      for (const lease of again) assert.equal((await c.call([2, ++id, lease, 0, 1]))[2], 0);
      assert.equal(await inFlight(), 0);
    } finally {
      c.close();
      await daemon.stop();
    }
  });
});
