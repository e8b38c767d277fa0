// Bursty real clients against a running daemon (issue 13): 100 SDK
// connections each ask for one permit at the same instant, three times a
// second (300 requests/s in synchronized bursts), with waitMs 200, for a pool
// of capacity_tps 100 on the default bursts. Every grant is passed to a fake
// upstream that accepts 100 requests per 1 s window (the one mock: the
// upstream API is the true external boundary) and answers the rest 429,
// which the client reports in RELEASE. While permits wait, the key must be
// granted at its limit: about 100 accepted per second, with hardly a 429.
//
// The figures are rates over a few seconds of wall-clock time, so the test
// measures them only once the daemon has ticked a few times, over whole
// seconds of the fake upstream's own windows, and counts a burst only once it
// was actually sent (a late timer on a loaded machine sends fewer, and the
// offered load is what the pool is judged against).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, OUTCOME_OK, OUTCOME_THROTTLED, type TpsdClient } from '../../src/client/index.ts';
import { startTestDaemon } from '../fixtures/daemon.ts';

const CAPACITY_TPS = 100;
const CONNECTIONS = 100;
const BURST_EVERY_MS = 1000 / 3;
const WAIT_MS = 200;
const WARMUP_S = 3;
const MEASURE_S = 6;

/** The upstream API: at most `limit` requests per 1 s window of its own clock; false = 429. */
class WindowUpstream {
  readonly accepted = new Map<number, number>();
  readonly throttled = new Map<number, number>();
  constructor(private readonly limit: number, private readonly t0: number) {}
  admit(): boolean {
    const w = Math.floor((performance.now() - this.t0) / 1000);
    const n = this.accepted.get(w) ?? 0;
    if (n >= this.limit) { this.throttled.set(w, (this.throttled.get(w) ?? 0) + 1); return false; }
    this.accepted.set(w, n + 1);
    return true;
  }
  sum(map: Map<number, number>, from: number, to: number): number {
    let s = 0;
    for (let w = from; w < to; w++) s += map.get(w) ?? 0;
    return s;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('bursty clients', () => {
  it('100 connections in synchronized bursts get a 100/s pool granted at its limit, without 429s', async () => {
    const daemon = await startTestDaemon({
      tick_ms: 1000,
      pools: [{ name: 'api', capacity_tps: CAPACITY_TPS, services: [{ name: 'svc', priority: 'HIGH' }] }],
    });
    const clients: TpsdClient[] = [];
    try {
      for (let i = 0; i < CONNECTIONS; i++) clients.push(await connect(`ws://127.0.0.1:${daemon.port}`));
      const t0 = performance.now();
      const upstream = new WindowUpstream(CAPACITY_TPS, t0);
      let granted = 0, denied = 0;
      const sentInWindow = new Map<number, number>();
      const one = async (c: TpsdClient): Promise<void> => {
        const p = await c.acquire('api/svc', 1, { waitMs: WAIT_MS });
        if (!p.granted) { denied++; return; }
        granted++;
        c.release(p.lease, upstream.admit() ? OUTCOME_OK : OUTCOME_THROTTLED, 1000);
      };
      const pending: Promise<void>[] = [];
      const endMs = (WARMUP_S + MEASURE_S) * 1000;
      for (let k = 0; ; k++) {
        // Drift-free schedule: burst k at t0 + k/3 s.
        const at = t0 + k * BURST_EVERY_MS;
        if (at - t0 >= endMs) break;
        const delay = at - performance.now();
        if (delay > 0) await sleep(delay);
        const w = Math.floor((performance.now() - t0) / 1000);
        sentInWindow.set(w, (sentInWindow.get(w) ?? 0) + CONNECTIONS);
        for (const c of clients) pending.push(one(c));
      }
      await Promise.all(pending);
      const from = WARMUP_S, to = WARMUP_S + MEASURE_S;
      const accepted = upstream.sum(upstream.accepted, from, to);
      const throttled = upstream.sum(upstream.throttled, from, to);
      const offered = upstream.sum(sentInWindow, from, to);
      const perSecond = accepted / MEASURE_S;
      const detail = `accepted ${accepted} in ${MEASURE_S} s (${perSecond.toFixed(1)}/s), 429s ${throttled}, ` +
        `offered ${offered}, granted ${granted} and denied ${denied} in all; per window: ` +
        [...upstream.accepted.entries()].map(([w, n]) => `${w}:${n}/${upstream.throttled.get(w) ?? 0}`).join(' ');
      assert.ok(offered >= 0.9 * 3 * CONNECTIONS * MEASURE_S, `the bursts went out on time (${detail})`);
      if (process.env.DEBUG_BURSTY) console.log(detail);
      assert.ok(perSecond >= 95, `granted at the limit while permits wait: ${detail}`);
      assert.ok(throttled <= 0.01 * (accepted + throttled), `at most 1% 429s: ${detail}`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await daemon.stop();
    }
  });
});
