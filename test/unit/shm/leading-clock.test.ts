// An I/O thread whose `now` is AHEAD of the controller's (each thread reads
// its own clock, the controller once per tick, and a tick's writes land
// milliseconds after that read): every refill stamp it moved to its later
// time stays there when the controller writes a rate, a loan, a reservation
// or a tenant's tier at its earlier `now`. Such writes used to store their
// `now` as the stamp: the milliseconds between the two times were credited
// again at the next refill, rate x lead per write, so a bucket written every
// tick granted about half again its rate with a 5 ms lead at 10 ms ticks.
// Counted here: what a bucket grants over a window, taken as fast as it
// allows by a thread LEAD_MS ahead, the controller writing the same values
// every TICK_MS; never more than rate x (window + lead) + the bursts it
// started with. On a ManualClock; the controller's table and an I/O
// thread's over the same shared memory. (A thread behind: lagging-clock.test.ts.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BucketTable, GRANTED } from '../../../src/shm/bucket-table.ts';
import {
  BUCKET_FIELDS, LAST_REFILL_MS_INDEX, LOAN_OFFSET, MILLI, PACE_OFFSET, PACE_RATE_FACTOR, RESERVE_OFFSET, allocateShm, tenantSlotsFor,
} from '../../../src/shm/layout.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';
import { bucketTables } from '../../fixtures/bucket-tables.ts';

const TICK_MS = 10;
const LEAD_MS = 5;
/** Takes in one millisecond before a bucket counts as never refusing (a broken setup, not a finding). */
const MAX_TAKES_PER_MS = 100_000;

/**
 * Tokens granted over `windowMs`: each millisecond t, `takeAll` at t +
 * LEAD_MS (the thread ahead), then on a tick `write` at t (the controller).
 */
function grantedOver(windowMs: number, takeAll: (now: number) => number, write: (now: number) => void): number {
  let granted = 0;
  for (let t = 0; t < windowMs; t++) {
    granted += takeAll(t + LEAD_MS);
    if (t % TICK_MS === 0) write(t);
  }
  return granted;
}

/** A take of one token from `key` until refused, on I/O table `io`. */
function drainKey(io: BucketTable, key: number): (now: number) => number {
  return (now) => {
    let n = 0;
    while (io.acquire(key, MILLI, io.priority(key), false, now) === GRANTED) {
      if (++n > MAX_TAKES_PER_MS) throw new Error('the bucket never refuses');
    }
    return n;
  };
}

const BIG = { capacity_tps: 1_000_000, burst: 100_000 };

interface Case {
  readonly name: string;
  readonly pool: Record<string, unknown>;
  readonly key: string;
  readonly windowMs: number;
  /** The rate that binds, tokens/s, and the tokens the buckets on the way may hold at the start. */
  readonly rateTps: number;
  readonly startTokens: number;
  /** Before the window (controller, at 0): the values `write` repeats. */
  readonly setup: (control: BucketTable, b: (name: string) => number) => void;
  readonly write: (control: BucketTable, b: (name: string) => number, now: number) => void;
}

const CASES: readonly Case[] = [
  {
    name: 'an endpoint\'s cap (setRate)', windowMs: 2000, rateTps: 1000, startTokens: 100, key: 'p/s/e',
    pool: { name: 'p', ...BIG, services: [{ name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 100_000,
      endpoints: [{ name: 'e', max_tps: 1000, burst: 100 }] }] },
    setup: () => {},
    write: (c, b, now) => c.setRate(b('p/s/e'), 1000, now),
  },
  {
    // The pool lends only what its shared bucket holds at the start (100): it earns nothing until a loan is written.
    name: 'a service\'s assured rate (setRate)', windowMs: 2000, rateTps: 1000, startTokens: 200, key: 'p/s',
    pool: { name: 'p', capacity_tps: 1_000_000, burst: 100, services: [{ name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 100 }] },
    setup: (c, b) => c.setRate(b('p/s'), 1000, 0),
    write: (c, b, now) => c.setRate(b('p/s'), 1000, now),
  },
  {
    name: 'a pool\'s gate, a token bucket (setRate)', windowMs: 2000, rateTps: 1000, startTokens: 100, key: 'p/s',
    pool: { name: 'p', capacity_tps: 1000, burst: 100, upstream: { window: 'token_bucket' },
      services: [{ name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 100_000 }] },
    setup: (c, b) => c.setRate(b('p/s'), 1_000_000, 0),
    write: (c, b, now) => c.setRate(b('p'), 1000, now),
  },
  {
    // The pace binds within the window's second: 2 000/s, 250 tokens (PACE_HOLD_MS of the rate) at the start.
    name: 'a window gate\'s pace (setRate)', windowMs: 200, rateTps: 1000 * PACE_RATE_FACTOR, startTokens: 250, key: 'p/s',
    pool: { name: 'p', capacity_tps: 1000, burst: 100, upstream: { window: 'sliding_1s' },
      services: [{ name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 100_000 }] },
    setup: (c, b) => c.setRate(b('p/s'), 1_000_000, 0),
    write: (c, b, now) => c.setRate(b('p'), 1000, now),
  },
  {
    // No assured rate: past the service's 100 tokens at the start, every grant is a loan from the pool's shared bucket (100 at the start).
    name: 'a pool\'s shared bucket (setLoan)', windowMs: 2000, rateTps: 1000, startTokens: 200, key: 'p/s',
    pool: { name: 'p', capacity_tps: 1_000_000, burst: 100, services: [{ name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 100 }] },
    setup: (c, b) => { c.setRate(b('p/s'), 0, 0); c.setLoan(b('p/s'), 1_000_000, 1000, 0); c.setLoan(b('p'), 1000, 100, 0); },
    write: (c, b, now) => c.setLoan(b('p'), 1000, 100, now),
  },
  {
    name: 'a service\'s borrowing ceiling (setLoan)', windowMs: 2000, rateTps: 1000, startTokens: 102, key: 'p/s',
    pool: { name: 'p', ...BIG, services: [{ name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 1 }] },
    setup: (c, b) => { c.setRate(b('p/s'), 0, 0); c.setLoan(b('p'), 1_000_000, 100_000, 0); c.setLoan(b('p/s'), 1000, 100, 0); },
    write: (c, b, now) => c.setLoan(b('p/s'), 1000, 100, now),
  },
];

