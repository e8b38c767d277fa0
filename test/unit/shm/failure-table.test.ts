// The shared failure table (src/shm/failure-table.ts): counts per address in
// a window of at least a minute, addresses reduced to what one client
// controls, a full neighbourhood that never locks out an innocent address nor
// lets an attacker erase a count cheaply, and no update lost between threads.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ManualClock } from '../../../src/shm/clock.ts';
import { FAILURE_WINDOW_TICKS, FAILURE_TICK_SHIFT, FailureTable, addressKey } from '../../../src/shm/failure-table.ts';
import { FAILURE_NEIGHBORHOODS, FAILURE_NEIGHBORHOOD_SLOTS, allocateShm } from '../../../src/shm/layout.ts';
import { THREAD_BOOTSTRAP } from '../../../src/shm/threads.ts';

const WINDOW_MS = FAILURE_WINDOW_TICKS * 2 ** FAILURE_TICK_SHIFT;

function setup(threads = 1) {
  const views = allocateShm(1, threads);
  const clock = new ManualClock();
  clock.set(5_000_000);
  return { views, clock, table: new FailureTable(views, clock) };
}

/** A peer key with a chosen neighbourhood (home) and tag, as peerOf makes them. */
const peer = (home: number, tag: number) => tag * FAILURE_NEIGHBORHOODS + home;

