// Leases: concurrency slots are held until RELEASE, freed by the TTL when a
// lease is never released, and a closed connection's leases free at expiry.
// A lease belongs to the connection that acquired it: a RELEASE from any
// other connection, of a made-up id or of a lease already ended is
// UNKNOWN_LEASE (or nothing, with id 0) and changes no gauge or counter.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';

const pool = { name: 'db', capacity_tps: 1000, burst: 100, services: [
  { name: 'w', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 2 },
  { name: 'free', priority: 'LOW', max_tps: 1000, burst: 100 },
] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inFlight(c: RawClient, id: number, key = 'db/w'): Promise<number> {
  const snap = (await c.call([3, id]))[3] as { keys: { key: string; in_flight: number }[] };
  return snap.keys.find((k) => k.key === key)!.in_flight;
}

/** The release and expiry figures of /metrics for the db/* keys, as one comparable text. */
async function leaseCounters(port: number): Promise<string> {
  const m = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  return m.split('\n').filter((l) => /^tpsd_(releases_total|release_latency_seconds_count|leases_expired_total|in_flight)\{key="db/.test(l)).join('\n');
}

describe('leases', () => {
  it('a concurrency slot is held until RELEASE, and a waiter gets it when freed', async () => {
    const daemon = await startTestDaemon({ pools: [pool], lease_ttl_ms: 60_000 });
    try {
      const c = await RawClient.open(daemon.port);
      const a = await c.call([1, 1, 'db/w', 1, 0]);
      const b = await c.call([1, 2, 'db/w', 1, 0]);
      assert.equal(a[2], 0); assert.equal(b[2], 0);
      const denied = await c.call([1, 3, 'db/w', 1, 0]);
      assert.equal(denied[2], 1, 'third lease over concurrency 2 is denied');
      assert.equal(await inFlight(c, 4), 2);
      c.send([1, 5, 'db/w', 1, 2000]);
      await sleep(30);
      assert.deepEqual(await c.call([2, 6, a[3], 0, 100]), [2, 6, 0]);
      const granted = await c.reply(5);
      assert.equal(granted[2], 0, 'the waiter got the freed slot');
      c.close();
    } finally {
      await daemon.stop();
    }
  });

  it('unreleased leases expire after lease_ttl_ms, also when their connection closed', async () => {
    const ttlMs = 1000;
    const daemon = await startTestDaemon({ pools: [pool], lease_ttl_ms: ttlMs });
    try {
      const c = await RawClient.open(daemon.port);
      const t0 = performance.now();
      const a = await c.call([1, 1, 'db/w', 1, 0]);
      await c.call([1, 2, 'db/w', 1, 0]);
      c.close();
      const c2 = await RawClient.open(daemon.port);
      const held = await c2.call([1, 3, 'db/w', 1, 0]);
      // Only meaningful while the TTL has not run out: a starved test can get here later.
      if (performance.now() - t0 < ttlMs) assert.equal(held[2], 1, 'slots still held after the close');
      else if (held[2] === 0) assert.equal((await c2.call([2, 4, held[3], 0, 1]))[2], 0);
      const deadline = performance.now() + 10_000;
      let id = 4;
      while (await inFlight(c2, ++id) !== 0) {
        assert.ok(performance.now() < deadline, 'both slots freed by the TTL');
        await sleep(50);
      }
      assert.ok(performance.now() - t0 >= ttlMs, 'not freed before the TTL');
      const again = await c2.call([1, ++id, 'db/w', 1, 0]);
      assert.equal(again[2], 0);
      // The expired lease cannot be released any more.
      assert.equal((await c2.call([2, ++id, a[3], 0, 1]))[2], 19);
      // Expired leases are counted in the metrics.
      const m = await fetch(`http://127.0.0.1:${daemon.port}/metrics`).then((r) => r.text());
      assert.match(m, /tpsd_leases_expired_total\{key="db\/w"[^}]*\} 2\b/);
      c2.close();
    } finally {
      await daemon.stop();
    }
  });

  it('a lease belongs to the connection that acquired it: others, made-up ids and double releases change nothing', async () => {
    // One I/O thread, so both connections share the lease table (with two, the thread check alone refuses most).
    const daemon = await startTestDaemon({ pools: [pool], lease_ttl_ms: 60_000, io_threads: 1 });
    try {
      const a = await RawClient.open(daemon.port);
      const b = await RawClient.open(daemon.port);
      const held = (await a.call([1, 1, 'db/w', 1, 0]))[3] as number;
      const free = (await a.call([1, 2, 'db/free', 1, 0]))[3] as number;
      assert.ok(held > 0 && free > 0);
      const before = await leaseCounters(daemon.port);
      assert.match(before, /tpsd_in_flight\{key="db\/w"[^}]*\} 1\b/);
      let id = 10;
      for (const lease of [held, free]) {
        for (const outcome of [0, 1, 2]) assert.equal((await b.call([2, ++id, lease, outcome, 5]))[2], 19, `another connection's lease ${lease}`);
        b.send([2, 0, lease, 2, 5]); // no reply wanted: must not release either
        for (const madeUp of [lease + 16, lease - 16, lease + 2 ** 24, lease - 2 ** 24, lease % 2 ** 24]) {
          assert.equal((await a.call([2, ++id, madeUp, 2, 5]))[2], 19, `made-up id ${madeUp}`);
        }
      }
      assert.equal(await inFlight(a, ++id), 1, 'db/w: the lease of a is still held');
      assert.equal(await inFlight(a, ++id, 'db/free'), 1, 'db/free: the lease of a is still held');
      assert.equal(await leaseCounters(daemon.port), before, 'no release, outcome or latency counted, no gauge moved');
      assert.equal((await b.call([1, ++id, 'db/w', 1, 0]))[2], 0, 'the second slot is free');
      assert.equal((await b.call([1, ++id, 'db/w', 1, 0]))[2], 1, 'the first is still held by the lease of a');
      for (const lease of [held, free]) {
        assert.deepEqual(await a.call([2, ++id, lease, 1, 7]), [2, id, 0], 'the owner releases it');
        assert.equal((await a.call([2, ++id, lease, 1, 7]))[2], 19, 'a second release is unknown');
        a.send([2, 0, lease, 2, 7]); // and so is a silent one
      }
      assert.equal(await inFlight(a, ++id), 1, 'only the lease of b is left');
      const m = await leaseCounters(daemon.port);
      assert.match(m, /tpsd_releases_total\{key="db\/w"[^}]*outcome="failed"\} 1\b/);
      assert.match(m, /tpsd_releases_total\{key="db\/w"[^}]*outcome="throttled"\} 0\b/);
      assert.match(m, /tpsd_releases_total\{key="db\/free"[^}]*outcome="throttled"\} 0\b/);
      assert.match(m, /tpsd_releases_total\{key="db\/free"[^}]*outcome="failed"\} 1\b/);
      a.close(); b.close();
    } finally {
      await daemon.stop();
    }
  });

  it('a closed connection\'s leases are kept until their TTL: no other connection can release them', async () => {
    const daemon = await startTestDaemon({ pools: [pool], lease_ttl_ms: 60_000, io_threads: 1 });
    try {
      const a = await RawClient.open(daemon.port);
      const leases = [(await a.call([1, 1, 'db/w', 1, 0]))[3], (await a.call([1, 2, 'db/w', 1, 0]))[3]] as number[];
      a.close();
      await a.closed();
      const b = await RawClient.open(daemon.port);
      for (const [i, lease] of leases.entries()) assert.equal((await b.call([2, 10 + i, lease, 0, 1]))[2], 19);
      assert.equal((await b.call([1, 20, 'db/w', 1, 0]))[2], 1, 'both slots still held by the closed connection\'s leases');
      assert.equal(await inFlight(b, 21), 2);
      b.close();
    } finally {
      await daemon.stop();
    }
  });
});
