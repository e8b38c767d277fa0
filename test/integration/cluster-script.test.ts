// The share script (src/daemon/cluster/share.lua) against a real
// redis-server, driven through RedisShareStore with hand-made reports: the
// priority water-fill, shrinking at once and growing only into what the
// other nodes leave, the reservation of what a node still enforces, expiry,
// the shared capacity estimate, learning after the state is lost, a clean
// leave, and a seeded random walk of nodes joining, restarting and dying
// that checks, after every call, that what the nodes enforce never sums
// above the capacity.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisShareStore, shareKeys, type PoolReport, type ShareAnswer } from '../../src/daemon/cluster/redis-store.ts';
import { RedisServer, SKIP_WITHOUT_REDIS } from '../fixtures/redis-server.ts';

const CAP = 1000;
const LEASE_MS = 60_000;

function pool(o: Partial<PoolReport> = {}): PoolReport {
  return { cap: CAP, held: 0, est: CAP, d: [0, 0, 0, 0], g: 0, t: 0, q: 0, b: 0, ...o };
}

/** mulberry32: the walk's seeded randomness. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('share script', { skip: SKIP_WITHOUT_REDIS }, () => {
  let redis: RedisServer;
  let admin: Redis;
  let store: RedisShareStore;
  let prefix = 0;
  let keys: string[];

  before(async () => {
    redis = await RedisServer.start();
    admin = new Redis(redis.url);
  });
  after(async () => {
    await store?.close();
    admin?.disconnect();
    await redis?.close();
  });

  /** A fresh key prefix per test, past its learning period (a fresh store learns first: see 'learning'). */
  async function fresh(pools = ['p']): Promise<void> {
    await store?.close();
    const keyPrefix = `t${++prefix}`;
    store = new RedisShareStore({ url: redis.url, keyPrefix, pools, timeoutMs: 5000, onError: () => {} });
    keys = shareKeys(keyPrefix, pools);
    const first = await call('setup', 'x', [pool()]);
    assert.equal(first.mode, 'learning', 'a store without state starts learning');
    await admin.hset(keys[0], 'learning_since', 0);
    await admin.hdel(keys[1], 'setup/x');
  }

  const call = (node: string, inst: string, pools: PoolReport[], leaseMs = LEASE_MS): Promise<ShareAnswer> =>
    store.share({ node, inst, lease_ms: leaseMs, pools });

  it('divides by priority: CRITICAL demand first, max-min within a class, the rest evenly', async () => {
    await fresh();
    await call('a', '1', [pool({ d: [300, 0, 0, 0] })]);
    const b = await call('b', '1', [pool({ d: [0, 0, 0, 5000] })]);
    assert.equal(b.mode, 'coordinated');
    assert.equal(b.pools[0].target, 700, 'LOW gets what CRITICAL leaves');
    assert.equal(b.pools[0].nodes, 2);
    const a = await call('a', '1', [pool({ d: [300, 0, 0, 0] })]);
    assert.equal(a.pools[0].target, 300);
    await call('c', '1', [pool({ d: [0, 0, 0, 100] })]);
    const c = await call('c', '1', [pool({ d: [0, 0, 0, 100] })]);
    assert.equal(c.pools[0].target, 100, 'a small LOW demand is met in full before the large one');
    const idle = await call('d', '1', [pool()]);
    assert.equal(idle.pools[0].target, 0, 'no demand, nothing left over: nothing');
  });

  it('shrinks at once, grows only into what others leave, and keeps a held share reserved until it is released', async () => {
    await fresh();
    const want = [0, 5000, 0, 0] as const;
    assert.equal((await call('a', '1', [pool({ d: [...want] as never })])).pools[0].grant, CAP, 'alone: everything');
    let b = await call('b', '1', [pool({ d: [...want] as never })]);
    assert.equal(b.pools[0].target, 500);
    assert.equal(b.pools[0].grant, 0, 'a holds the whole capacity: nothing to grow into');
    let a = await call('a', '1', [pool({ held: CAP, d: [...want] as never })]);
    assert.equal(a.pools[0].grant, 500, 'a shrinks to its target at once');
    b = await call('b', '1', [pool({ d: [...want] as never })]);
    assert.equal(b.pools[0].grant, 0, 'a still enforces 1000 until it reports 500 applied');
    a = await call('a', '1', [pool({ held: 500, d: [...want] as never })]);
    assert.equal(a.pools[0].grant, 500);
    b = await call('b', '1', [pool({ d: [...want] as never })]);
    assert.equal(b.pools[0].grant, 500, 'the space a released is b\'s now');
  });

  it('returns an expired node\'s share, and a leaving node\'s share at once', async () => {
    await fresh();
    const d = [0, 0, 5000, 0] as never;
    await call('a', '1', [pool({ d })], 150);
    await call('b', '1', [pool({ d })]);
    const early = await call('b', '1', [pool({ d })]);
    assert.ok(early.pools[0].grant <= 500 + 1e-9 && early.pools[0].nodes === 2, JSON.stringify(early));
    await new Promise((r) => setTimeout(r, 200)); // a's lease (150 ms, on Redis's clock) ends
    const later = await call('b', '1', [pool({ held: early.pools[0].grant, d })]);
    assert.equal(later.pools[0].nodes, 1);
    assert.equal(later.pools[0].grant, CAP);
    await call('c', '1', [pool({ d })]);
    const left = await store.share({ node: 'b', inst: '1', lease_ms: LEASE_MS, leave: true, pools: [pool()] });
    assert.equal(left.mode, 'left');
    const c = await call('c', '1', [pool({ d })]);
    assert.equal(c.pools[0].grant, CAP, 'b left: c grows into all of it at once');
  });

  it('takes the least live estimate as the pool\'s capacity for every node', async () => {
    await fresh();
    await call('a', '1', [pool({ est: 400, d: [0, 0, 0, 5000] })]);
    const b = await call('b', '1', [pool({ d: [0, 0, 0, 5000] })]);
    assert.equal(b.pools[0].eff, 400);
    assert.equal(b.pools[0].target, 200);
    const two = await call('b', '1', [pool({ cap: 800, d: [0, 0, 0, 5000] })]);
    assert.equal(two.pools[0].cap, 800, 'the least configured capacity too');
  });

  it('sums the live nodes\' figures for pool-wide capacity discovery', async () => {
    await fresh();
    await call('a', '1', [pool({ g: 300, t: 20, q: 400, b: 10 })]);
    const b = await call('b', '1', [pool({ g: 200, t: 5, q: 250, b: 10 })]);
    assert.deepEqual([b.pools[0].g, b.pools[0].t, b.pools[0].q, b.pools[0].b], [500, 25, 650, 20]);
  });

  it('learns for one lease when the server is not the one the state was written on: nothing above what a node holds', async () => {
    await fresh();
    const d = [5000, 0, 0, 0] as never;
    await call('a', '1', [pool({ d })], 300);
    await admin.hset(keys[0], 'run_id', 'a-server-that-is-gone');
    const a = await call('a', '1', [pool({ held: 250, d })], 300);
    assert.equal(a.mode, 'learning');
    assert.equal(a.pools[0].grant, 250, 'a keeps what it holds, no more');
    const b = await call('b', '1', [pool({ held: 900, d })], 300);
    assert.equal(b.pools[0].grant, 750, 'within what a holds: capacity - 250');
    const c = await call('c', '1', [pool({ d })], 300);
    assert.equal(c.pools[0].grant, 0, 'a node holding nothing gets nothing new');
    assert.ok(c.learning_ms > 0 && c.learning_ms <= 300);
    await new Promise((r) => setTimeout(r, 320));
    const after = await call('c', '1', [pool({ d })], 300);
    assert.equal(after.mode, 'coordinated');
  });

  it('never lets what the nodes enforce sum above the capacity (seeded walk: joins, restarts, deaths, demand swings)', async () => {
    await fresh();
    const seed = Number(process.env.TPSD_TEST_SEED ?? 20261217);
    const random = rng(seed);
    interface Sim { node: string; inst: number; enforced: number; pending: number | null; alive: boolean }
    const nodes: Sim[] = ['a', 'b', 'c', 'd'].map((node) => ({ node, inst: 1, enforced: 0, pending: null, alive: true }));
    let worst = 0;
    for (let step = 0; step < 400; step++) {
      const n = nodes[Math.floor(random() * nodes.length)];
      const roll = random();
      if (roll < 0.02 && n.alive) { n.alive = false; n.enforced = 0; n.pending = null; continue; } // killed: grants nothing more
      if (roll < 0.06) { n.alive = true; n.inst++; n.enforced = 0; n.pending = null; } // (re)started: a new instance, nothing held
      if (!n.alive) continue;
      if (n.pending !== null) { n.enforced = n.pending; n.pending = null; } // applies the last answer at its tick
      const d: [number, number, number, number] = [0, 0, 0, 0];
      // Mostly pressing demand, so that shares move against each other; sometimes a little or none.
      d[Math.floor(random() * 4)] = Math.round(random() < 0.7 ? 500 + random() * 4500 : random() * 300);
      const answer = await call(n.node, String(n.inst), [pool({ held: n.enforced, d })]);
      n.pending = answer.pools[0].grant;
      // What every node enforces now, and what any of them would enforce once it applies its answer.
      const now = nodes.reduce((s, x) => s + x.enforced, 0);
      const soon = nodes.reduce((s, x) => s + Math.max(x.enforced, x.pending ?? 0), 0);
      worst = Math.max(worst, now, soon);
      assert.ok(soon <= CAP + 1e-6, `seed ${seed} step ${step}: nodes would enforce ${soon} > ${CAP}`);
    }
    assert.ok(worst > CAP * 0.9, `the walk should press on the capacity (worst ${worst})`);
  });
});
