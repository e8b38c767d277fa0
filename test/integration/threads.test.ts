// Several clients spread over every I/O thread: the shared buckets hold their
// limits across threads, and the cross-thread priority rule keeps a CRITICAL
// waiter from being starved by LOW traffic on another thread.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';

/** Opens connections until every one of `threads` I/O threads serves at least `perThread`. */
async function spreadClients(port: number, threads: number, perThread: number): Promise<Map<number, RawClient[]>> {
  const by = new Map<number, RawClient[]>();
  for (let i = 0; i < 64; i++) {
    const c = await RawClient.open(port);
    const t = ((await c.call([3, 1]))[3] as { io_thread: number }).io_thread;
    const list = by.get(t) ?? [];
    if (list.length < perThread) { list.push(c); by.set(t, list); } else c.close();
    if (by.size === threads && [...by.values()].every((l) => l.length === perThread)) return by;
  }
  throw new Error(`could not reach all ${threads} I/O threads`);
}

describe('I/O threads sharing the buckets', () => {
  it('never grants more than rate + burst in any 1 s window, per pool and per key', async () => {
    const pool = { name: 'p', capacity_tps: 2000, burst: 100, services: [
      { name: 'a', priority: 'HIGH', max_tps: 600, burst: 30 },
      { name: 'b', priority: 'LOW', max_tps: 2000, burst: 100 },
    ] };
    const daemon = await startTestDaemon({ pools: [pool], io_threads: 2 });
    try {
      const by = await spreadClients(daemon.port, 2, 3);
      const clients = [...by.values()].flat();
      const grants: { key: string; sent: number; recv: number }[] = [];
      const until = performance.now() + 2500;
      let id = 100;
      await Promise.all(clients.map(async (c, ci) => {
        const key = ci % 2 === 0 ? 'p/a' : 'p/b';
        while (performance.now() < until) {
          const batch: unknown[][] = [];
          for (let i = 0; i < 32; i++) batch.push([1, ++id, key, 1, 0]);
          const sent = performance.now();
          c.send(...batch);
          const replies = await Promise.all(batch.map((r) => c.reply(r[1] as number)));
          const recv = performance.now();
          for (const r of replies) if (r[2] === 0) grants.push({ key, sent, recv });
          c.replies.length = 0;
        }
      }));
      const maxLatency = Math.max(...grants.map((g) => g.recv - g.sent));
      const check = (list: typeof grants, rate: number, burst: number, what: string) => {
        const times = list.map((g) => g.recv).sort((a, b) => a - b);
        const allowance = Math.ceil((rate * maxLatency) / 1000) + 1;
        let j = 0, worst = 0;
        for (let i = 0; i < times.length; i++) {
          while (times[i] - times[j] >= 1000) j++;
          worst = Math.max(worst, i - j + 1);
        }
        assert.ok(worst <= rate + burst + allowance,
          `${what}: ${worst} grants in a 1 s window, limit ${rate} + ${burst} (+${allowance} for ${maxLatency.toFixed(1)} ms latency)`);
        return worst;
      };
      const worstPool = check(grants, 2000, 100, 'pool p');
      check(grants.filter((g) => g.key === 'p/a'), 600, 30, 'key p/a');
      check(grants.filter((g) => g.key === 'p/b'), 2000, 100, 'key p/b');
      assert.ok(worstPool > 1500, `the pool was driven near its limit (${worstPool} in the busiest second)`);
      for (const c of clients) c.close();
    } finally {
      await daemon.stop();
    }
  });

  it('a CRITICAL waiter on one thread is not starved by LOW traffic on another', async () => {
    const pool = { name: 'p', capacity_tps: 100, burst: 10, services: [
      { name: 'crit', priority: 'CRITICAL', max_tps: 100, burst: 10 },
      { name: 'low', priority: 'LOW', max_tps: 100, burst: 10 },
    ] };
    const daemon = await startTestDaemon({ pools: [pool], io_threads: 2 });
    try {
      const by = await spreadClients(daemon.port, 2, 1);
      const [lowClient, critClient] = [...by.values()].map((l) => l[0]);
      let stop = false;
      let lowGranted = 0;
      let id = 1000;
      const hammer = (async () => {
        while (!stop) {
          const batch: unknown[][] = [];
          for (let i = 0; i < 20; i++) batch.push([1, ++id, 'p/low', 1, 0]);
          lowClient.send(...batch);
          const rs = await Promise.all(batch.map((r) => lowClient.reply(r[1] as number)));
          lowGranted += rs.filter((r) => r[2] === 0).length;
          lowClient.replies.length = 0;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await new Promise((r) => setTimeout(r, 300)); // LOW now takes every token as it refills
      const t0 = performance.now();
      const r = await critClient.call([1, 999_999, 'p/crit', 10, 3000], 5000);
      const waited = performance.now() - t0;
      stop = true;
      await hammer;
      assert.equal(r[0], 1);
      assert.equal(r[2], 0, `CRITICAL granted (waited ${waited.toFixed(0)} ms)`);
      assert.ok(waited < 1000, `CRITICAL waited ${waited.toFixed(0)} ms for 10 tokens at 100/s`);
      assert.ok(lowGranted > 20, 'LOW traffic was being served before and after');
      lowClient.close(); critClient.close();
    } finally {
      await daemon.stop();
    }
  });
});
