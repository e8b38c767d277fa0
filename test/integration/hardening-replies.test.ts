// Replies are bounded per connection while a message is answered
// (PROTOCOL.md "Memory per connection is bounded"): one 64 KiB message of
// ~21 800 STATUS requests would make hundreds of MB of replies; the daemon
// sends the replies that fit in limits.max_backpressure_bytes, closes the
// connection with 1008, handles nothing more of that message, keeps its
// memory, and keeps serving everyone else. A real daemon process (`tpsd
// start`), so its RSS can be read from /proc.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { rssKiB, spawnDaemon, writeConfig, type CliDaemon } from '../fixtures/cli-daemon.ts';
import { RawClient, httpGet } from '../fixtures/daemon.ts';

const SERVICES = 50;
const MAX_BACKPRESSURE_BYTES = 64 * 1024;
const MAX_MESSAGE_BYTES = 65_536;
/** [3, 1] is 3 bytes: 0x92 0x03 0x01. */
const STATUS_REQUEST = [0x92, 0x03, 0x01];

/** One pool with SERVICES services: a STATUS reply of about 13 KB. */
function manyKeysPool() {
  return {
    name: 'big', capacity_tps: 100_000, burst: 1000,
    services: Array.from({ length: SERVICES }, (_, i) => ({ name: `s${i}`, priority: 'MEDIUM', max_tps: 10_000, burst: 1000 })),
  };
}

/** A message of STATUS requests filling max_message_bytes, then `tail` (already encoded). */
function statusStorm(tail: Uint8Array = new Uint8Array(0)): Uint8Array {
  const n = Math.floor((MAX_MESSAGE_BYTES - tail.length) / STATUS_REQUEST.length);
  const bytes = new Uint8Array(n * STATUS_REQUEST.length + tail.length);
  for (let i = 0; i < n; i++) bytes.set(STATUS_REQUEST, i * STATUS_REQUEST.length);
  bytes.set(tail, n * STATUS_REQUEST.length);
  return bytes;
}

/** The value of a /metrics sample (0 when absent). */
function sample(metrics: string, name: string, labelPart: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labelPart));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('replies bounded per connection while a message is answered', () => {
  let d: CliDaemon;
  let port: number;
  before(async () => {
    const file = writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: 1000, log: { level: 'info' },
      policy: { mode: 'fair' }, max_message_bytes: MAX_MESSAGE_BYTES,
      limits: { max_backpressure_bytes: MAX_BACKPRESSURE_BYTES }, pools: [manyKeysPool()],
    });
    d = spawnDaemon(['--config', file]);
    port = await d.port;
  });
  after(async () => {
    d.child.kill('SIGTERM');
    await d.exit;
  });

  it('closes a STATUS storm with 1008, skips the rest of its message, keeps its memory and serves others', { timeout: 120_000 }, async (t) => {
    const other = await RawClient.open(port);
    assert.equal((await other.call([1, 1, 'big/s0', 1, 0]))[2], 0, 'served before');
    // Warm up: a few STATUS replies and their GC, so the baseline includes a normal heap.
    for (let i = 0; i < 20; i++) await other.call([3, 100 + i]);
    const rssBeforeKiB = (await rssKiB(d.child.pid!))!;

    // ACQUIRE [1, 9, "big/s1", 1, 0] after the STATUS requests: it must not be processed.
    const tail = new Uint8Array([0x95, 0x01, 0x09, 0xa6, ...Buffer.from('big/s1'), 0x01, 0x00]);
    const attackers = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(port)));
    for (const a of attackers) a.sendBytes(statusStorm(tail));
    const codes = await Promise.all(attackers.map((a) => a.closed(60_000)));
    assert.equal((await other.call([1, 2, 'big/s0', 1, 0], 60_000))[2], 0, 'the other client is still served');
    const rssAfterKiB = (await rssKiB(d.child.pid!))!;
    const grownMiB = (rssAfterKiB - rssBeforeKiB) / 1024;
    t.diagnostic(`close codes ${codes.join(' ')}; RSS ${rssBeforeKiB} -> ${rssAfterKiB} KiB (+${grownMiB.toFixed(1)} MiB)`);

    assert.deepEqual(codes, [1008, 1008, 1008, 1008], 'closed as a policy violation');
    for (const a of attackers) {
      // The STATUS replies that fit in the budget were sent, no more; nothing of the ACQUIRE after them.
      assert.ok(a.replies.length > 0 && a.replies.every((r) => r[0] === 3 && r[2] === 0), 'STATUS replies only');
      const bytes = a.replies.reduce((n, r) => n + pack(r).length, 0);
      assert.ok(bytes <= MAX_BACKPRESSURE_BYTES, `${bytes} bytes of replies sent`);
    }
    // Each storm would be ~280 MB of replies if it were answered whole.
    assert.ok(grownMiB < 64, `RSS grew ${grownMiB.toFixed(1)} MiB (before ${rssBeforeKiB} KiB, after ${rssAfterKiB} KiB)`);

    const metrics = (await httpGet(port, '/metrics')).body;
    assert.equal(sample(metrics, 'tpsd_acquires_total', 'key="big/s1"'), 0, 'the ACQUIRE after the STATUS storm was not processed');
    assert.equal(sample(metrics, 'tpsd_acquires_total', 'key="big/s0"'), 2);
    other.close();
  });

  it('answers a message whose replies fit, and a client that reads keeps its connection', async () => {
    const c = await RawClient.open(port);
    // About 3 STATUS replies of ~13 KB fit in 64 KiB.
    c.send([3, 1], [3, 2], [3, 3]);
    await c.reply(3);
    assert.equal(c.closeCode, null);
    assert.equal((await c.call([1, 4, 'big/s2', 1, 0]))[2], 0);
    c.close();
  });
});
