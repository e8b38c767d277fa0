// The work-conserving parts of the bucket table, one mechanism at a time, on
// a ManualClock: the sliding-window gate (takes come back a second later,
// per thread; capacity changes; refunds; flush), borrowing (ceiling, shared
// bucket, spills pulled from idle services, the priority rule at the pool),
// and the protection of assured rates when the gate refuses them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ASSURED_HOLD_MS, BucketTable, FAIL_PRIORITY, FAIL_TOKENS, GRANTED, failBucket, failReason,
} from '../../../src/shm/bucket-table.ts';
import { MILLI, TOKENS_MILLI_INDEX, allocateShm, stateBase } from '../../../src/shm/layout.ts';
import { WINDOW_MS, WindowRings } from '../../../src/shm/window-rings.ts';
import { bucketTables } from '../../fixtures/bucket-tables.ts';

function setup(pool: Record<string, unknown>) {
  const { keys, views, clock, io: [t0, t1], control } = bucketTables([pool], 2);
  const tokens = (b: number) => views.state[stateBase(b) + TOKENS_MILLI_INDEX] / MILLI;
  return { keys, views, clock, t0, t1, control, tokens, p: keys.lookup('p') };
}

/** Takes one token at a time on `leaf` until refused; returns how many were granted. */
function drain(t: BucketTable, leaf: number, now: number, max = 100_000): number {
  let n = 0;
  while (n < max && t.acquire(leaf, MILLI, t.priority(leaf), true, now) === GRANTED) n++;
  return n;
}

const ONE_SERVICE = { name: 'p', capacity_tps: 100, burst: 100, services: [{ name: 'a', priority: 'HIGH', max_tps: 1000, burst: 1000 }] };

describe('the sliding-window gate', () => {
  it('admits the capacity at once, nothing more for a second, then what came back', () => {
    const { keys, t0, tokens, p } = setup(ONE_SERVICE);
    const a = keys.lookup('p/a');
    assert.equal(drain(t0, a, 0), 100, 'the window holds the capacity');
    const r = t0.acquire(a, MILLI, 1, true, 500);
    assert.equal(failBucket(r), p);
    assert.equal(failReason(r), FAIL_TOKENS);
    assert.equal(drain(t0, a, 999), 0, 'still within the second');
    assert.equal(drain(t0, a, WINDOW_MS), 100, 'a manual clock gives a take back exactly 1 s later');
    assert.equal(tokens(p), 0);
  });

  it('hands a busy second out as a stream: its pace (the burst, or 250 ms of the rate) at once, the capacity over the second', () => {
    const { keys, t0 } = setup({ ...ONE_SERVICE, burst: 10 });
    const a = keys.lookup('p/a');
    assert.equal(drain(t0, a, 0), 25, '250 ms of 100/s, more than the burst of 10');
    assert.equal(drain(t0, a, 100), 20, 'then what the pace earns at twice the rate: 20 in 100 ms');
    let total = 45;
    for (let t = 110; t < WINDOW_MS; t += 10) total += drain(t0, a, t);
    assert.equal(total, 100, 'the window: the capacity in the second, no more');
    assert.equal(drain(t0, a, WINDOW_MS - 1), 0);
  });

  it('gives a take back 1001 ms later on a running clock (its stamp is the floor of the time)', () => {
    const rings = new WindowRings(allocateShm(1, 1).state, 1, false);
    assert.equal(rings.delayMs, WINDOW_MS + 1);
    assert.equal(new WindowRings(allocateShm(1, 1).state, 1, true).delayMs, WINDOW_MS);
  });

  it('counts each thread\'s takes in its own ring: another thread neither returns them nor is charged for them', () => {
    const { keys, t0, t1, p, tokens } = setup(ONE_SERVICE);
    const a = keys.lookup('p/a');
    assert.equal(drain(t0, a, 0, 60), 60);
    assert.equal(drain(t1, a, 10), 40);
    assert.equal(drain(t1, a, 1000), 0, 't1 took nothing at 0: nothing comes back to it');
    t0.flushAllowances(1000);
    assert.equal(tokens(p), 60, 't0 gives back its 60 when it runs (here: its idle flush)');
    assert.equal(drain(t1, a, 1010), 100, 't1\'s 40 from 10 ms come back at 1010');
  });

  it('follows the capacity at once when it changes, and takes back exactly what a refund returns', () => {
    const { keys, t0, control, p, tokens } = setup(ONE_SERVICE);
    const a = keys.lookup('p/a');
    assert.equal(drain(t0, a, 0, 30), 30);
    control.setRate(p, 50, 0);
    assert.equal(tokens(p), 20, '50 less the 30 taken in the last second');
    control.setRate(p, 20, 0);
    assert.equal(tokens(p), -10, 'below what the last second took: nothing until enough comes back');
    assert.equal(t0.remaining(p), 0, 'remaining() never reports less than 0');
    control.setRate(p, 100, 0);
    t0.undoAcquire(a, MILLI, 0);
    assert.equal(tokens(p), 71, 'an undone grant goes back to the window');
    t0.refund(p, 100 * MILLI);
    assert.equal(tokens(p), 100, 'a refund takes back only what this thread took in this millisecond');
  });

  it('tells an idle thread when its next take is due back', () => {
    const { keys, t0 } = setup(ONE_SERVICE);
    const a = keys.lookup('p/a');
    assert.equal(t0.windowReturnInMs(0), -1);
    drain(t0, a, 5, 3);
    assert.equal(t0.windowReturnInMs(100), 905);
    assert.equal(t0.windowReturnInMs(2000), 0);
    t0.flushAllowances(2000);
    assert.equal(t0.windowReturnInMs(2000), -1);
  });
});

