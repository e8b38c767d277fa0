// RELEASE hints in a running daemon (real I/O threads, shared memory, the
// controller's tick): clients pass each grant to a fake upstream (a token
// bucket, the one mock: the upstream API is the true external boundary) and
// report what it said, its 429s and its rate-limit headers. When its limit
// drops, the pool follows the limit its clients report: 429s only in the
// first 2 ticks, then none at all (no probing above a known limit). Hints
// from a token that may not use the pool, or a liar's among honest traffic,
// change nothing. Ticks are the daemon's own, read from its telemetry in SQLite.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { sleep } from '../fixtures/telemetry.ts';
import { FakeUpstream } from '../fixtures/fake-upstream.ts';


const AUTH = { tokens: [{ token: 'tok-api', keys: ['api/'] }, { token: 'tok-other', keys: ['other/'] }, { token: 'tok-admin', keys: [], admin: true }] };
const POOLS = [
  // The fake upstream is a token bucket, and the pool says so (a window gate would pause a second after the drop).
  { name: 'api', capacity_tps: 1000, burst: 20, upstream: { window: 'token_bucket' }, services: [{ name: 'svc', priority: 'HIGH', max_tps: 1000, burst: 50 }] },
  { name: 'other', capacity_tps: 500, burst: 20, services: [{ name: 'svc', priority: 'LOW', max_tps: 500, burst: 50 }] },
];

async function client(port: number, token: string): Promise<RawClient> {
  const c = await RawClient.open(port);
  const r = await c.call([0, 1, { v: 1, token }]);
  assert.equal(r[2], 0, JSON.stringify(r));
  return c;
}

/**
 * ACQUIRE batches on `key` until `stop()`; each grant goes through `upstream`
 * and is released with its outcome and `hints()` (null: none). Grants can be
 * handed to `keep` instead of released (lease ids another client learns).
 */
async function load(c: RawClient, key: string, stop: () => boolean,
  o: { upstream?: FakeUpstream; hints?: () => unknown; keep?: number[]; batch?: number } = {}): Promise<{ granted: number; throttled: number }> {
  let id = 10;
  const counts = { granted: 0, throttled: 0 };
  while (!stop() && c.closeCode === null) {
    const first = id;
    const reqs: unknown[][] = [];
    for (let i = 0; i < (o.batch ?? 20); i++) reqs.push([1, id++, key, 1, 0]);
    c.send(...reqs);
    const releases: unknown[][] = [];
    for (let rid = first; rid < id; rid++) {
      const r = await c.reply(rid, 5000);
      if (r[2] !== 0) continue;
      counts.granted++;
      if (o.keep !== undefined && o.keep.length < 1000) { o.keep.push(r[3] as number); continue; }
      const ok = o.upstream === undefined || o.upstream.admit();
      if (!ok) counts.throttled++;
      const h = o.hints?.() ?? null;
      releases.push(h === null ? [2, 0, r[3], ok ? 0 : 2, 1000] : [2, 0, r[3], ok ? 0 : 2, 1000, h]);
    }
    if (releases.length > 0) c.send(...releases);
    c.replies.length = 0;
    await sleep(2);
  }
  return counts;
}

interface Snapshot { tick: number; pools: { name: string; effective_capacity_tps: number }[] }

async function status(c: RawClient, id: number): Promise<Snapshot> {
  const r = await c.call([3, id]);
  c.replies.length = 0;
  return r[3] as Snapshot;
}

async function effective(c: RawClient, pool: string, id: number): Promise<number> {
  return (await status(c, id)).pools.find((p) => p.name === pool)!.effective_capacity_tps;
}

