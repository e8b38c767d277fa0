// The per-thread lease table: ids are unique, name their thread and carry
// random bits; a lease is released only by its owner, once; expiry follows
// creation order in each of the two lists; a full table ends its oldest lease
// that holds no concurrency slot, and refuses when every lease holds one. The
// last test runs seeded random operations against a plain model of the
// table's rules and compares every answer.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseTable, NONCE_UNIT, OWNER_ANYONE, THREAD_LIMIT, connOwner } from '../../../src/io/lease-table.ts';

/** mulberry32 as a fill function: seeded nonces, so a failing run repeats. */
function seededFill(seed: number): (out: Uint32Array) => void {
  let s = seed >>> 0;
  return (out) => {
    for (let i = 0; i < out.length; i++) {
      let t = (s = (s + 0x6d2b79f5) >>> 0);
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = (t ^ (t >>> 14)) >>> 0;
    }
  };
}

const A = connOwner(1);
const B = connOwner(2);
const nonceOf = (id: number) => Math.floor(id / NONCE_UNIT);

describe('LeaseTable ids', () => {
  it('hands out distinct non-zero safe ids that name their thread', () => {
    const t = new LeaseTable(3, 1 << 20, 4);
    const ids = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const id = t.create(i % 7, 0, 1000, A);
      assert.ok(id > 0 && Number.isSafeInteger(id));
      assert.equal(LeaseTable.threadOf(id), 3);
      ids.add(id);
    }
    assert.equal(ids.size, 1000);
    assert.equal(t.active, 1000);
  });

  it('carries 29 random bits: every nonce bit varies, even when one slot is reused again and again', () => {
    const t = new LeaseTable(0, 1024, 4);
    const n = 4096;
    const setCount = new Array<number>(29).fill(0);
    let previous = 0;
    for (let i = 0; i < n; i++) {
      const id = t.create(1, 0, 1000, A);
      assert.notEqual(nonceOf(id), previous, 'a reused slot never repeats the nonce of the lease before');
      previous = nonceOf(id);
      for (let b = 0; b < 29; b++) if (Math.floor(nonceOf(id) / 2 ** b) % 2 === 1) setCount[b]++;
      assert.equal(t.release(id, A), 1);
    }
    // Binomial(4096, 1/2): sd 32; 40%..60% is 12 sd either side.
    for (let b = 0; b < 29; b++) assert.ok(setCount[b] > 0.4 * n && setCount[b] < 0.6 * n, `nonce bit ${b} set in ${setCount[b]} of ${n} ids`);
  });

  it('gives different ids in two tables doing the same things (crypto-seeded), the same with the same seeded source', () => {
    const run = (fill?: (out: Uint32Array) => void) => {
      const t = new LeaseTable(0, 1024, 4, fill);
      return Array.from({ length: 32 }, () => t.create(1, 0, 1000, A));
    };
    assert.notDeepEqual(run(), run());
    assert.deepEqual(run(seededFill(7)), run(seededFill(7)));
  });

  it('keeps ids below 2^53 with the largest nonce, and never makes nonce 0', () => {
    const ones = new LeaseTable(15, 1 << 20, 4, (out) => out.fill(0xffffffff));
    const zeros = new LeaseTable(15, 1 << 20, 4, (out) => out.fill(0));
    for (let i = 0; i < 100; i++) {
      const a = ones.create(1, 0, 1000, A), b = zeros.create(1, 0, 1000, A);
      assert.ok(Number.isSafeInteger(a) && a < 2 ** 53, `id ${a}`);
      assert.ok(nonceOf(b) >= 1, 'nonce 0 is never used');
      assert.equal(ones.release(a, A), 1);
      assert.equal(zeros.release(b, A), 1);
    }
  });
});

