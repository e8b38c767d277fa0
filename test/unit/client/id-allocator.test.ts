import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdAllocator } from '../../../src/client/id-allocator.ts';
import { MAX_UINT32 } from '../../../src/protocol/opcodes.ts';

const none = (): boolean => false;

test('ids start at 1 and count up', () => {
  const ids = new IdAllocator();
  assert.deepEqual([ids.next(none), ids.next(none), ids.next(none)], [1, 2, 3]);
});

test('ids wrap around after 2^32 - 1 and skip 0', () => {
  const ids = new IdAllocator(MAX_UINT32 - 1);
  assert.equal(ids.next(none), MAX_UINT32);
  assert.equal(ids.next(none), 1);
});

test('ids still pending are skipped, also across the wrap', () => {
  const pending = new Set([1, 2, 4]);
  const ids = new IdAllocator(MAX_UINT32);
  const inUse = (id: number): boolean => pending.has(id);
  assert.equal(ids.next(inUse), 3);
  assert.equal(ids.next(inUse), 5);
});

test('seeded random use: never 0, never an id in use, always uint32', () => {
  let seed = 42;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const ids = new IdAllocator(MAX_UINT32 - 500);
  const inUse = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    if (inUse.size > 0 && rand() < 0.45) {
      const victim = [...inUse][Math.floor(rand() * inUse.size)];
      inUse.delete(victim);
    } else {
      const id = ids.next((x) => inUse.has(x));
      assert.ok(id >= 1 && id <= MAX_UINT32 && Number.isInteger(id));
      assert.ok(!inUse.has(id));
      inUse.add(id);
    }
  }
});