/** Seeded LCG in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe('addressKey: what one client controls', () => {
  it('keys IPv4 by address, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
    assert.equal(addressKey('127.0.0.1'), '4:127.0.0.1');
    assert.equal(addressKey('0000:0000:0000:0000:0000:ffff:7f00:0001'), '4:127.0.0.1');
    assert.equal(addressKey('::ffff:10.1.2.3'), '4:10.1.2.3');
    const a = addressKey('2001:0db8:0001:0002:0000:0000:0000:0001');
    assert.equal(a, '6:2001:db8:1:2');
    assert.equal(addressKey('2001:db8:1:2:ffff:1:2:3'), a, 'the same /64');
    assert.equal(addressKey('2001:DB8:1:2::9'), a, 'compressed and upper case');
    assert.notEqual(addressKey('2001:db8:1:3::1'), a, 'another /64');
    assert.equal(addressKey('0000:0000:0000:0000:0000:0000:0000:0001'), '6:0:0:0:0');
    assert.equal(addressKey('not:an:address::x::'), '?:not:an:address::x::');
  });

  it('peerOf: one key per client, different keys for different clients, per-daemon seed', () => {
    const { table, views } = setup();
    assert.equal(table.peerOf('0000:0000:0000:0000:0000:ffff:7f00:0001'), table.peerOf('127.0.0.1'));
    assert.equal(table.peerOf(new TextEncoder().encode('127.0.0.1').buffer as ArrayBuffer), table.peerOf('127.0.0.1'));
    assert.notEqual(table.peerOf('127.0.0.2'), table.peerOf('127.0.0.1'));
    assert.notEqual(new FailureTable(allocateShm(1, 1), new ManualClock()).peerOf('127.0.0.1'), table.peerOf('127.0.0.1'),
      'another daemon (another seed) hashes the address elsewhere');
    assert.ok(views.failureSeed.some((w) => w !== 0), 'the seed is set');
  });
});

describe('FailureTable: one address', () => {
  it('counts failures in a window of at least a minute, from the first failure', () => {
    const { table, clock } = setup();
    const p = table.peerOf('10.0.0.1');
    assert.equal(table.failures(p), 0);
    for (let i = 1; i <= 5; i++) assert.equal(table.record(p), i);
    clock.advance(59_999);
    assert.equal(table.failures(p), 5, 'still counted just before a minute has passed');
    assert.equal(table.record(p), 6);
    clock.advance(WINDOW_MS - 59_999);
    assert.equal(table.failures(p), 0, 'forgotten once the window has passed');
    assert.equal(table.record(p), 1, 'a new window starts at the next failure');
    assert.equal(table.failures(table.peerOf('10.0.0.2')), 0, 'another address has its own count');
  });

  it('saturates its count instead of wrapping', () => {
    const { table } = setup();
    const p = table.peerOf('10.0.0.1');
    for (let i = 0; i < 3000; i++) table.record(p);
    assert.equal(table.failures(p), 2047);
  });
});

describe('FailureTable: a full neighbourhood', () => {
  it('a new address takes the slot with the fewest failures; every other count stays', () => {
    const { table } = setup();
    const home = 7;
    const counts = [9, 4, 12, 3, 8, 15, 6, 11];
    counts.forEach((n, tag) => { for (let i = 0; i < n; i++) table.record(peer(home, tag + 1)); });
    assert.equal(table.record(peer(home, 100)), 1);
    counts.forEach((n, tag) => assert.equal(table.failures(peer(home, tag + 1)), n === 3 ? 0 : n, `tag ${tag + 1}`));
    assert.equal(table.failures(peer(home, 100)), 1);
  });

  it('prefers a slot whose window has passed', () => {
    const { table, clock } = setup();
    const home = 3;
    table.record(peer(home, 1));
    clock.advance(30_000);
    for (let tag = 2; tag <= FAILURE_NEIGHBORHOOD_SLOTS; tag++) table.record(peer(home, tag));
    clock.advance(31_000); // tag 1's window has passed, the others' have not
    assert.equal(table.record(peer(home, 50)), 1);
    for (let tag = 2; tag <= FAILURE_NEIGHBORHOOD_SLOTS; tag++) assert.equal(table.failures(peer(home, tag)), 1);
  });

  it('a flood of addresses never blocks an innocent one, nor erases a count at the limit', () => {
    const { table } = setup();
    const next = rng(12);
    const limit = 20;
    const victims = Array.from({ length: 64 }, (_, i) => table.peerOf(`192.0.2.${i}`));
    for (const v of victims) for (let i = 0; i < limit; i++) table.record(v);
    // 200k addresses with one failure each: 12 times the table's size.
    for (let i = 0; i < 200_000; i++) table.record(peer(Math.floor(next() * FAILURE_NEIGHBORHOODS), 1 + Math.floor(next() * 0xfffffffe)));
    for (const v of victims) assert.equal(table.failures(v), limit, 'a blocked address stays blocked');
    const innocent = table.peerOf('198.51.100.7');
    assert.equal(table.failures(innocent), 0, 'an address that never failed is not blocked');
    assert.equal(table.record(innocent), 1, 'and its own failures are counted from one');
  });

  it('evicting an address costs as many failures as it had', () => {
    const { table } = setup();
    const home = 11, limit = 20;
    for (let tag = 1; tag <= FAILURE_NEIGHBORHOOD_SLOTS; tag++) for (let i = 0; i < limit; i++) table.record(peer(home, tag));
    // A newcomer pushes out one address at the limit, then holds the slot with the fewest failures:
    // the next newcomer pushes it out, not another address at the limit.
    table.record(peer(home, 100));
    const left = () => Array.from({ length: FAILURE_NEIGHBORHOOD_SLOTS }, (_, i) => table.failures(peer(home, i + 1))).filter((n) => n === limit).length;
    assert.equal(left(), FAILURE_NEIGHBORHOOD_SLOTS - 1);
    for (let t = 101; t < 200; t++) table.record(peer(home, t));
    assert.equal(left(), FAILURE_NEIGHBORHOOD_SLOTS - 1, '99 more one-failure newcomers evict no address at the limit');
  });
});

describe('FailureTable: threads', () => {
  it('4 threads updating the same addresses lose no failure (every update counted or reported as given up)', async () => {
    const threads = 4, times = 100;
    const { views } = setup(threads);
    const next = rng(5);
    // 64 addresses, each in its own neighbourhood (so nothing is evicted), and 8 sharing one.
    const peers = Array.from({ length: 64 }, (_, i) => peer(i * 3, 1 + Math.floor(next() * 0xfffffffe)));
    for (let tag = 1; tag <= FAILURE_NEIGHBORHOOD_SLOTS; tag++) peers.push(peer(1000, tag));
    const start = new SharedArrayBuffer(8);
    const gaveUp = await Promise.all(Array.from({ length: threads }, (_, t) => new Promise<number>((resolve, reject) => {
      const w = new Worker(THREAD_BOOTSTRAP, {
        workerData: {
          entry: new URL('../../fixtures/failure-hammer-worker.ts', import.meta.url).href,
          sab: views.sab, bucketCount: 1, threadCount: threads, peers, times, seed: 31 + t, start,
        },
      });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    const table = new FailureTable(views, new ManualClock());
    const counted = peers.reduce((n, p) => n + table.failures(p), 0);
    const lost = gaveUp.reduce((a, b) => a + b, 0);
    assert.equal(counted + lost, peers.length * times * threads, `counted ${counted}, given up ${lost}`);
    assert.ok(lost <= peers.length * times * threads / 100, `few updates give up (${lost})`);
    for (const p of peers) assert.ok(table.failures(p) <= times * threads);
  });
});
