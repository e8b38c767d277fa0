// The first acquires of many new tenants, every limit far above what is asked,
// against a real daemon (2 I/O threads, port 0): each is granted, with ticks
// (tick_ms 10) running while an I/O thread answers a long message.
//
// Why long messages: an I/O thread reads its clock once per message, so a
// message of many acquires is answered at a time that falls behind the
// controller's while the controller ticks meanwhile. That lag is what a busy
// machine gives any I/O thread (descheduled for a few milliseconds between
// reading the clock and answering); a long message makes it happen every
// time instead of now and then. The controller's tick used to mark the
// pool's "gate refused an assured take" stamps as expired only just past
// their hold (its now - 21 ms), which a thread 2 ms or more behind read as
// fresh: it refused every tenant's acquire at the pool until its clock caught
// up (DENIED, retry_after 1 ms), though nothing was short.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_BURST, MAX_TPS } from '../../src/config/defaults.ts';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { until } from '../fixtures/telemetry.ts';

/** New tenants per message, and messages (on one connection: one I/O thread answers them all). */
const PER_MESSAGE = 20_000;
const MESSAGES = 4;

const POOL = {
  name: 'big', capacity_tps: MAX_TPS, burst: MAX_BURST,
  services: [{ name: 'api', priority: 'HIGH', max_tps: MAX_TPS, burst: MAX_BURST,
    tenants: { tiers: [{ name: 'all', priority: 'HIGH', tps: MAX_TPS, burst: MAX_BURST }], max: PER_MESSAGE * MESSAGES, idle_s: 3600 } }],
};

describe('first acquires of new tenants', () => {
  it('are all granted while every limit is far above the rate asked, ticks running meanwhile', async () => {
    const d = await startTestDaemon({ tick_ms: 10, max_message_bytes: 4 * 1024 * 1024, pools: [POOL] });
    const c = await RawClient.open(d.port);
    try {
      for (let m = 0; m < MESSAGES; m++) {
        const reqs: unknown[][] = [];
        for (let i = 0; i < PER_MESSAGE; i++) {
          const n = m * PER_MESSAGE + i;
          reqs.push([1, n + 1, `big/api/t${n}`, 1, 0]);
        }
        c.send(...reqs);
        await until(() => c.replies.length >= (m + 1) * PER_MESSAGE, 30_000, `the replies to message ${m}`);
      }
      const denied = c.replies.filter((r) => r[2] !== 0);
      assert.equal(c.replies.length, PER_MESSAGE * MESSAGES);
      assert.equal(denied.length, 0,
        `${denied.length} of ${c.replies.length} first acquires refused; the first: ${JSON.stringify(denied.slice(0, 3))}`);
    } finally {
      c.close();
      await d.stop();
    }
  });
});