const TWO_SERVICES = {
  name: 'p', capacity_tps: 1000, burst: 50, upstream: { window: 'token_bucket' }, services: [
    { name: 'hi', priority: 'CRITICAL', max_tps: 1000, burst: 20 },
    { name: 'lo', priority: 'LOW', max_tps: 300, burst: 20 },
  ],
};

/** The two-service pool with assured rates `hi` and `lo` (tokens/s) written as the controller writes them. */
function allocated(hi: number, lo: number) {
  const s = setup(TWO_SERVICES);
  const [h, l] = [s.keys.lookup('p/hi'), s.keys.lookup('p/lo')];
  s.control.setRate(h, hi, 0); s.control.setLoan(h, 1000, 20, 0);
  s.control.setRate(l, lo, 0); s.control.setLoan(l, 300, 20, 0);
  s.control.setLoan(s.p, 1000 - hi - lo, 50, 0);
  return { ...s, h, l };
}

describe('borrowing', () => {
  it('takes the assured bucket first, then borrows from the ceiling and the pool\'s shared bucket', () => {
    const { t0, h, p, control } = allocated(100, 100);
    assert.equal(drain(t0, h, 0), 20, 'at 0 ms: its burst, which its ceiling (passed by every take) also held');
    assert.ok(!t0.lastBorrowed);
    assert.equal(drain(t0, h, 10), 1 + 9, '10 ms later: 1 assured, 9 borrowed (a 1000/s ceiling)');
    assert.ok(t0.lastBorrowed);
    assert.equal(control.loanTokens(p), 50 - 9, 'lent by the shared bucket (full at 50)');
  });

  it('never passes max_tps: every take passes the ceiling, which refills at max_tps', () => {
    const { t0, l } = allocated(100, 300);
    assert.equal(drain(t0, l, 0), 20);
    assert.equal(drain(t0, l, 100), 20, 'an assured rate at max_tps: no borrowing, its burst caps it');
  });

  it('never grants a service more than max_tps and one burst in a second, assured and borrowed together', () => {
    const s = setup({ name: 'p', capacity_tps: 2000, burst: 100, services: [
      { name: 'a', priority: 'HIGH', max_tps: 600, burst: 30 }, { name: 'b', priority: 'LOW', max_tps: 2000, burst: 100 },
    ] });
    const a = s.keys.lookup('p/a');
    // As the controller writes them (bucket-writes.ts): half of max_tps assured, the rest of the pool lent.
    s.control.setRate(a, 300, 0); s.control.setLoan(a, 600, 30, 0); s.control.setLoan(s.p, 1700, 100, 0);
    s.control.refill(a, 1000); // idle for a second: every bucket full
    let granted = 0;
    for (let ms = 1000; ms < 2000; ms++) granted += drain(s.t0, a, ms);
    assert.ok(granted <= 600 + 30, `${granted} in one second`);
    assert.ok(granted >= 600, `and it does get max_tps: ${granted}`);
  });

  it('lends what a full service bucket overflows, pulled from an idle service when the shared bucket is short', () => {
    const s = setup({ name: 'p', capacity_tps: 1000, burst: 50, services: [
      { name: 'hi', priority: 'CRITICAL', max_tps: 1000, burst: 20 },
      { name: 'lo', priority: 'LOW', max_tps: 1000, burst: 20 },
    ] });
    const h = s.keys.lookup('p/hi'), l = s.keys.lookup('p/lo');
    s.control.setRate(h, 0, 0); s.control.setLoan(h, 1000, 1000, 0); // hi is assured nothing: it borrows
    s.control.setRate(l, 800, 0); // lo is assured 800/s and idle
    s.control.setLoan(s.p, 0, 50, 0); // the shared bucket lends only what it holds and what overflows
    assert.equal(drain(s.t0, h, 0), 20, 'hi\'s own burst, which emptied its ceiling too');
    assert.equal(drain(s.t0, h, 200), 50 + 50, 'the shared bucket\'s 50, then lo\'s overflow of 200 ms (160) pulled, of which it holds 50');
    assert.equal(s.control.loanTokens(s.p), 0);
    assert.equal(drain(s.t0, h, 205), 4, 'what lo overflowed in the next 5 ms (800/s)');
    assert.equal(drain(s.t0, l, 205), 20, 'lo keeps its own burst');
  });

  it('lets only the strongest waiting class borrow; assured takes pass every waiter at the pool', () => {
    const { t0, h, l, p } = allocated(0, 20);
    t0.markWaiter(p, 0, 1); // a CRITICAL waiter blocked at the pool
    assert.equal(drain(t0, l, 0), 20, 'lo\'s assured burst, whatever waits at the pool');
    const r = t0.acquire(l, MILLI, 3, true, 0);
    assert.equal(failReason(r), FAIL_PRIORITY, 'lo may not borrow past a stronger waiter');
    assert.equal(failBucket(r), p);
    assert.equal(drain(t0, h, 0), 20 + 0, 'hi, as strong as the waiter, borrows when queued (its burst; the shared bucket\'s 50 are in its ceiling\'s way)');
    t0.markWaiter(p, 0, -1);
  });
});

