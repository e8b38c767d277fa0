// min_tps as a reservation at the pool's gate (bucket-table.ts, pool-loans.ts)
// when the gate gives less than the effective capacity for a while: after
// the upstream drops, a window gate still counts the last second's takes at
// the old rate, so it admits nothing, then a trickle. The callers are played
// as the simulator plays them (10 ms steps, services in priority order, a
// FIFO each, waiters registered where they were stopped), on a ManualClock.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeAllocations } from '../../../src/control/bucket-writes.ts';
import { GRANTED, failBucket } from '../../../src/shm/bucket-table.ts';
import { MILLI } from '../../../src/shm/layout.ts';
import { bucketTables } from '../../fixtures/bucket-tables.ts';

interface Caller { key: number; priority: number; queue: number; waitingAt: number; granted: number }

function setup(window: string) {
  const { keys, clock, io: [io], control, limits } = bucketTables([{ name: 'p', capacity_tps: 1500, upstream: { window }, services: [
    { name: 'c', priority: 'CRITICAL', min_tps: 200, max_tps: 1500 },
    { name: 'h', priority: 'HIGH', max_tps: 1500 },
    { name: 'm', priority: 'MEDIUM', min_tps: 50, max_tps: 1500 },
    { name: 'l', priority: 'LOW', max_tps: 1500 },
  ] }]);
  const pool = keys.lookup('p');
  const callers: Caller[] = ['c', 'h', 'm', 'l'].map((n) => {
    const key = keys.lookup(`p/${n}`);
    return { key, priority: keys.specs[key].priority, queue: 0, waitingAt: -1, granted: 0 };
  });
  /** The controller's tick at t0: refill, then this allocation (tokens/s per service) within `effectiveTps`. */
  const tick = (t0: number, effectiveTps: number, alloc: number[]): void => {
    clock.set(t0);
    for (let b = 0; b < keys.size; b++) control.refill(b, t0);
    writeAllocations(control, limits, [{ pool, effectiveTps, burst: limits[pool].burst, services: callers.map((c) => c.key),
      endpoints: callers.map(() => []), alloc }], t0);
  };
  /** One second of flooding demand (each service asks `tps`), in 10 ms steps, CRITICAL first; returns what each was granted. */
  const second = (t0: number, tps: number[]): number[] => {
    for (const c of callers) c.granted = 0;
    for (let ms = t0; ms < t0 + 1000; ms += 10) {
      clock.set(ms);
      callers.forEach((c, i) => {
        c.queue += (tps[i] * 10) / 1000;
        if (c.waitingAt >= 0) { io.markWaiter(c.waitingAt, c.priority, -1); c.waitingAt = -1; }
        while (c.queue >= 1) {
          const r = io.acquire(c.key, MILLI, c.priority, true, ms);
          if (r !== GRANTED) { c.waitingAt = failBucket(r); io.markWaiter(c.waitingAt, c.priority, 1); break; }
          c.queue--;
          c.granted++;
        }
      });
    }
    return callers.map((c) => c.granted);
  };
  return { tick, second };
}

describe('min_tps after a shortfall at the gate', () => {
  for (const window of ['sliding_1s', 'token_bucket']) {
    it(`holds a MEDIUM service's reservation against CRITICAL and HIGH while the gate is short (${window} gate)`, () => {
      const { tick, second } = setup(window);
      const demand = [400, 600, 300, 600];
      tick(0, 1500, [400, 600, 300, 200]);
      for (let t = 0; t < 3000; t += 1000) second(t, demand); // the pool pressed at 1500 for 3 s
      // The upstream drops to 900: the gate's window still holds the last second's 1500 takes.
      tick(3000, 891, [367, 474, 50, 0]);
      const granted = second(3000, demand);
      assert.ok(granted[2] >= 49, `MEDIUM (min_tps 50) granted ${granted[2]} in the second after the drop (all: ${granted.join(', ')})`);
      tick(4000, 891, [367, 474, 50, 0]);
      const next = second(4000, demand);
      assert.ok(next[2] >= 49, `and in the next one: ${next[2]} (all: ${next.join(', ')})`);
      assert.ok(next[0] >= 199, `CRITICAL keeps its own min_tps of 200: ${next[0]}`);
    });
  }
});

describe('a reserved take the gate can never hold', () => {
  it('does not hold the others back (a token-bucket gate smaller than the take)', () => {
    const { keys, io: [io], control, limits } = bucketTables([{ name: 'p', capacity_tps: 100, burst: 5, upstream: { window: 'token_bucket' },
      services: [{ name: 'm', priority: 'MEDIUM', min_tps: 50, max_tps: 100, burst: 50 }, { name: 'c', priority: 'CRITICAL', max_tps: 100 }] }]);
    const [p, m, c] = ['p', 'p/m', 'p/c'].map((k) => keys.lookup(k));
    writeAllocations(control, limits, [{ pool: p, effectiveTps: 100, burst: 5, services: [m, c], endpoints: [[], []], alloc: [50, 50] }], 0);
    for (let t = 1; t < 100; t++) io.acquire(c, MILLI, 0, true, t); // c keeps the gate empty
    assert.notEqual(io.acquire(c, 5 * MILLI, 0, true, 100), GRANTED, 'the gate is short: contended');
    assert.equal(failBucket(io.acquire(m, 20 * MILLI, 2, true, 101)), p, 'm asks for 20 at once: more than the gate ever holds');
    let granted = 0;
    for (let t = 102; t < 200; t += 5) {
      assert.notEqual(io.acquire(m, 20 * MILLI, 2, true, t), GRANTED, 'm retries, as a waiter does');
      if (io.acquire(c, MILLI, 0, true, t + 1) === GRANTED) granted++;
    }
    assert.ok(granted >= 9, `c still takes what the gate refills, about 10 tokens in 100 ms (${granted})`);
  });
});
