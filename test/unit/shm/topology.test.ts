// The TOPOLOGY region (shm/topology.ts): written once into shared memory by
// BucketTable.initialize, found there by another view of the same buffer (an
// I/O thread's) without computing it again, and equal to its definition:
// each bucket's chain up to its pool, the guard indices, window rings and
// each pool's services.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { BUCKET_FIELDS, CONCURRENCY_INDEX, WAITERS_ANY_INDEX, allocateShm, viewsOf } from '../../../src/shm/layout.ts';
import { GUARDS, MAX_DEPTH, topologyOf } from '../../../src/shm/topology.ts';

const POOLS = [
  { name: 'w', capacity_tps: 100, upstream: { window: 'sliding_1s' }, services: [
    { name: 'a', priority: 'HIGH', max_tps: 50, endpoints: [{ name: 'e', max_tps: 10 }, { name: 'f', max_tps: 10 }] },
    { name: 'b', priority: 'LOW', max_tps: 50 },
  ] },
  { name: 't', capacity_tps: 100, upstream: { window: 'token_bucket' }, services: [{ name: 'c', priority: 'LOW', max_tps: 50 }] },
];

function setup() {
  const config = validateConfig({ pools: POOLS, log: { level: 'silent' } }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 2);
  return { keys, views };
}

describe('topology in shared memory', () => {
  it('is written by initialize and found, not recomputed, through another view of the buffer', () => {
    const { keys, views } = setup();
    const other = viewsOf(views.sab, keys.size, 2);
    assert.equal(other.topologyBytes[0], 0, 'nothing there before initialize');
    BucketTable.initialize(views, keys, 0);
    const seen = other.topologyBytes.slice();
    assert.notEqual(seen[0], 0);
    const t = topologyOf(other);
    assert.equal(t.chains.buffer, views.sab, 'a view of the shared buffer, not a copy');
    assert.deepEqual(other.topologyBytes, seen);
  });

  it("holds each chain, its guards, the window rings and each pool's services", () => {
    const { keys, views } = setup();
    BucketTable.initialize(views, keys, 0);
    const t = topologyOf(views);
    const at = (k: string) => keys.find(k);
    const [w, a, e, f, b, tp, c] = ['w', 'w/a', 'w/a/e', 'w/a/f', 'w/b', 't', 't/c'].map(at);
    const chain = (x: number) => Array.from(t.chains.subarray(x * MAX_DEPTH, x * MAX_DEPTH + MAX_DEPTH));
    assert.deepEqual(chain(e), [e, a, w]);
    assert.deepEqual(chain(b), [b, w, -1]);
    assert.deepEqual(chain(tp), [tp, -1, -1]);
    assert.deepEqual([w, a, e, b, tp, c].map((x) => t.depthOf[x]), [1, 2, 3, 2, 1, 2]);
    assert.deepEqual([w, a, e, f, b, tp, c].map((x) => t.hasChildren[x]), [1, 1, 0, 0, 0, 1, 0]);
    // A short chain's guards repeat its pool.
    assert.deepEqual(Array.from(t.guards.subarray(b * GUARDS, b * GUARDS + GUARDS)), [
      b * BUCKET_FIELDS + WAITERS_ANY_INDEX, b * BUCKET_FIELDS + CONCURRENCY_INDEX, w * BUCKET_FIELDS + WAITERS_ANY_INDEX,
      w * BUCKET_FIELDS + CONCURRENCY_INDEX, w * BUCKET_FIELDS + WAITERS_ANY_INDEX, w * BUCKET_FIELDS + CONCURRENCY_INDEX]);
    assert.deepEqual([w, tp].map((x) => t.ordinal[x]), [0, 1]);
    assert.equal(t.ordinal[a], -1);
    // Only the sliding-window pool's buckets count on a ring.
    assert.deepEqual([w, a, e, b, tp, c].map((x) => t.gateRing[x]), [0, 0, 0, 0, -1, -1]);
    const services = (p: number) => Array.from(t.serviceList.subarray(t.serviceFrom[p], t.serviceFrom[p] + t.serviceCount[p])).sort();
    assert.deepEqual(services(w), [a, b].sort());
    assert.deepEqual(services(tp), [c]);
  });
});
