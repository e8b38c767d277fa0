// The upstream's capacity is learned across the cluster: two daemons share a
// pool through a real redis-server, and only daemon A's callers meet the
// upstream's 429s (a fake upstream in this process that accepts 240 calls/s;
// B's callers never call it). B's share must shrink all the same, since the
// pool's capacity is the least of the nodes' estimates of it, each learned
// from the whole cluster's grants and 429s; when the upstream recovers,
// discovery's probing brings the pool back up for both.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type TpsdClient } from '../../src/client/index.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { startTestDaemon } from '../fixtures/daemon.ts';
import { RedisServer, SKIP_WITHOUT_REDIS } from '../fixtures/redis-server.ts';

const CAPACITY = 600;
const KEY = 'shared/svc';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PoolCluster { nodes: number; share_tps: number; mode: string; cluster_capacity_tps: number }

/** The upstream: a token bucket of `tps` calls per second; a call above it is a 429. */
class FakeUpstream {
  tps = 240;
  private tokens = 0;
  private at = performance.now();
  call(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.tps / 20, this.tokens + ((now - this.at) / 1000) * this.tps);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

async function cluster(d: Daemon): Promise<PoolCluster> {
  const s = await (await fetch(`http://127.0.0.1:${d.port}/v1/status`)).json() as { pools: { name: string; cluster?: PoolCluster }[] };
  const c = s.pools.find((p) => p.name === 'shared')?.cluster;
  assert.ok(c !== undefined, 'a shared pool\'s STATUS entry carries `cluster` from the start');
  return c;
}

async function until(ds: Daemon[], cond: (c: PoolCluster) => boolean, what: string, limitMs = 20_000): Promise<PoolCluster[]> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const cs = await Promise.all(ds.map(cluster));
    if (cs.every(cond)) return cs;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(cs)}`);
    await sleep(50);
  }
}

describe('capacity learned across the cluster', { skip: SKIP_WITHOUT_REDIS }, () => {
  let redis: RedisServer;
  let a: Daemon;
  let b: Daemon;
  const clients: TpsdClient[] = [];
  const upstream = new FakeUpstream();
  let throttling = true;
  let running = true;
  const loops: Promise<void>[] = [];

  before(async () => {
    redis = await RedisServer.start();
    const node = (id: string) => startTestDaemon({
      io_threads: 1, policy: { mode: 'fair' }, telemetry: { enabled: false },
      cluster: { redis: redis.url, node_id: id, lease_ms: 1000 },
      pools: [{ name: 'shared', capacity_tps: CAPACITY, shared: true, services: [{ name: 'svc', priority: 'HIGH' }] }],
    });
    [a, b] = await Promise.all([node('a'), node('b')]);
    await until([a, b], (c) => c.mode === 'coordinated' && c.nodes === 2, 'two coordinated nodes');
    for (const [d, meetsUpstream] of [[a, true], [b, false]] as const) {
      const client = await connect(`ws://127.0.0.1:${d.port}`);
      clients.push(client);
      for (let i = 0; i < 24; i++) {
        loops.push((async () => {
          while (running) {
            const p = await client.acquire(KEY, 1, { waitMs: 100 }).catch(() => null);
            if (p === null || !p.granted) { await sleep(5); continue; }
            const throttled = meetsUpstream && throttling && !upstream.call();
            client.release(p.lease, throttled ? 2 : 0, 2000);
          }
        })());
      }
    }
  });

  after(async () => {
    running = false;
    await Promise.allSettled(loops);
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.close();
  });

  it('shrinks every node\'s share on one node\'s 429s', async () => {
    // The upstream takes 240/s of a's calls and none of b's, so the pool settles near 2 x 240 (each daemon
    // half of it, a's half within what the upstream takes): below the 600 configured, and b below its 300.
    const shrunk = await until([a, b], (c) => c.cluster_capacity_tps < CAPACITY * 0.9 && c.share_tps < CAPACITY / 2 * 0.9,
      'the pool and both shares to shrink');
    const [ca, cb] = shrunk;
    console.log(`429s at a only: cluster capacity ${ca.cluster_capacity_tps} / ${cb.cluster_capacity_tps}, shares ${ca.share_tps} / ${cb.share_tps}`);
  });

  it('grows back for both when the upstream recovers', async () => {
    throttling = false;
    const back = await until([a, b], (c) => c.cluster_capacity_tps >= CAPACITY * 0.95, 'the pool back', 30_000);
    console.log(`recovered: cluster capacity ${back.map((c) => c.cluster_capacity_tps)}, shares ${back.map((c) => c.share_tps)}`);
  });
});