describe('an I/O thread ahead of the controller\'s clock', () => {
  for (const k of CASES) {
    it(`is granted no more than rate x (window + lead) + the start's tokens: ${k.name}, written every tick`, () => {
      const { keys, io: [io], control } = bucketTables([k.pool]);
      const b = (name: string) => keys.lookup(name);
      k.setup(control, b);
      const granted = grantedOver(k.windowMs, drainKey(io, b(k.key)), (now) => k.write(control, b, now));
      const most = Math.floor((k.rateTps * (k.windowMs - 1 + LEAD_MS)) / 1000) + k.startTokens;
      assert.ok(granted > 0.9 * (most - k.startTokens), `the bucket binds: ${granted} granted`);
      assert.ok(granted <= most, `${granted} granted over ${k.windowMs} ms, at most ${most}`);
    });
  }

  it('is granted no more than rate x (window + lead) + burst from a tenant whose tier is written every tick (setTier)', () => {
    const table = new TenantTable(allocateShm(4, 1, tenantSlotsFor(10)));
    const name = new TextEncoder().encode('t');
    const [service, tier, rateMilli, burstMilli] = [1, 2, 1000 * MILLI, 100 * MILLI];
    const slot = table.create(service, name, 0, name.length, table.hash(service, name, 0, name.length), 10, tier, rateMilli, burstMilli, 0);
    const takeAll = (now: number) => { let n = 0; while (table.take(slot, MILLI, now)) n++; return n; };
    const granted = grantedOver(2000, takeAll, (now) => table.setTier(slot, tier, rateMilli, burstMilli, now));
    assert.ok(granted <= 1000 * (2000 - 1 + LEAD_MS) / 1000 + 100, `${granted} granted over 2000 ms`);
  });

  it('keeps every refill stamp of a record where the thread ahead put it, whatever the controller writes at its earlier now', () => {
    const { keys, io: [io], control } = bucketTables([
      { name: 'p', capacity_tps: 1000, burst: 100, upstream: { window: 'sliding_1s' }, services: [
        { name: 's', priority: 'HIGH', max_tps: 1000, min_tps: 100, burst: 100, endpoints: [{ name: 'e', max_tps: 500, burst: 50 }] }] },
      { name: 'q', capacity_tps: 1000, burst: 100, upstream: { window: 'token_bucket' }, services: [
        { name: 's', priority: 'HIGH', max_tps: 1000, burst: 100 }] },
    ]);
    const stamps = [LAST_REFILL_MS_INDEX, LOAN_OFFSET + LAST_REFILL_MS_INDEX, PACE_OFFSET + LAST_REFILL_MS_INDEX,
      RESERVE_OFFSET + LAST_REFILL_MS_INDEX];
    const writes: [string, (b: number, now: number) => void][] = [
      ['setRate', (b, now) => control.setRate(b, 700, now)],
      ['setLoan', (b, now) => control.setLoan(b, 300, 100, now)],
      ['setReserve', (b, now) => { if (keys.specs[b].depth === 1) control.setReserve(b, 100, now); }],
    ];
    let at = 1000;
    const checked = new Map<string, number>();
    for (const [what, write] of writes) {
      for (const name of ['p', 'p/s', 'p/s/e', 'q', 'q/s']) {
        const b = keys.lookup(name);
        at += 1000;
        io.refill(b, at + LEAD_MS);
        const before = stamps.map((i) => control.state[b * BUCKET_FIELDS + i]);
        write(b, at);
        const after = stamps.map((i) => control.state[b * BUCKET_FIELDS + i]);
        for (let j = 0; j < stamps.length; j++) {
          if (before[j] !== at + LEAD_MS) continue; // a bucket the refill does not keep (a rate of 0, or not one)
          assert.equal(after[j], at + LEAD_MS, `${what} on ${name}: stamp ${stamps[j]} moved from ${before[j]} to ${after[j]}`);
          checked.set(what, (checked.get(what) ?? 0) + 1);
        }
      }
    }
    assert.deepEqual([...checked.keys()], writes.map(([what]) => what), 'each write met a stamp the thread ahead had moved');
  });

  it('a bucket left at rate 0 longer than the int32 clock wraps still earns once a rate is written', () => {
    const { keys, io: [io], control } = bucketTables([{ name: 'p', ...BIG, services: [{ name: 's', priority: 'HIGH',
      max_tps: 1_000_000, burst: 100_000, endpoints: [{ name: 'e', max_tps: 1000, burst: 100 }] }] }]);
    const e = keys.lookup('p/s/e');
    control.setRate(e, 0, 0);
    const drain = drainKey(io, e);
    drain(0);
    // 2^32 - 1 000 ms later (about 49.7 days, nothing refilled at rate 0): the old stamp reads as 1 s ahead.
    const later = (2 ** 32 - 1000) | 0;
    control.setRate(e, 1000, later);
    assert.equal(drain((later + 50) | 0), 50, 'earns 50 tokens in 50 ms at 1 000/s');
  });
});