describe('RELEASE hints in a running daemon', () => {
  it('the pool follows the limit its clients report: 429s in the first 2 ticks of a drop, then none', async () => {
    const daemon = await startTestDaemon({ policy: { mode: 'fair' }, pools: POOLS, auth: AUTH });
    try {
      const upstream = new FakeUpstream(100_000, 60);
      const c = await client(daemon.port, 'tok-api');
      let stop = false;
      const running = load(c, 'api/svc', () => stop, { upstream, hints: () => ({ limit: Math.min(upstream.rate, 100_000), window_ms: 1000, remaining: 1 }) });
      const admin = await client(daemon.port, 'tok-admin');
      await sleep(1000);
      upstream.rate = 300;
      // 40 of the daemon's ticks after the drop, however slow the machine is.
      const dropTick = (await status(admin, 2)).tick;
      for (let id = 3; (await status(admin, id)).tick < dropTick + 40; id++) await sleep(100);
      const eff = await effective(admin, 'api', 1000);
      stop = true;
      const counts = await running;
      await sleep(300);
      await daemon.stop();
      const db = new Database(daemon.dbFile!, { readonly: true });
      try {
        const ticks = db.prepare(`SELECT t.tick AS tick, t.throttled AS throttled, t.granted AS granted FROM telemetry t
          JOIN keys k ON k.id = t.key_id WHERE k.key = 'api/svc' ORDER BY t.tick`).all() as { tick: number; throttled: number; granted: number }[];
        assert.ok(counts.throttled > 0, 'the drop caused 429s');
        const first = ticks.find((t) => t.throttled > 0)!.tick;
        if (process.env.DEBUG_HINTS) {
          const e = new Map((db.prepare("SELECT tick, effective_tps FROM decisions WHERE pool = 'api'").all() as
            { tick: number; effective_tps: number }[]).map((d) => [d.tick, d.effective_tps]));
          for (const t of ticks) console.log(t.tick, t.granted, t.throttled, e.get(t.tick));
        }
        const after = ticks.filter((t) => t.tick > first + 2);
        assert.ok(after.filter((t) => t.granted > 0).length >= 25, `traffic kept pressing after the drop: ${after.length} ticks`);
        assert.deepEqual(after.filter((t) => t.throttled > 0), [], 'no 429 after the first 2 ticks: nothing probes above the known limit');
        // At the reported limit, or at what the upstream took when 429s showed a little less (a client's timing).
        assert.ok(eff >= 0.85 * 300 && eff <= 300, `the pool's effective capacity is the reported limit: ${eff}`);
      } finally {
        db.close();
      }
    } finally {
      await daemon.stop().catch(() => {});
    }
  });

  it('hints from a token that may not use the pool leave it alone', async () => {
    // One I/O thread: every connection's releases reach the lease table that granted the lease.
    const daemon = await startTestDaemon({ policy: { mode: 'fair' }, pools: POOLS, auth: AUTH, io_threads: 1 });
    try {
      const honest = await client(daemon.port, 'tok-api');
      const outsider = await client(daemon.port, 'tok-other');
      const admin = await client(daemon.port, 'tok-admin');
      // The api pool meets its upstream's 300/s without hints: 429s hold it low.
      const upstream = new FakeUpstream(300, 30);
      let stop = false;
      const leaked: number[] = [];
      const run = load(honest, 'api/svc', () => stop, { upstream });
      for (let id = 10; (await effective(admin, 'api', id)) > 600; id++) await sleep(100);
      stop = true;
      await run;
      // Quiet now; api leases the outsider learns somehow, released with hints of a high limit.
      await load(honest, 'api/svc', () => leaked.length >= 20, { keep: leaked, batch: 5 });
      const before = await effective(admin, 'api', 100);
      outsider.send(...leaked.map((l) => [2, 0, l, 0, 1000, { limit: 1000, window_ms: 1000 }]));
      const seen: number[] = [];
      for (let id = 101; id < 111; id++) { await sleep(100); seen.push(await effective(admin, 'api', id)); }
      assert.ok(seen.every((e) => e <= before), `the outsider did not raise the api pool: ${before} then ${seen.join(' ')}`);
      // The same hints on the pool's own leases count (a raise is taken at once; 429s would overrule it).
      const own: number[] = [];
      await load(honest, 'api/svc', () => own.length >= 20, { keep: own, batch: 5 });
      honest.send(...own.map((l) => [2, 0, l, 0, 1000, { limit: 1000, window_ms: 1000 }]));
      let after = before;
      for (let id = 200; id < 220 && after < 1000; id++) { await sleep(100); after = await effective(admin, 'api', id); }
      assert.equal(after, 1000);
    } finally {
      await daemon.stop();
    }
  });

  it('a liar among honest traffic is outvoted by the throughput the others get', async () => {
    const daemon = await startTestDaemon({ policy: { mode: 'fair' }, pools: POOLS, auth: AUTH });
    try {
      const honest = await client(daemon.port, 'tok-api');
      const liar = await client(daemon.port, 'tok-api');
      const admin = await client(daemon.port, 'tok-admin');
      let stop = false;
      const runs = [
        load(honest, 'api/svc', () => stop),
        load(liar, 'api/svc', () => stop, { hints: () => ({ limit: 5, window_ms: 1000 }), batch: 5 }),
      ];
      const seen: number[] = [];
      for (let id = 100; id < 130; id++) { await sleep(100); seen.push(await effective(admin, 'api', id)); }
      stop = true;
      await Promise.all(runs);
      assert.deepEqual([...new Set(seen)], [1000], 'the api pool kept its capacity');
    } finally {
      await daemon.stop();
    }
  });
});
