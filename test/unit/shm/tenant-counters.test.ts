// The per-tenant counters (shm/tenant-counters.ts): each I/O thread counts
// into its own block; the main thread's sweep reports each slot any thread
// touched once, clears only what it saw, keeps the sweep before's slots for
// a second read, and total() sums a slot over the threads, nothing lost
// while the threads count at once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  TC_GRANTED, TC_OWN_DENIED, TC_REQUESTED, TenantCounterReader, TenantCounters, allocateTenantCounters, tenantCounterViews,
} from '../../../src/shm/tenant-counters.ts';
import { THREAD_BOOTSTRAP } from '../../../src/shm/threads.ts';

const SLOTS = 64;

const moved = (r: TenantCounterReader): number[] => [...r.moved.subarray(0, r.movedCount)].sort((a, b) => a - b);

describe('tenant counters', () => {
  it('a sweep reports each touched slot once, whichever threads touched it, and totals sum the threads', () => {
    const views = tenantCounterViews(allocateTenantCounters(SLOTS, 2), SLOTS, 2);
    const [t0, t1] = [new TenantCounters(views, 0), new TenantCounters(views, 1)];
    const r = new TenantCounterReader(views);
    t0.count(3, TC_REQUESTED, 2); t1.count(3, TC_REQUESTED, 1); t1.count(3, TC_OWN_DENIED, 1); t0.count(63, TC_GRANTED, 5);
    r.sweep();
    assert.deepEqual(moved(r), [3, 63]);
    assert.deepEqual([r.total(3, TC_REQUESTED), r.total(3, TC_OWN_DENIED), r.total(63, TC_GRANTED), r.total(63, TC_REQUESTED)], [3, 1, 5, 0]);
    r.sweep();
    assert.deepEqual(moved(r), [], 'flags cleared');
    assert.deepEqual([...r.before.subarray(0, r.beforeCount)].sort((a, b) => a - b), [3, 63], 'the sweep before kept for a second read');
    t1.count(63, TC_REQUESTED, 1);
    r.sweep();
    assert.deepEqual(moved(r), [63]);
    assert.equal(r.beforeCount, 0);
    assert.equal(r.total(63, TC_REQUESTED), 1);
  });

  it('totals wrap modulo 2^32 as the counts do', () => {
    const views = tenantCounterViews(allocateTenantCounters(SLOTS, 2), SLOTS, 2);
    new TenantCounters(views, 0).count(5, TC_REQUESTED, 0x7fffffff);
    new TenantCounters(views, 1).count(5, TC_REQUESTED, 2);
    assert.equal(new TenantCounterReader(views).total(5, TC_REQUESTED), (0x7fffffff + 2) | 0);
  });

  it('loses no count when four threads count the same slots at once', async () => {
    const threads = 4;
    const sab = allocateTenantCounters(SLOTS, threads);
    const per = 20_000;
    await Promise.all(Array.from({ length: threads }, (_, thread) => new Promise<void>((resolve, reject) => {
      const w = new Worker(THREAD_BOOTSTRAP, { workerData: {
        entry: new URL('../../fixtures/counter-hammer-worker.ts', import.meta.url).href, sab, slots: SLOTS, threads, thread, per } });
      w.once('exit', () => resolve());
      w.once('error', reject);
    })));
    const r = new TenantCounterReader(tenantCounterViews(sab, SLOTS, threads));
    r.sweep();
    assert.equal(r.movedCount, SLOTS);
    let asked = 0;
    let denied = 0;
    for (let s = 0; s < SLOTS; s++) { asked += r.total(s, TC_REQUESTED); denied += r.total(s, TC_OWN_DENIED); }
    assert.equal(asked, threads * per);
    assert.equal(denied, 2 * threads * per);
  });
});
