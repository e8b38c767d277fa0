// The per-tenant activity buffer (shm/tenant-activity.ts): counts are
// cumulative and shared by every thread (worker threads add to the same
// slots at once, nothing is lost), collect() reports each touched slot once
// and clears only what it reported, and the buffer's size is checked.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { TenantActivity, allocateTenantActivity, tenantActivityBytes } from '../../../src/shm/tenant-activity.ts';
import { THREAD_BOOTSTRAP } from '../../../src/shm/threads.ts';

const SLOTS = 64;

describe('tenant activity', () => {
  it('reports touched slots once, keeps cumulative counts, and refuses a buffer of another size', () => {
    const sab = allocateTenantActivity(SLOTS)!;
    assert.equal(allocateTenantActivity(0), null, 'none without tenants');
    const a = new TenantActivity(sab, SLOTS);
    a.asked(3, 2); a.denied(3, 1); a.asked(63, 5); a.asked(3, 1);
    const seen: number[] = [];
    a.collect((s) => seen.push(s));
    assert.deepEqual(seen, [3, 63]);
    assert.deepEqual([a.requestedTotal(3), a.deniedTotal(3), a.requestedTotal(63)], [3, 1, 5]);
    const again: number[] = [];
    a.collect((s) => again.push(s));
    assert.deepEqual(again, [], 'flags cleared');
    a.asked(63, 1);
    const third: number[] = [];
    a.collect((s) => third.push(s));
    assert.deepEqual(third, [63]);
    assert.equal(a.requestedTotal(63), 6, 'cumulative');
    assert.throws(() => new TenantActivity(new SharedArrayBuffer(tenantActivityBytes(SLOTS) + 4), SLOTS), /expected for 64 slots/);
  });

  it('loses no count when four threads count the same slots at once', async () => {
    const sab = allocateTenantActivity(SLOTS)!;
    const per = 20_000;
    await Promise.all(Array.from({ length: 4 }, () => new Promise<void>((resolve, reject) => {
      const w = new Worker(THREAD_BOOTSTRAP, { workerData: {
        entry: new URL('../../fixtures/activity-hammer-worker.ts', import.meta.url).href, sab, slots: SLOTS, per } });
      w.once('exit', () => resolve());
      w.once('error', reject);
    })));
    const a = new TenantActivity(sab, SLOTS);
    let asked = 0;
    let denied = 0;
    for (let s = 0; s < SLOTS; s++) { asked += a.requestedTotal(s); denied += a.deniedTotal(s); }
    assert.equal(asked, 4 * per);
    assert.equal(denied, 8 * per);
  });
});
