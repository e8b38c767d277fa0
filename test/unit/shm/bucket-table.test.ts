// The shared bucket table: lazy refill, hierarchical all-or-nothing takes,
// concurrency slots, the cross-thread priority gate, and the rate + burst
// invariant under real threads taking at once.

import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import {
  BucketTable, FAIL_CONCURRENCY, FAIL_PRIORITY, FAIL_TOKENS, GRANTED, failBucket, failReason,
} from '../../../src/shm/bucket-table.ts';
import { ManualClock, createClock, hrtimeMs } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm } from '../../../src/shm/layout.ts';

function setup(pool: Record<string, unknown>, threads = 1) {
  const config = validateConfig({ pools: [pool], log: { level: 'silent' } }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, threads);
  const clock = new ManualClock();
  BucketTable.initialize(views, keys, 0);
  return { keys, views, clock, table: new BucketTable(views, clock, 0) };
}

const POOL = {
  name: 'p', capacity_tps: 100, burst: 10, services: [
    { name: 'a', priority: 'CRITICAL', max_tps: 50, burst: 5, concurrency: 2, endpoints: [{ name: 'e', max_tps: 10, burst: 3 }] },
    { name: 'b', priority: 'LOW', max_tps: 100, burst: 10 },
  ],
};

describe('BucketTable', () => {
  it('starts full, takes down to empty, refills lazily at the rate, never above the burst', () => {
    const { keys, table, clock } = setup(POOL);
    const b = keys.lookup('p/b');
    for (let i = 0; i < 10; i++) assert.equal(table.acquire(b, 1000, 3, false, 0), GRANTED);
    const r = table.acquire(b, 1000, 3, false, 0);
    assert.equal(failReason(r), FAIL_TOKENS);
    clock.set(50); // 100/s -> 5 tokens in 50 ms (pool also 100/s)
    for (let i = 0; i < 5; i++) assert.equal(table.acquire(b, 1000, 3, false, 50), GRANTED, `take ${i}`);
    assert.notEqual(table.acquire(b, 1000, 3, false, 50), GRANTED);
    table.refill(b, 100_000);
    assert.equal(table.remaining(b), 10, 'capped at the burst after a long idle');
  });

  it('takes from every level or none, refunding the levels below a failure', () => {
    const { keys, table } = setup(POOL);
    const e = keys.lookup('p/a/e'), a = keys.lookup('p/a'), p = keys.lookup('p');
    assert.equal(table.acquire(keys.lookup('p/b'), 8000, 3, false, 0), GRANTED); // pool 10 -> 2
    const r = table.acquire(e, 3000, 0, false, 0);
    assert.equal(failBucket(r), p);
    assert.equal(failReason(r), FAIL_TOKENS);
    assert.equal(table.remaining(e), 3, 'endpoint refunded');
    assert.equal(table.remaining(a), 5, 'service refunded');
    assert.equal(table.remaining(p), 2);
    assert.ok(table.exceedsBurst(e, 4000));
    assert.ok(!table.exceedsBurst(e, 3000));
  });

  it('holds concurrency slots per lease and frees exactly the ones taken', () => {
    const { keys, table } = setup(POOL);
    const a = keys.lookup('p/a');
    assert.equal(table.acquire(a, 1000, 0, false, 0), GRANTED);
    const m1 = table.lastSlotMask;
    assert.equal(table.acquire(a, 1000, 0, false, 0), GRANTED);
    const r = table.acquire(a, 1000, 0, false, 0);
    assert.equal(failReason(r), FAIL_CONCURRENCY);
    assert.equal(table.remaining(a), 3, 'no tokens spent on a concurrency failure');
    table.releaseSlots(a, m1);
    assert.equal(table.inFlight(a), 1);
    assert.equal(table.acquire(a, 1000, 0, false, 0), GRANTED);
  });

  it('makes weaker classes and new arrivals yield to registered waiters', () => {
    const { keys, table } = setup(POOL);
    const p = keys.lookup('p'), b = keys.lookup('p/b'), a = keys.lookup('p/a');
    table.markWaiter(p, 0, 1); // a CRITICAL waiter blocked at the pool
    const r = table.acquire(b, 1000, 3, false, 0);
    assert.equal(failReason(r), FAIL_PRIORITY);
    assert.equal(failBucket(r), p);
    assert.equal(failReason(table.acquire(a, 1000, 0, false, 0)), FAIL_PRIORITY, 'a new CRITICAL queues behind');
    assert.equal(table.acquire(a, 1000, 0, true, 0), GRANTED, 'the CRITICAL waiter itself may take');
    table.markWaiter(p, 0, -1);
    assert.equal(table.acquire(b, 1000, 3, false, 0), GRANTED);
  });

  it('setRate keeps tokens earned at the old rate; setBurst trims', () => {
    const { keys, table } = setup(POOL);
    const b = keys.lookup('p/b');
    table.acquire(b, 10_000, 3, false, 0);
    table.setRate(b, 1000, 20); // 20 ms at 100/s = 2 tokens, then 1000/s
    assert.equal(table.remaining(b), 2);
    table.refill(b, 25);
    assert.equal(table.remaining(b), 7);
    table.setBurst(b, 4);
    assert.equal(table.remaining(b), 4);
  });

  it('grants at most rate + burst in any 1 s window with 4 threads taking at once', async () => {
    const threads = 4;
    const pool = { name: 'p', capacity_tps: 3000, burst: 60, services: [
      { name: 'a', priority: 'HIGH', max_tps: 1000, burst: 20, endpoints: [{ name: 'e', max_tps: 300, burst: 10 }] },
      { name: 'b', priority: 'LOW', max_tps: 2500, burst: 50 },
    ] };
    const config = validateConfig({ pools: [pool], log: { level: 'silent' } }, {});
    const keys = KeyIndex.fromConfig(config);
    const views = allocateShm(keys.size, threads);
    const epochHrMs = hrtimeMs();
    BucketTable.initialize(views, keys, createClock(epochHrMs).nowMs());
    const log = new SharedArrayBuffer(4 * (1 + 2 * 2_000_000));
    const leaves = ['p/a', 'p/a/e', 'p/b'].map((k) => keys.lookup(k));
    const durationMs = 2500;
    const counts = await Promise.all(Array.from({ length: threads }, (_, t) => new Promise<number>((resolve, reject) => {
      const w = new Worker(new URL('../../../src/thread-bootstrap.mjs', import.meta.url), {
        workerData: {
          entry: new URL('../../fixtures/bucket-hammer-worker.ts', import.meta.url).href,
          sab: views.sab, bucketCount: keys.size, threadCount: threads, thread: t, epochHrMs, leaves, log, durationMs, seed: 17 + t,
        },
      });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    const out = new Int32Array(log);
    const n = out[0] / 2;
    assert.equal(n, counts.reduce((a, b) => a + b, 0));
    const events: { t: number; leaf: number; tokens: number }[] = [];
    for (let i = 0; i < n; i++) events.push({ t: out[1 + 2 * i], leaf: out[2 + 2 * i] >> 2, tokens: out[2 + 2 * i] & 3 });
    events.sort((x, y) => x.t - y.t);
    const worstWindow = (pred: (leaf: number) => boolean) => {
      const ev = events.filter((e) => pred(e.leaf));
      let j = 0, sum = 0, worst = 0;
      for (let i = 0; i < ev.length; i++) {
        sum += ev[i].tokens;
        while (ev[i].t - ev[j].t >= 1000) sum -= ev[j++].tokens;
        worst = Math.max(worst, sum);
      }
      return worst;
    };
    const [a, e, b] = leaves;
    const checks: [string, (l: number) => boolean, number][] = [
      ['pool p', () => true, 3000 + 60],
      ['p/a (with p/a/e)', (l) => l === a || l === e, 1000 + 20],
      ['p/a/e', (l) => l === e, 300 + 10],
      ['p/b', (l) => l === b, 2500 + 50],
    ];
    for (const [name, pred, bound] of checks) {
      const worst = worstWindow(pred);
      assert.ok(worst <= bound, `${name}: ${worst} tokens in a 1 s window, bound ${bound}`);
    }
    assert.ok(worstWindow(() => true) >= 2900, 'the pool was saturated');
    for (let bkt = 0; bkt < keys.size; bkt++) assert.ok(table0(views, keys).remaining(bkt) >= 0);
  });
});

function table0(views: ReturnType<typeof allocateShm>, _keys: KeyIndex) {
  return new BucketTable(views, new ManualClock(), null);
}
