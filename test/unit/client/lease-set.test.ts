// LeaseSet under seeded random adds and deletes (collisions forced by small
// value ranges), against a model of what it promises: a lease added within
// the last `perGeneration` adds and not deleted since is there; a lease
// deleted since its last add, never added, or last added more than
// 2 * perGeneration adds ago is not; in between, either.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseSet } from '../../../src/client/lease-set.ts';

/** Seeded xorshift, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

test('add, has, delete; 0 is never a lease', () => {
  const s = new LeaseSet(10);
  s.add(5);
  s.add(2 ** 53 - 1);
  assert.equal(s.has(5), true);
  assert.equal(s.has(2 ** 53 - 1), true);
  assert.equal(s.has(6), false);
  assert.equal(s.delete(0), false);
  assert.equal(s.delete(5), true);
  assert.equal(s.delete(5), false);
  assert.equal(s.size, 1);
  s.clear();
  assert.equal(s.size, 0);
  assert.equal(s.has(2 ** 53 - 1), false);
});

test('the last perGeneration adds are kept, older ones go a generation at a time', () => {
  const s = new LeaseSet(3);
  for (const l of [1, 2, 3]) s.add(l);
  for (const l of [4, 5, 6]) s.add(l); // 1..3 are now the previous generation
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((l) => s.has(l)), [true, true, true, true, true, true]);
  s.add(7); // a new generation: 1..3 are forgotten
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((l) => s.has(l)), [false, false, false, true, true, true, true]);
  // A lease added again in a later generation is released once.
  s.add(4);
  assert.equal(s.delete(4), true);
  assert.equal(s.delete(4), false);
});

for (const [seed, per, space] of [[1, 50, 200], [7, 1000, 3000], [42, 5000, 2 ** 40], [99, 300, 2 ** 53 - 1]] as const) {
  test(`seeded random use keeps its promise (seed ${seed}, perGeneration ${per})`, () => {
    const rand = rng(seed);
    const s = new LeaseSet(per);
    const lastAdd = new Map<number, number>(); // lease -> number of the last add; deleted leases removed
    const live: number[] = []; // candidates for deletes (may hold stale entries)
    let adds = 0;
    const pick = (): number => 1 + Math.floor(rand() * space);
    const expect = (l: number): boolean | null => {
      const at = lastAdd.get(l);
      if (at === undefined || adds - at > 2 * per) return false;
      return adds - at <= per ? true : null;
    };
    for (let i = 0; i < 40_000; i++) {
      const r = rand();
      if (r < 0.55) {
        const l = pick();
        s.add(l);
        adds++;
        lastAdd.set(l, adds);
        live.push(l);
      } else if (r < 0.9 && live.length > 0) {
        // Mostly recent leases, as releases are.
        const l = rand() < 0.8 ? live[live.length - 1 - Math.floor(rand() * Math.min(live.length, 64))] : pick();
        const want = expect(l);
        const got = s.delete(l);
        if (want !== null) assert.equal(got, want, `delete ${l} at step ${i}`);
        lastAdd.delete(l);
        assert.equal(s.has(l), false);
      } else {
        const l = pick();
        const want = expect(l);
        if (want !== null) assert.equal(s.has(l), want, `has ${l} at step ${i}`);
      }
      if (live.length > 4 * per) live.splice(0, live.length - 2 * per);
    }
    for (const [l] of lastAdd) {
      const want = expect(l);
      if (want !== null) assert.equal(s.has(l), want, `has ${l} at the end`);
    }
  });
}