describe('assured rates under a refusing gate', () => {
  // The pool's burst (its pace, its shared bucket's size) is the whole window: these cases fill the window at once.
  it('a refused take goes back whole, its service keeps what it earns meanwhile, and borrowers stand aside', () => {
    const s = setup({ name: 'p', capacity_tps: 100, burst: 100, services: [
      { name: 'v', priority: 'LOW', max_tps: 100, burst: 5 },
      { name: 'b', priority: 'CRITICAL', max_tps: 100, burst: 40 },
    ] });
    const v = s.keys.lookup('p/v'), b = s.keys.lookup('p/b');
    s.control.setRate(v, 50, 0); s.control.setLoan(v, 50, 5, 0);
    s.control.setRate(b, 0, 0); s.control.setLoan(b, 100, 40, 0); // b is assured nothing: it borrows
    s.control.setLoan(s.p, 50, 10, 0);
    assert.equal(drain(s.t0, b, 0), 40, 'b: its (initial) burst');
    assert.equal(drain(s.t0, v, 0), 5);
    s.control.setRate(s.p, 45, 0); // the upstream shrinks: the window is full
    const r = s.t0.acquire(v, MILLI, 3, true, 100);
    assert.equal(failBucket(r), s.p, 'v\'s assured take is refused by the gate');
    assert.equal(failReason(r), FAIL_TOKENS);
    assert.equal(s.tokens(v), 5, 'and went back whole');
    const borrow = s.t0.acquire(b, MILLI, 0, true, 100 + ASSURED_HOLD_MS - 1);
    assert.equal(failReason(borrow), FAIL_PRIORITY, 'borrowing, even CRITICAL, stands aside for a while');
    assert.equal(failBucket(borrow), s.p);
    s.control.refill(v, 119);
    assert.ok(s.tokens(v) > 5.9, `v holds what it earned since, above its burst: it is owed it (${s.tokens(v)})`);
    s.control.setBurst(v, 5);
    assert.ok(s.tokens(v) > 5.9, 'an unchanged burst written again does not trim it');
  });

  it('keeps what a refused service is owed within an Int32 at the largest rate and burst', () => {
    const s = setup({ name: 'p', capacity_tps: 2_000_000, burst: 2_000_000, services: [
      { name: 'v', priority: 'LOW', max_tps: 2_000_000, burst: 2_000_000 },
    ] });
    const v = s.keys.lookup('p/v');
    s.control.setRate(s.p, 0, 0); // a gate that admits nothing
    for (let t = 1; t < 400; t += 10) { // refused again and again: it keeps earning above its burst
      assert.equal(failBucket(s.t0.acquire(v, MILLI, 3, true, t)), s.p);
      s.control.refill(v, t + 9);
    }
    assert.equal(s.views.state[stateBase(v) + TOKENS_MILLI_INDEX], 2 ** 31 - 1, 'held up to 2^31 - 1 milli-tokens, never wrapped negative');
  });

  it('a stored burst yields to a refused assured rate', () => {
    const s = setup({ name: 'p', capacity_tps: 100, burst: 100, services: [
      { name: 'v', priority: 'LOW', max_tps: 100, burst: 5 },
      { name: 'x', priority: 'CRITICAL', max_tps: 100, burst: 60 },
    ] });
    const v = s.keys.lookup('p/v'), x = s.keys.lookup('p/x');
    s.control.setLoan(s.p, 0, 10, 0);
    s.control.setRate(v, 50, 0); s.control.setRate(x, 50, 0);
    assert.equal(drain(s.t0, v, 0), 5);
    assert.equal(drain(s.t0, x, 0, 40), 40, 'x keeps 20 of its burst');
    s.control.setRate(s.p, 45, 0); // the window is full
    assert.notEqual(s.t0.acquire(v, MILLI, 3, true, 100), GRANTED, 'v\'s assured take is refused');
    assert.notEqual(s.t0.acquire(x, MILLI, 0, true, 101), GRANTED, 'so is x\'s');
    assert.ok(s.tokens(x) <= 2, `x kept only 20 ms of its rate (${s.tokens(x)} of 25), the rest went to the shared bucket`);
    assert.ok(s.tokens(v) >= 5, 'v keeps what it is owed');
  });
});