describe('LeaseTable ownership', () => {
  it('releases a lease only for the owner that made it; any other owner changes nothing', () => {
    const t = new LeaseTable(1, 1024, 4);
    const id = t.create(5, 0b101, 1000, A);
    t.lastMask = -1;
    assert.equal(t.release(id, B), -1, 'another connection');
    assert.equal(t.release(id, OWNER_ANYONE), -1, 'a caller that owns nothing');
    assert.equal(t.lastMask, -1, 'a refused release reports no mask');
    assert.equal(t.active, 1);
    assert.equal(t.release(id, A), 5, 'the owner still can');
    assert.equal(t.lastMask, 0b101);
    assert.equal(t.active, 0);
  });

  it('lets any owner release a lease made for OWNER_ANYONE (the hook for HTTP without auth)', () => {
    const t = new LeaseTable(0, 1024, 4);
    const id = t.create(2, 0, 1000, OWNER_ANYONE);
    assert.equal(t.release(id, B), 2);
  });

  it('refuses a double release, stale ids, made-up ids and other threads\' ids', () => {
    const t = new LeaseTable(1, 1024, 4);
    const id = t.create(5, 0b101, 1000, A);
    assert.equal(t.release(id, A), 5);
    assert.equal(t.release(id, A), -1, 'second release');
    const reused = t.create(6, 0, 1000, A);
    assert.notEqual(reused, id, 'a reused slot gets a new id');
    assert.equal(t.release(id, A), -1, 'the old id does not release the new lease');
    for (const bad of [0, -1, 1.5, 2 ** 53, 2 ** 60, NaN, reused + 1, reused + THREAD_LIMIT, reused + NONCE_UNIT, reused - NONCE_UNIT, reused % NONCE_UNIT]) {
      assert.equal(t.release(bad, A), -1, `id ${bad}`);
    }
    assert.equal(t.active, 1);
    assert.equal(t.release(reused, A), 6);
  });

  it('maps connection ids to positive owners, wrapping below 2^31', () => {
    assert.equal(connOwner(1), 1);
    assert.equal(connOwner(2 ** 31 - 1), 2 ** 31 - 1);
    assert.equal(connOwner(2 ** 31), 1);
    for (const c of [1, 77, 2 ** 31 + 5, 2 ** 40]) assert.ok(connOwner(c) >= 1 && connOwner(c) <= 2 ** 31 - 1);
  });
});

describe('LeaseTable expiry', () => {
  it('expires leases in creation order, skipping released ones', () => {
    const t = new LeaseTable(0, 1024, 2);
    const ids = [t.create(1, 1, 100, A), t.create(2, 0, 200, A), t.create(3, 2, 300, A)];
    t.release(ids[1], A);
    const seen: [number, number][] = [];
    assert.equal(t.expire(250, (b, m) => seen.push([b, m])), 1);
    assert.deepEqual(seen, [[1, 1]]);
    assert.equal(t.expire(1000, (b, m) => seen.push([b, m])), 1);
    assert.deepEqual(seen, [[1, 1], [3, 2]]);
    assert.equal(t.active, 0);
    assert.equal(t.release(ids[2], A), -1, 'an expired lease is unknown');
  });

  it('a released lease whose slot was reused by a later lease does not hold back the sweep', () => {
    // Mutation check: a schedule whose head names a slot that a later lease
    // reuses, read as that later lease (due at 1000), stopped the sweep: the
    // lease due at 100 behind it expired only at 1000.
    for (const mask of [0, 1]) {
      const t = new LeaseTable(0, 1024, 4);
      const first = t.create(1, mask, 100, A);
      t.create(2, mask, 100, A);
      assert.equal(t.release(first, A), 1);
      t.create(3, mask, 1000, A); // reuses the slot of `first`
      const seen: number[] = [];
      assert.equal(t.expire(150, (b) => seen.push(b)), 1, `mask ${mask}`);
      assert.deepEqual(seen, [2], 'the lease due at 100 ends at the sweep at 150');
      assert.equal(t.expire(999, (b) => seen.push(b)), 0);
      assert.equal(t.expire(1000, (b) => seen.push(b)), 1);
      assert.deepEqual(seen, [2, 3]);
    }
  });

  it('sweeps both lists: a lease holding no slot is not held back by an older slot holder, nor the reverse', () => {
    const t = new LeaseTable(0, 1024, 4);
    t.create(1, 1, 500, A); // slot holder, due late
    t.create(2, 0, 100, A); // no slot, due early
    t.create(3, 0, 600, A);
    t.create(4, 1, 150, A); // slot holder behind a later one: a TTL cut by a reload
    const seen: number[] = [];
    t.expire(200, (b) => seen.push(b));
    assert.deepEqual(seen, [2], 'the plain lease due at 100 ends; the slot holder due at 150 waits for the one due at 500 before it');
    t.expire(500, (b) => seen.push(b));
    assert.deepEqual(seen.sort(), [1, 2, 4]);
  });
});

