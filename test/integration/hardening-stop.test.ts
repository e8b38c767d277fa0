// SIGTERM while an I/O thread is busy: the daemon must not abort (a worker
// terminate()d, or left, while uWS still listens takes the process down with
// exit 134), must write the last tick (grants made just before it stopped
// are in the database), and exits 0. The thread is kept busy for real: one
// I/O thread, a pool of 50 keys (a STATUS reply of ~15 KB), a reply budget
// (limits.max_backpressure_bytes) high enough to let the replies be built,
// and several connections each sending a 64 KiB message of ~21 800 STATUS
// requests: seconds of work for the thread if it answered them all.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnDaemon, writeConfig } from '../fixtures/cli-daemon.ts';
import { RawClient, httpGet } from '../fixtures/daemon.ts';
import { rawUpgrade } from '../fixtures/raw-ws.ts';
import { dbTotals, runLoad } from '../fixtures/telemetry.ts';

const SERVICES = 50;
const MAX_MESSAGE_BYTES = 65_536;
const GRANTS = 2000;

function manyKeysPool() {
  return {
    name: 'big', capacity_tps: 100_000, burst: 10_000,
    services: Array.from({ length: SERVICES }, (_, i) => ({ name: `s${i}`, priority: 'MEDIUM', max_tps: 100_000, burst: 10_000 })),
  };
}

/** max_message_bytes of [3, 1] STATUS requests (3 bytes each). */
function statusStorm(): Uint8Array {
  const n = Math.floor(MAX_MESSAGE_BYTES / 3);
  const bytes = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) bytes.set([0x92, 0x03, 0x01], i * 3);
  return bytes;
}

describe('SIGTERM while an I/O thread is busy', () => {
  it('writes the last tick, never aborts, and exits 0', { timeout: 120_000 }, async (t) => {
    // tick_ms of an hour: no tick runs before the stop, so only the last tick can record the grants.
    const file = writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: 3_600_000, log: { level: 'info' },
      policy: { mode: 'fair' }, max_message_bytes: MAX_MESSAGE_BYTES,
      limits: { max_backpressure_bytes: 1024 * 1024 * 1024 }, pools: [manyKeysPool()],
    });
    const d = spawnDaemon(['--config', file]);
    const port = await d.port;

    const c = await RawClient.open(port);
    for (let b = 0; b < GRANTS / 100; b++) {
      const ids = Array.from({ length: 100 }, (_, i) => b * 100 + i + 1);
      c.send(...ids.map((id) => [1, id, 'big/s0', 1, 1000]));
      await c.reply(ids[ids.length - 1], 10_000);
    }
    assert.equal(c.replies.filter((r) => r[0] === 1 && r[2] === 0).length, GRANTS, 'every acquire granted');

    const storms = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(port)));
    for (const s of storms) s.sendBytes(statusStorm());
    // Long enough for the thread to have read the storms and be answering them (each is seconds of work).
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    const { code, signal } = await d.exit;
    t.diagnostic(`stopped in ${Date.now() - t0} ms`);
    assert.equal(signal, null, `not killed by a signal (${signal}); stderr: ${d.stderr().slice(-1500)}`);
    assert.equal(code, 0, `exit code; stderr: ${d.stderr().slice(-1500)}`);
    assert.doesNotMatch(d.stdout(), /terminat/i, 'no worker was terminated');

    const granted = dbTotals(join(file, '..', 'data', 'tpsd.db'), 'granted');
    assert.equal(granted['big/s0'], GRANTS, 'the last tick wrote every grant');
    await assert.rejects(httpGet(port, '/healthz'), 'no longer listening');
  });

  it('is not held by sockets that never close: a client that ignores the close frame, a half-sent HTTP request', { timeout: 60_000 }, async () => {
    const file = writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, log: { level: 'info' }, policy: { mode: 'fair' }, pools: [manyKeysPool()],
    });
    const d = spawnDaemon(['--config', file]);
    const port = await d.port;
    // Several of each, so every I/O thread is likely to hold some (the kernel spreads connections).
    const deaf = await Promise.all(Array.from({ length: 4 }, () => rawUpgrade(port)));
    const halfSent = await Promise.all(Array.from({ length: 4 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); resolve(s); });
      s.on('error', () => { /* reset by the daemon at stop */ });
    })));
    const c = await RawClient.open(port);
    assert.equal((await c.call([1, 1, 'big/s1', 1, 0]))[2], 0);
    d.child.kill('SIGTERM');
    const { code, signal } = await d.exit;
    assert.equal(signal, null, `not killed by a signal (${signal}); stderr: ${d.stderr().slice(-1500)}`);
    assert.equal(code, 0, `exit code; stderr: ${d.stderr().slice(-1500)}`);
    assert.equal(await c.closed(), 1001, 'a client that reads gets the close frame');
    for (const s of [...deaf, ...halfSent]) s.destroy();
  });

  it('under load from many connections on two threads: exit 0, and every grant the clients saw is in the database', { timeout: 120_000 }, async (t) => {
    const file = writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, tick_ms: 3_600_000, log: { level: 'info' },
      policy: { mode: 'fair' }, pools: [manyKeysPool()],
    });
    const d = spawnDaemon(['--config', file]);
    const port = await d.port;
    const keys = Array.from({ length: 8 }, (_, i) => `big/s${i}`);
    const loads = Array.from({ length: 8 }, (_, i) => runLoad(port, [keys[i]], () => false, { batch: 200, pauseMs: 0 }));
    const storms = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(port)));
    await new Promise((r) => setTimeout(r, 1000));
    for (const s of storms) s.sendBytes(statusStorm());
    d.child.kill('SIGTERM');
    const counts = await Promise.all(loads);
    const { code, signal } = await d.exit;
    assert.equal(signal, null, `not killed by a signal (${signal}); stderr: ${d.stderr().slice(-1500)}`);
    assert.equal(code, 0, `exit code; stderr: ${d.stderr().slice(-1500)}`);
    const granted = dbTotals(join(file, '..', 'data', 'tpsd.db'), 'granted');
    const seen = counts.reduce((n, c, i) => n + c.granted[keys[i]], 0);
    t.diagnostic(`${seen} grants seen by the clients`);
    assert.ok(seen > 0);
    for (let i = 0; i < keys.length; i++) assert.equal(granted[keys[i]], counts[i].granted[keys[i]], `grants of ${keys[i]}`);
  });
});
