// Faults around the daemon's clients:
// (a) `kill -9` of a `tpsd start` process under load from three SDK clients
//     (failureMode 'open', 'closed', 'local'): while it is down each mode
//     answers as documented, nothing rejects unhandled, nothing throws; once
//     the daemon is back on the same port every client reconnects and gets
//     real leases again.
// (b) a client process killed (SIGKILL) while holding every concurrency slot
//     of a key: the slots stay taken after the daemon has closed the
//     connection (checked with a TTL no run reaches, so no elapsed time is
//     involved), and with a short TTL they are freed by the TTL (counted as
//     expired, seen no sooner than TTL after the grants were asked for),
//     after which the key grants `concurrency` leases again. Every wait is on
//     a condition with a generous timeout.
// Limits (10 000 connections, backpressure, idle timeout, max_connections)
// are in faults-limits.test.ts.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { connect, type FailureMode, type TpsdClient } from '../../src/client/index.ts';
import { CONNECTIONS_INDEX } from '../../src/shm/layout.ts';
import { freePort, spawnDaemon, writeConfig, type CliDaemon } from '../fixtures/cli-daemon.ts';
import { BASE_POOL, RawClient, httpGet, startTestDaemon } from '../fixtures/daemon.ts';

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
  const HOLDER = 'test/fixtures/lease-holder.ts';
  const KEY = 'api/conc';
  const pools = [{ name: 'api', capacity_tps: 1000, burst: 100,
    services: [{ name: 'conc', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 3 }] }];

  /** Spawns the lease holder (3 leases on KEY) and resolves once it holds them. */
  async function holdLeases(port: number): Promise<{ kill: () => Promise<void> }> {
    const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, `ws://127.0.0.1:${port}`, KEY, '3'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`lease holder exited with ${code}`)));
    });
    assert.equal((JSON.parse(line) as { held: number[] }).held.length, 3);
    return { kill: async () => { child.kill('SIGKILL'); await exited; } };
  }

  /** KEY's in_flight (STATUS) and leases ended by the TTL (/metrics). */
  async function leaseState(c: RawClient, port: number, id: number): Promise<{ inFlight: number; expired: number }> {
    const snap = (await c.call([3, id]))[3] as { keys: { key: string; in_flight: number }[] };
    const metrics = (await httpGet(port, '/metrics')).body;
    const expired = /^tpsd_leases_expired_total\{key="api\/conc",[^}]*\} (\d+)$/m.exec(metrics);
    assert.ok(expired, 'tpsd_leases_expired_total for api/conc');
    return { inFlight: snap.keys.find((k) => k.key === KEY)!.in_flight, expired: Number(expired[1]) };
  }

  it('its concurrency slots stay taken after the daemon has closed its connection', { timeout: 60_000 }, async () => {
    // A TTL no test run reaches, and one I/O thread: the close is handled before the next STATUS on that thread.
    const daemon = await startTestDaemon({ lease_ttl_ms: 3_600_000, io_threads: 1, pools });
    const c = await RawClient.open(daemon.port);
    const connections = () => Atomics.load(daemon.views.header, CONNECTIONS_INDEX);
    let id = 0;
    try {
      await until(() => connections() === 1, 10_000, () => 'the daemon to count the test\'s connection');
      const holder = await holdLeases(daemon.port);
      assert.deepEqual(await leaseState(c, daemon.port, ++id), { inFlight: 3, expired: 0 });
      assert.deepEqual((await c.call([1, ++id, KEY, 1, 0])).slice(2, 4), [1, 0], 'every slot is taken');

      await holder.kill();
      await until(() => connections() === 1, 20_000, () => `the daemon to close the killed client's connection (${connections()} open)`);
      assert.deepEqual(await leaseState(c, daemon.port, ++id), { inFlight: 3, expired: 0 }, 'the leases outlive the connection');
      assert.deepEqual((await c.call([1, ++id, KEY, 1, 0])).slice(2, 4), [1, 0], 'and their slots stay taken');
    } finally {
      c.close();
      await daemon.stop();
    }
  });

  it('its concurrency slots are freed by the TTL, after which the key grants `concurrency` leases again', { timeout: 60_000 }, async (t) => {
    const TTL = 1500;
    const daemon = await startTestDaemon({ lease_ttl_ms: TTL, pools });
    const c = await RawClient.open(daemon.port);
    let id = 0;
    try {
      // Before the grants: the leases cannot end earlier than this + TTL, however slow the machine.
      const beforeGrants = performance.now();
      const holder = await holdLeases(daemon.port);
      await holder.kill();
      // Polled until it holds: a lease's slot and its expiry count are two writes, a reader may fall between them.
      let state = await leaseState(c, daemon.port, ++id);
      const deadline = performance.now() + TTL + 30_000;
      while (state.inFlight !== 0 || state.expired !== 3) {
        assert.ok(performance.now() < deadline, `timed out waiting for the TTL to end all 3 leases (in_flight 0, expired 3): ${JSON.stringify(state)}`);
        await sleep(20);
        state = await leaseState(c, daemon.port, ++id);
      }
      const freedAfterMs = performance.now() - beforeGrants;
      t.diagnostic(`slots freed ${freedAfterMs.toFixed(0)} ms after the grants were asked for (lease_ttl_ms ${TTL})`);
      assert.ok(freedAfterMs >= TTL, `not freed before the TTL (${freedAfterMs.toFixed(0)} ms)`);

      const again: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await c.call([1, ++id, KEY, 1, 0]);
        assert.equal(r[2], 0, `lease ${i + 1} of 3 granted again`);
        again.push(r[3] as number);
      }
      assert.equal((await c.call([1, ++id, KEY, 1, 0]))[2], 1, 'and no more than 3');
      for (const lease of again) assert.equal((await c.call([2, ++id, lease, 0, 1]))[2], 0);
      assert.deepEqual(await leaseState(c, daemon.port, ++id), { inFlight: 0, expired: 3 });
    } finally {
      c.close();
      await daemon.stop();
    }
  });
});
