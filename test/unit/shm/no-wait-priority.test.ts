// Priority at a binding gate among requests that do not wait (wait_ms 0):
// a LOW service borrowing far above the pool must not take the gate's tokens
// ahead of a CRITICAL service's own assured takes (issue 13: CRITICAL got
// 49 tps of an assured ~180 in a running daemon). Played on the real table
// over shared memory with a ManualClock: each millisecond LOW (thread 0)
// hammers first until refused, then CRITICAL (thread 1) asks once whenever
// its steady rate is due; nobody registers as a waiter. Each thread gives its
// due window takes back at its own takes and every 100 ms, as an I/O
// thread's periodic flush does. Failed before the trunk and the booking
// (pool-loans.ts): CRITICAL got 79/s (window) and 135/s (token bucket) of
// 180, and 29-30/s of 60.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeAllocations } from '../../../src/control/bucket-writes.ts';
import { GRANTED } from '../../../src/shm/bucket-table.ts';
import { MILLI, TOKENS_MILLI_INDEX, stateBase } from '../../../src/shm/layout.ts';
import { bucketTables } from '../../fixtures/bucket-tables.ts';

const GATE_TPS = 600;
const GATE_BURST = 100;
const ASSURED_TPS = 180;
const SECONDS = 8;
/** Seconds left out of the counts: the buckets' initial bursts. */
const WARM_S = 3;
const FLUSH_MS = 100;

/**
 * Pool p (capacity 1000) with CRITICAL c assured ASSURED_TPS and LOW l
 * assured nothing (it borrows), allocated for 1000 tokens/s; then the gate
 * drops to GATE_TPS, under what the buckets below it hand out, so the gate
 * is the binding limit (as after the upstream shrank within a tick).
 */
function setup(window: string) {
  const { keys, views, io: [low, crit], control, limits } = bucketTables([{ name: 'p', capacity_tps: 1000, burst: GATE_BURST, upstream: { window },
    services: [{ name: 'c', priority: 'CRITICAL', max_tps: 1000, burst: 50 }, { name: 'l', priority: 'LOW', max_tps: 5000, burst: 200 }] }], 2);
  const pool = keys.lookup('p');
  const [c, l] = [keys.lookup('p/c'), keys.lookup('p/l')];
  writeAllocations(control, limits, [{ pool, effectiveTps: 1000, burst: GATE_BURST, services: [c, l], endpoints: [[], []], alloc: [ASSURED_TPS, 0] }], 0);
  control.setRate(pool, GATE_TPS, 0);
  return { low, crit, c, l, pool, views };
}

/** Plays SECONDS of traffic, CRITICAL asking at `critTps`; grants per millisecond of each service. */
function play(window: string, critTps: number): { critMs: Int32Array; lowMs: Int32Array } {
  const { low, crit, c, l } = setup(window);
  const critMs = new Int32Array(SECONDS * 1000);
  const lowMs = new Int32Array(SECONDS * 1000);
  let asked = 0;
  for (let ms = 0; ms < SECONDS * 1000; ms++) {
    // Each I/O thread's periodic timer gives back its window takes that are due (io-worker.ts, at most every 100 ms).
    if (ms % FLUSH_MS === 0) { low.flushAllowances(ms); crit.flushAllowances(ms); }
    for (let n = 0; n < 10_000 && low.acquire(l, MILLI, 3, false, ms, true) === GRANTED; n++) lowMs[ms]++;
    while (asked < Math.floor(((ms + 1) * critTps) / 1000)) {
      asked++;
      if (crit.acquire(c, MILLI, 0, false, ms, true) === GRANTED) critMs[ms]++;
    }
  }
  return { critMs, lowMs };
}

const sum = (a: Int32Array, from: number, to: number): number => { let n = 0; for (let i = from; i < to; i++) n += a[i]; return n; };

/** The most granted in any sliding second (from `from` ms on). */
function busiestSecond(a: Int32Array, b: Int32Array, from: number): number {
  let most = 0;
  for (let t = from; t + 1000 <= a.length; t += 10) most = Math.max(most, sum(a, t, t + 1000) + sum(b, t, t + 1000));
  return most;
}

for (const window of ['sliding_1s', 'token_bucket']) {
  describe(`no-wait priority at a binding ${window} gate`, () => {
    const counted = (SECONDS - WARM_S);
    it('CRITICAL gets its assured rate while LOW hammers, LOW the rest, the pool never above its gate', () => {
      const { critMs, lowMs } = play(window, ASSURED_TPS);
      const critTps = sum(critMs, WARM_S * 1000, SECONDS * 1000) / counted;
      const lowTps = sum(lowMs, WARM_S * 1000, SECONDS * 1000) / counted;
      assert.ok(critTps >= ASSURED_TPS - 2, `CRITICAL granted ${critTps}/s of ${ASSURED_TPS} assured (LOW ${lowTps}/s)`);
      assert.ok(lowTps >= GATE_TPS - critTps - 2, `LOW granted ${lowTps}/s of the ${GATE_TPS - critTps} left`);
      // A window admits at most its capacity in any second; a token bucket its rate and one burst.
      const bound = window === 'token_bucket' ? GATE_TPS + GATE_BURST : GATE_TPS;
      assert.ok(busiestSecond(critMs, lowMs, 0) <= bound, `busiest second ${busiestSecond(critMs, lowMs, 0)} > ${bound}`);
    });

    it('is work-conserving: LOW gets all a CRITICAL asking under its assured rate leaves', () => {
      const { critMs, lowMs } = play(window, 60);
      const critTps = sum(critMs, WARM_S * 1000, SECONDS * 1000) / counted;
      const lowTps = sum(lowMs, WARM_S * 1000, SECONDS * 1000) / counted;
      assert.ok(critTps >= 60 - 1, `CRITICAL granted ${critTps}/s of the 60 it asks`);
      assert.ok(lowTps >= GATE_TPS - critTps - 2, `LOW granted ${lowTps}/s of the ${GATE_TPS - critTps} left`);
    });
  });
}

describe('booking a second ahead', () => {
  it('books at most a second of the asking service\'s assured rate, however often it asks', () => {
    const { low, crit, c, l, pool, views } = setup('sliding_1s');
    for (let ms = 0; ms <= 600; ms++) for (let n = 0; n < 10_000 && low.acquire(l, MILLI, 3, false, ms, true) === GRANTED; n++); // LOW empties the window
    let granted = 0;
    for (let n = 0; n < 100_000; n++) if (crit.acquire(c, MILLI, 0, false, 600, true) === GRANTED) granted++;
    const gateTokens = views.state[stateBase(pool) + TOKENS_MILLI_INDEX] / MILLI;
    assert.ok(gateTokens >= -ASSURED_TPS, `the window went to ${gateTokens} (granted ${granted})`);
    assert.ok(gateTokens < 0, `a refused assured take was booked (${gateTokens})`);
  });
});
