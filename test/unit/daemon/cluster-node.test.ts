// The cluster node (src/daemon/cluster/cluster-node.ts) between the
// controller and a store, driven by hand: a fake store stands in for Redis
// (the true external boundary; the script itself runs against a real
// redis-server in test/integration/cluster-script.test.ts) and a manual
// clock for time. What it reports (claims by priority: a pressing service
// claims up to its max_tps), what it caps a pool at and when, the burst it
// gives the pool bucket, one call at a time, and answers it must not trust.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/config/log.ts';
import { validateConfig } from '../../../src/config/schema.ts';
import type { PoolDecision } from '../../../src/control/decision.ts';
import { ClusterNode, type TickSource } from '../../../src/daemon/cluster/cluster-node.ts';
import { ClusterStoreError, readAnswer, type ShareAnswer, type ShareReport, type ShareStore } from '../../../src/daemon/cluster/redis-store.ts';

const LEASE = 1000;
const TICK = 100;

class FakeStore implements ShareStore {
  roundTrips = 0;
  readonly reports: ShareReport[] = [];
  private pending: { resolve: (a: ShareAnswer) => void; reject: (e: Error) => void }[] = [];
  share(report: ShareReport): Promise<ShareAnswer> {
    this.roundTrips++;
    this.reports.push(report);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  answer(grant: number, mode: 'coordinated' | 'learning' = 'coordinated', nodes = 2): void {
    this.pending.shift()!.resolve({ now: 1, mode, learning_ms: 0, pools: [{ grant, target: grant, nodes, eff: 600, cap: 600, g: 0, t: 0, q: 0, b: 0 }] });
  }
  fail(): void { this.pending.shift()!.reject(new Error('ECONNREFUSED')); }
  get outstanding(): number { return this.pending.length; }
  async close(): Promise<void> {}
}

function setup() {
  const config = validateConfig({
    tick_ms: TICK, cluster: { redis: 'redis://127.0.0.1:1', node_id: 'n1', lease_ms: LEASE },
    pools: [
      { name: 'shared', capacity_tps: 600, burst: 30, shared: true, services: [
        { name: 'crit', priority: 'CRITICAL', max_tps: 400 }, { name: 'low', priority: 'LOW' }] },
      { name: 'local', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] },
    ],
  }, {});
  let now = 0;
  const store = new FakeStore();
  const node = new ClusterNode(config, createLogger('silent'), { store: () => store, now: () => now, inst: 'i1' });
  return { node, store, advance: (ms: number) => { now += ms; }, at: () => now };
}

const flush = () => new Promise((r) => setImmediate(r));

function tick(services: { priority: number; demandTps: number; maxTps: number; queue?: number; deniedTps?: number }[]): TickSource {
  const last = [{ obs: { bucket: 0, key: 'shared', capacityTps: 600, grantedTps: 100, throttledTps: 3, totalDemandTps: 150,
    services: services.map((s) => ({ queue: 0, deniedTps: 0, ...s })) } }] as unknown as PoolDecision[];
  return { last, table: { burstTokens: () => 7 } };
}

describe('cluster node', () => {
  it('starts at zero share and joins at once; pools that are not shared are left alone', async () => {
    const { node, store } = setup();
    assert.equal(node.capTps('shared', 600), 0);
    assert.equal(node.capTps('local', 100), 100);
    node.start('fallback-id');
    assert.equal(store.reports.length, 1);
    assert.equal(store.reports[0].node, 'n1');
    assert.equal(store.reports[0].inst, 'i1');
    assert.equal(store.reports[0].pools[0].held, 0);
    assert.equal(node.stats().mode, 'learning');
  });

  it('claims arrivals, or up to max_tps for a service whose callers wait or are denied', async () => {
    const { node, store } = setup();
    node.start('x');
    store.answer(0);
    await flush();
    node.afterTick(tick([{ priority: 0, demandTps: 50, maxTps: 400 }, { priority: 3, demandTps: 80, maxTps: 600, queue: 5 }]));
    node.afterTick(tick([{ priority: 0, demandTps: 50, maxTps: 400, deniedTps: 20 }, { priority: 3, demandTps: 80, maxTps: 600 }]));
    assert.equal(store.reports.length, 2, 'no second call while one is out');
    assert.deepEqual(store.reports[1].pools[0].d, [50, 0, 0, 600]);
    assert.equal(node.stats().skippedTicks, 1);
    store.answer(100);
    await flush();
    node.afterTick(tick([{ priority: 0, demandTps: 50, maxTps: 400, deniedTps: 20 }, { priority: 3, demandTps: 900, maxTps: 600 }]));
    const r = store.reports[2].pools[0];
    assert.deepEqual(r.d, [400, 0, 0, 600], 'denied: up to max_tps; arrivals never above it');
    assert.deepEqual([r.g, r.t, r.q, r.b, r.cap], [100, 3, 150, 7, 600]);
  });

  it('caps the pool at the grant while the lease covers the coming tick, then goes safe', async () => {
    const { node, store, advance } = setup();
    node.start('x');
    store.answer(250, 'coordinated', 3);
    await flush();
    assert.equal(node.capTps('shared', 600), 250);
    assert.equal(node.capTps('shared', 200), 200, 'never above what discovery allows');
    assert.equal(node.stats().mode, 'coordinated');
    assert.equal(node.burstTokens('shared', 30), Math.ceil(30 * 250 / 600), 'its share of the burst');
    assert.equal(node.burstTokens('local', 30), 30);
    advance(LEASE - TICK + 1);
    node.afterTick(tick([]));
    store.fail();
    await flush();
    assert.equal(node.stats().mode, 'safe');
    assert.equal(node.capTps('shared', 600), 200, 'min(held 250, even 600 / 3)');
    advance(LEASE);
    assert.equal(node.capTps('shared', 600), 200);
    assert.equal(node.stats().errors, 1);
  });

  it('trusts no malformed answer: no NaN, no missing pool, no unknown mode', () => {
    const good = { now: 1, mode: 'coordinated', learning_ms: 0, pools: [{ grant: 1, target: 1, nodes: 1, eff: 1, cap: 1, g: 0, t: 0, q: 0, b: 0 }] };
    assert.equal(readAnswer(JSON.stringify(good), 1).pools[0].grant, 1);
    for (const bad of [
      'not json', '{}', JSON.stringify({ ...good, mode: 'boss' }), JSON.stringify({ ...good, pools: [] }),
      JSON.stringify({ ...good, pools: [{ ...good.pools[0], grant: -5 }] }), JSON.stringify({ ...good, pools: [{ ...good.pools[0], eff: 'x' }] }),
      JSON.stringify({ ...good, pools: [{ ...good.pools[0], grant: null }] }),
    ]) assert.throws(() => readAnswer(bad, 1), ClusterStoreError, bad);
    assert.equal(readAnswer(JSON.stringify({ now: 1, mode: 'left', learning_ms: 0, pools: {} }), 1).mode, 'left');
  });

  it('leaves: waits for the call out, then deletes its records', async () => {
    const { node, store } = setup();
    node.start('x');
    const left = node.leave();
    store.answer(100);
    await flush();
    assert.equal(store.reports.length, 2);
    assert.equal(store.reports[1].leave, true);
    store.answer(0);
    await left;
    node.afterTick(tick([]));
    assert.equal(store.reports.length, 2, 'nothing more after leaving');
  });
});