describe('LeaseTable when full', () => {
  it('ends the oldest lease without a concurrency slot, wherever the slot holders sit; full of slot holders, refuses', () => {
    const t = new LeaseTable(0, 8, 4);
    const slotted = [t.create(1, 1, 1e9, A)];
    const plain = Array.from({ length: 6 }, (_, i) => t.create(10 + i, 0, 1e9, A));
    slotted.push(t.create(2, 1, 1e9, A));
    const id = t.create(99, 0, 1e9, B);
    assert.ok(id > 0);
    assert.equal(t.lastEvicted, 10, 'the oldest lease holding no slot made room');
    assert.equal(t.release(plain[0], A), -1, 'the evicted lease is gone');
    assert.equal(t.active, 8);
    t.create(98, 0, 1e9, B);
    assert.equal(t.lastEvicted, 11, 'then the next oldest');
    t.create(97, 1, 1e9, B);
    assert.equal(t.lastEvicted, 12, 'a slot holder may push out a lease without one');
    for (const s of slotted) assert.ok(t.release(s, A) > 0, 'slot holders are never evicted');
    const full = new LeaseTable(0, 2, 2);
    full.create(1, 1, 1e9, A); full.create(1, 1, 1e9, A);
    assert.equal(full.create(1, 1, 1e9, A), 0);
    assert.equal(full.lastEvicted, -1);
    assert.equal(full.create(1, 0, 1e9, A), 0, 'nor is a lease without a slot made then');
  });

  it('grows to its limit; churn does not grow anything', () => {
    const t = new LeaseTable(0, 64, 4);
    const held: number[] = [];
    for (let i = 0; i < 64; i++) held.push(t.create(0, 1, 1e9, A));
    assert.equal(t.create(0, 1, 1e9, A), 0, 'full');
    t.release(held.pop()!, A);
    for (let i = 0; i < 100_000; i++) {
      const id = t.create(0, 1, 1e9, A);
      assert.ok(id > 0, `churn ${i}`);
      t.release(id, A);
    }
    assert.equal(t.active, 63);
  });
});

interface ModelLease { id: number; bucket: number; mask: number; expiresAt: number; owner: number }

describe('LeaseTable against a model (seeded random operations)', () => {
  it('answers every create, release and sweep as the rules say', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rng = seededFill(seed * 7919);
      const r = new Uint32Array(1);
      const rand = (n: number) => { rng(r); return r[0] % n; };
      const max = 1 + rand(40);
      const t = new LeaseTable(seed % THREAD_LIMIT, max, 1 + rand(4), seededFill(seed));
      // The model: each list in creation order; a sweep pops each list's head while due.
      const lists: ModelLease[][] = [[], []];
      const dead: number[] = [];
      let now = 0, ttl = 50;
      for (let step = 0; step < 20_000; step++) {
        const op = rand(10);
        const where = `seed ${seed} step ${step}`;
        if (op < 4) {
          const mask = rand(3) === 0 ? 1 + rand(3) : 0;
          const owner = 1 + rand(3), bucket = rand(100);
          const size = lists[0].length + lists[1].length;
          let evicted = -1;
          if (size === max) {
            if (lists[0].length === 0) { assert.equal(t.create(bucket, mask, now + ttl, owner), 0, where); continue; }
            const e = lists[0].shift()!;
            evicted = e.bucket;
            dead.push(e.id);
          }
          const id = t.create(bucket, mask, now + ttl, owner);
          assert.ok(id > 0, where);
          assert.equal(t.lastEvicted, evicted, `${where}: eviction`);
          lists[mask === 0 ? 0 : 1].push({ id, bucket, mask, expiresAt: now + ttl, owner });
        } else if (op < 7) {
          const all = [...lists[0], ...lists[1]];
          const kind = rand(4);
          const pick = all.length > 0 ? all[rand(all.length)] : undefined;
          let id: number, owner: number;
          if (kind === 0 && dead.length > 0) { id = dead[rand(dead.length)]; owner = 1 + rand(3); } else if (kind === 1) { id = rand(2 ** 30) * NONCE_UNIT + rand(NONCE_UNIT); owner = 1 + rand(3); } else if (pick) { id = pick.id; owner = kind === 2 ? 1 + rand(3) : pick.owner; } else continue;
          const hit = all.find((l) => l.id === id && l.owner === owner);
          t.lastMask = -1;
          const got = t.release(id, owner);
          if (hit === undefined) { assert.equal(got, -1, `${where}: release of ${id} by ${owner}`); assert.equal(t.lastMask, -1); continue; }
          assert.equal(got, hit.bucket, `${where}: release of a held lease by its owner`);
          assert.equal(t.lastMask, hit.mask);
          const list = lists[hit.mask === 0 ? 0 : 1];
          list.splice(list.indexOf(hit), 1);
          dead.push(id);
        } else if (op < 9) {
          now += rand(30);
          const want: [number, number][] = [];
          for (const list of lists) while (list.length > 0 && list[0].expiresAt <= now) { const l = list.shift()!; want.push([l.bucket, l.mask]); dead.push(l.id); }
          const got: [number, number][] = [];
          assert.equal(t.expire(now, (b, m) => got.push([b, m])), want.length, `${where}: sweep at ${now}`);
          assert.deepEqual(got.sort(), want.sort(), `${where}: swept leases`);
        } else {
          ttl = 1 + rand(100); // a reload that changes lease_ttl_ms
        }
        assert.equal(t.active, lists[0].length + lists[1].length, `${where}: active`);
        if (dead.length > 200) dead.splice(0, 100);
      }
    }
  });
});
