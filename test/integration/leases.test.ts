// Leases: concurrency slots are held until RELEASE, freed by the TTL when a
// lease is never released, and a closed connection's leases free at expiry.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';

const pool = { name: 'db', capacity_tps: 1000, burst: 100, services: [
  { name: 'w', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 2 },
] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inFlight(c: RawClient, id: number): Promise<number> {
  const snap = (await c.call([3, id]))[3] as { keys: { key: string; in_flight: number }[] };
  return snap.keys.find((k) => k.key === 'db/w')!.in_flight;
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
    const daemon = await startTestDaemon({ pools: [pool], lease_ttl_ms: 300 });
    try {
      const c = await RawClient.open(daemon.port);
      const a = await c.call([1, 1, 'db/w', 1, 0]);
      await c.call([1, 2, 'db/w', 1, 0]);
      c.close();
      const c2 = await RawClient.open(daemon.port);
      assert.equal((await c2.call([1, 3, 'db/w', 1, 0]))[2], 1, 'slots still held after the close');
      await sleep(450);
      assert.equal(await inFlight(c2, 4), 0, 'both slots freed by the TTL');
      const again = await c2.call([1, 5, 'db/w', 1, 0]);
      assert.equal(again[2], 0);
      // The expired lease cannot be released any more.
      assert.equal((await c2.call([2, 6, a[3], 0, 1]))[2], 19);
      // Expired leases are counted in the metrics.
      const m = await fetch(`http://127.0.0.1:${daemon.port}/metrics`).then((r) => r.text());
      assert.match(m, /tpsd_leases_expired_total\{key="db\/w"[^}]*\} 2\b/);
      c2.close();
    } finally {
      await daemon.stop();
    }
  });
});
