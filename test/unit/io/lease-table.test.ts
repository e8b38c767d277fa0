// The per-thread lease table: ids are unique and carry the thread, stale and
// forged ids are refused, expiry follows creation order, the table grows to
// its limit and then refuses.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseTable, THREAD_LIMIT } from '../../../src/io/lease-table.ts';

describe('LeaseTable', () => {
  it('hands out distinct non-zero ids that name their thread', () => {
    const t = new LeaseTable(3, 1 << 20, 4);
    const ids = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const id = t.create(i % 7, 0, 1000);
      assert.ok(id > 0 && Number.isSafeInteger(id));
      assert.equal(LeaseTable.threadOf(id), 3);
      ids.add(id);
    }
    assert.equal(ids.size, 1000);
    assert.equal(t.active, 1000);
  });

  it('releases once, refuses stale, forged and other threads\' ids', () => {
    const t = new LeaseTable(1, 1024, 4);
    const id = t.create(5, 0b101, 1000);
    assert.equal(t.release(id), 5);
    assert.equal(t.lastMask, 0b101);
    assert.equal(t.release(id), -1, 'second release');
    const reused = t.create(6, 0, 1000);
    assert.notEqual(reused, id, 'a reused slot gets a new id');
    assert.equal(t.release(id), -1, 'the old id does not release the new lease');
    for (const bad of [0, -1, 1.5, 2 ** 60, id + 1, reused - 1 + THREAD_LIMIT]) assert.equal(t.release(bad), -1, `id ${bad}`);
    assert.equal(t.release(reused), 6);
  });

  it('expires leases in creation order, skipping released ones', () => {
    const t = new LeaseTable(0, 1024, 2);
    const ids = [t.create(1, 1, 100), t.create(2, 0, 200), t.create(3, 2, 300)];
    t.release(ids[1]);
    const seen: [number, number][] = [];
    assert.equal(t.expire(250, (b, m) => seen.push([b, m])), 1);
    assert.deepEqual(seen, [[1, 1]]);
    assert.equal(t.expire(1000, (b, m) => seen.push([b, m])), 1);
    assert.deepEqual(seen, [[1, 1], [3, 2]]);
    assert.equal(t.active, 0);
    assert.equal(t.release(ids[2]), -1, 'an expired lease is unknown');
  });

  it('when full, ends the oldest lease without a concurrency slot; full of slot holders, refuses', () => {
    const t = new LeaseTable(0, 8, 4);
    const slotted = [t.create(1, 1, 1e9), t.create(2, 1, 1e9)];
    const plain = Array.from({ length: 6 }, (_, i) => t.create(10 + i, 0, 1e9));
    const id = t.create(99, 0, 1e9);
    assert.ok(id > 0);
    assert.equal(t.lastEvicted, 10, 'the oldest lease holding no slot made room');
    assert.equal(t.release(plain[0]), -1, 'the evicted lease is gone');
    for (const s of slotted) assert.ok(t.release(s) > 0, 'slot holders are never evicted');
    const full = new LeaseTable(0, 2, 2);
    full.create(1, 1, 1e9); full.create(1, 1, 1e9);
    assert.equal(full.create(1, 1, 1e9), 0);
    assert.equal(full.lastEvicted, -1);
  });

  it('grows to its limit; churn does not grow the schedule without bound', () => {
    const t = new LeaseTable(0, 64, 4);
    const held: number[] = [];
    for (let i = 0; i < 64; i++) held.push(t.create(0, 1, 1e9));
    assert.equal(t.create(0, 1, 1e9), 0, 'full');
    t.release(held.pop()!);
    for (let i = 0; i < 100_000; i++) {
      const id = t.create(0, 1, 1e9);
      assert.ok(id > 0, `churn ${i}`);
      t.release(id);
    }
    assert.equal(t.active, 63);
  });
});

describe('LeaseTable schedule compaction', () => {
  it('keeps every live lease when the schedule wraps before it is compacted', () => {
    const t = new LeaseTable(0, 1 << 20, 2);
    t.create(1, 0, 100);
    t.expire(50, () => {});
    const b = t.create(2, 0, 150);
    const c = t.create(3, 0, 150);
    t.expire(100, () => {});
    t.release(c);
    for (let i = 0; i < 3; i++) t.create(4, 0, 200);
    let expired = 0;
    t.expire(1e6, () => { expired++; });
    assert.equal(expired, 4, 'b and the three new leases all expire');
    assert.equal(t.active, 0);
    assert.equal(t.release(b), -1);
  });
});
