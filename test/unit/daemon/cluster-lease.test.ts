// A node's share from its lease (src/daemon/cluster/lease-state.ts), on a
// hand-driven clock: joining at zero, the grant while the lease covers the
// coming tick, the safe share once it does not (first no more than held
// while a peer's lease may still run, then the safe share), 'even' with and
// without nodes seen, fractions, and the store's learning mode.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseState, newPoolLease } from '../../../src/daemon/cluster/lease-state.ts';

const LEASE = 1000;
const TICK = 100;
const CAP = 900;

function node(safeShare: 'even' | number = 'even', startedAtMs = 0) {
  return new LeaseState({ leaseMs: LEASE, tickMs: TICK, safeShare }, startedAtMs);
}

describe('cluster lease state', () => {
  it('joins at zero, in learning, for one lease; never at capacity', () => {
    const s = node(0.5);
    const p = newPoolLease();
    assert.equal(s.mode(0), 'learning');
    assert.equal(s.shareTps(p, CAP, 0), 0);
    assert.equal(s.shareTps(p, CAP, LEASE - 1), 0);
    // No answer within a lease: safe, but held is 0 and a peer's lease may still run: 0 a while longer.
    s.failed(LEASE);
    assert.equal(s.mode(LEASE), 'safe');
    assert.equal(s.shareTps(p, CAP, LEASE), 0);
    assert.equal(s.shareTps(p, CAP, 2 * LEASE), CAP * 0.5, 'then the safe share (a fraction)');
  });

  it('grants the store\'s share while the lease covers the whole coming tick', () => {
    const s = node();
    const p = newPoolLease();
    s.renewed(50, 'coordinated');
    p.grantTps = 300;
    p.nodesSeen = 3;
    assert.equal(s.mode(100), 'coordinated');
    assert.equal(s.shareTps(p, CAP, 100), 300);
    assert.equal(p.heldTps, 300, 'what it grants is what it holds');
    assert.equal(s.shareTps(p, CAP, 50 + LEASE - TICK), 300, 'the last tick the lease covers');
    assert.equal(s.mode(50 + LEASE - TICK + 1), 'safe', 'a lease that ends within the coming tick is not used');
  });

  it('in safe mode holds no more than it held until a peer\'s lease has surely ended, then the even share', () => {
    const s = node('even');
    const p = newPoolLease();
    s.renewed(0, 'coordinated');
    p.grantTps = 100; // a small share: the peers hold the rest
    p.nodesSeen = 3;
    s.shareTps(p, CAP, 0);
    s.failed(400); // the store stops answering
    assert.equal(s.shareTps(p, CAP, 500), 100, 'lease still valid');
    const safeAt = LEASE - TICK + 1;
    assert.equal(s.mode(safeAt), 'safe');
    assert.equal(s.shareTps(p, CAP, safeAt), 100, 'min(held 100, even 300)');
    assert.equal(s.shareTps(p, CAP, 400 + LEASE - 1), 100, 'a peer renewed before 400 may hold its share until 1400');
    assert.equal(s.shareTps(p, CAP, 400 + LEASE), CAP / 3, 'then capacity / nodes last seen');
  });

  it('shrinks at once to the safe share when it held more', () => {
    const s = node('even');
    const p = newPoolLease();
    s.renewed(0, 'coordinated');
    p.grantTps = 800;
    p.nodesSeen = 2;
    s.shareTps(p, CAP, 0);
    s.failed(100);
    assert.equal(s.shareTps(p, CAP, LEASE), CAP / 2, 'min(held 800, even 450)');
  });

  it('with a call pending and none failed, the peers\' end keeps moving: no more than held', () => {
    const s = node('even');
    const p = newPoolLease();
    s.renewed(0, 'coordinated');
    p.grantTps = 100;
    p.nodesSeen = 3;
    s.shareTps(p, CAP, 0);
    for (const t of [LEASE, 3 * LEASE, 10 * LEASE]) assert.equal(s.shareTps(p, CAP, t), 100);
  });

  it('"even" with no node ever seen is zero: a node that never reached the store does not guess the cluster\'s size', () => {
    const s = node('even');
    const p = newPoolLease();
    s.failed(0);
    assert.equal(s.shareTps(p, CAP, 5 * LEASE), 0);
    assert.equal(s.safeTps(p, CAP), 0);
  });

  it('reports the store\'s learning mode while the lease is valid, and renews from the send time', () => {
    const s = node();
    const p = newPoolLease();
    s.renewed(200, 'learning');
    p.grantTps = 250;
    assert.equal(s.mode(300), 'learning');
    assert.equal(s.shareTps(p, CAP, 300), 250);
    s.renewed(100, 'coordinated'); // an older request answered late never shortens the lease
    assert.equal(s.valid(200 + LEASE - TICK), true);
    assert.equal(s.mode(300), 'coordinated');
  });

  it('never grants above the capacity, whatever the store said', () => {
    const s = node();
    const p = newPoolLease();
    s.renewed(0, 'coordinated');
    p.grantTps = 5000;
    assert.equal(s.shareTps(p, CAP, 0), CAP);
  });
});
