// An I/O thread whose `now` is behind the controller's (it reads its clock
// once per message, and may be descheduled between that read and its takes)
// is served as at its own time: the controller's tick, which keeps the pool's
// "gate refused an assured take" stamps expired (pool-loans.ts freshenStamp),
// must not make them fresh again for it. They used to be put at the tick's
// now - 21 ms: a thread 2 ms or more behind read the pool as contended with a
// reservation waiting, and every take it made was refused at the pool,
// nothing being short. On a ManualClock, the controller's table and an I/O
// thread's over the same shared memory.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GRANTED, failBucket, failReason } from '../../../src/shm/bucket-table.ts';
import { MILLI } from '../../../src/shm/layout.ts';
import { bucketTables } from '../../fixtures/bucket-tables.ts';

function setup(window: string) {
  const t = bucketTables([{ name: 'p', capacity_tps: 1_000_000, burst: 100_000, upstream: { window }, services: [
    { name: 's', priority: 'HIGH', max_tps: 1_000_000, burst: 100_000 },
  ] }]);
  return { ...t, key: t.keys.lookup('p/s') };
}

const why = (r: number) => (r === GRANTED ? 'granted' : `refused at bucket ${failBucket(r)}, reason ${failReason(r)}`);

describe('an I/O thread behind the controller\'s clock', () => {
  for (const window of ['sliding_1s', 'token_bucket']) {
    it(`is granted after a tick stamped later than its now, whatever its lag (${window} gate)`, () => {
      const { keys, clock, io: [io], control, key } = setup(window);
      for (const lagMs of [1, 2, 5, 20, 300]) {
        const tickAt = 10_000 * lagMs;
        clock.set(tickAt);
        for (let b = 0; b < keys.size; b++) control.refill(b, tickAt);
        const r = io.acquire(key, MILLI, keys.specs[key].priority, false, tickAt - lagMs, true);
        assert.equal(why(r), 'granted', `${lagMs} ms behind the tick`);
      }
    });
  }

  it('expired stamps stay expired across the int32 wrap of the clock (a tick every 10 hours for 100 days)', () => {
    const { keys, clock, io: [io], control, key } = setup('sliding_1s');
    const stepMs = 10 * 3600 * 1000;
    for (let at = 1000; at < 100 * 24 * 3600 * 1000; at += stepMs) {
      const now = at | 0;
      clock.set(now);
      for (let b = 0; b < keys.size; b++) control.refill(b, now);
      for (const lagMs of [0, 5]) {
        const r = io.acquire(key, MILLI, keys.specs[key].priority, false, (now - lagMs) | 0, true);
        assert.equal(why(r), 'granted', `at ${at} ms, ${lagMs} ms behind`);
      }
    }
  });
});
