// A cluster node's share: a rise waits a whole second (the node that gave it
// up may have granted it within the upstream's window), a cut applies at
// once, and a rise that follows a peer leaving applies at once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShareRises } from '../../../src/daemon/cluster/cluster-node.ts';

test('a rise applies after a second, a cut at once', () => {
  const r = new ShareRises();
  assert.equal(r.cap(200, 3, 0), 200);
  assert.equal(r.cap(300, 3, 100), 200, 'a rise waits');
  assert.equal(r.cap(300, 3, 1000), 200);
  assert.equal(r.cap(300, 3, 1101), 300, 'held a whole second');
  assert.equal(r.cap(150, 3, 1200), 150, 'a cut applies at once');
  assert.equal(r.cap(300, 3, 1300), 150);
});

test('a rise after a peer left applies at once', () => {
  const r = new ShareRises();
  assert.equal(r.cap(200, 3, 0), 200);
  assert.equal(r.cap(300, 2, 2000), 300);
});
