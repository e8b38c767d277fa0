// Latency-based capacity in a running daemon (CONFIG.md upstream.slo_ms):
// clients pass each grant to a fake upstream (the one mock: the upstream API
// is the true external boundary) whose answer time grows with its load as the
// simulator's does (src/sim/upstream-latency.ts, over the last 250 ms), and
// report that latency in RELEASE (outcome 3 with the deadline when it would
// not answer in time). Pushed past its SLO, the pool shrinks at once, the
// lowest priority loses first, and the upstream's latency is back under the
// SLO within a few ticks. Ticks are counted by the daemon itself, from its
// telemetry rows in SQLite, so a loaded machine cannot blur them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { latencyAtLoad } from '../../src/sim/upstream-latency.ts';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { sleep } from '../fixtures/telemetry.ts';

const SLO_MS = 50;
const TIMEOUT_MS = 500;
const BASE_MS = 5;
const KNEE_TPS = 400;
const WINDOW_MS = 250;
// Callers wait for a permit a little, as real ones do: waiters are served in priority order.
const WAIT_MS = 50;

/** The upstream API: its load is what it took in the last WINDOW_MS, as a rate; answers past TIMEOUT_MS are timeouts. */
class SlowingUpstream {
  private readonly at: number[] = [];
  /** Latency (ms) of one more request now. */
  admit(now: number): number {
    this.at.push(now);
    while (this.at.length > 0 && this.at[0] <= now - WINDOW_MS) this.at.shift();
    return latencyAtLoad(BASE_MS, (this.at.length * 1000) / WINDOW_MS / KNEE_TPS);
  }
}

const POOL = {
  name: 'api', capacity_tps: 2000, burst: 50, upstream: { window: 'token_bucket', slo_ms: SLO_MS, timeout_ms: TIMEOUT_MS },
  services: [
    { name: 'checkout', priority: 'CRITICAL', max_tps: 2000, burst: 50 },
    { name: 'batch', priority: 'LOW', max_tps: 2000, burst: 50 },
  ],
};

/**
 * ACQUIREs (wait 0) in batches of 40 every 25 ms at most (1600/s: four times the knee), one in eight for
 * checkout, until `stop()`; each grant goes to the upstream and is released with its latency.
 */
async function load(port: number, upstream: SlowingUpstream, stop: () => boolean): Promise<number> {
  const c = await RawClient.open(port);
  const keys = ['api/checkout', 'api/batch', 'api/batch', 'api/batch', 'api/batch', 'api/batch', 'api/batch', 'api/batch'];
  let id = 1;
  let granted = 0;
  for (let b = 0; b < 100_000 && !stop() && c.closeCode === null; b++) {
    const started = performance.now();
    const ids: number[] = [];
    const reqs: unknown[][] = [];
    for (let i = 0; i < 40; i++) { ids.push(id); reqs.push([1, id++, keys[i % keys.length], 1, WAIT_MS]); }
    c.send(...reqs);
    const releases: unknown[][] = [];
    for (const rid of ids) {
      const r = await c.reply(rid, 3000);
      if (r[2] !== 0) continue;
      granted++;
      const ms = upstream.admit(performance.now());
      releases.push(ms > TIMEOUT_MS ? [2, 0, r[3], 3, TIMEOUT_MS * 1000] : [2, 0, r[3], 0, Math.round(ms * 1000)]);
    }
    if (releases.length > 0) c.send(...releases);
    await sleep(Math.max(2, 25 - (performance.now() - started)));
  }
  c.close();
  return granted;
}

interface Row { tick: number; key: string; granted: number; requested: number; latency_sum_us: number; latency_count: number }

describe('an upstream that slows past its SLO, in a running daemon', () => {
  it('fair: the pool shrinks, the lowest priority first, and latency is back under the SLO within a few ticks', async () => {
    const daemon = await startTestDaemon({ policy: { mode: 'fair' }, pools: [POOL] });
    let stop = false;
    const running = load(daemon.port, new SlowingUpstream(), () => stop);
    await sleep(5000);
    stop = true;
    assert.ok((await running) > 0);
    await sleep(200); // the last releases land in a tick
    await daemon.stop();
    const db = new Database(daemon.dbFile!, { readonly: true });
    try {
      const rows = db.prepare(`SELECT t.tick AS tick, k.key AS key, t.granted AS granted, t.requested AS requested,
        t.latency_sum_us AS latency_sum_us, t.latency_count AS latency_count FROM telemetry t JOIN keys k ON k.id = t.key_id
        ORDER BY t.tick`).all() as Row[];
      const effective = new Map((db.prepare("SELECT tick, effective_tps FROM decisions WHERE pool = 'api'").all() as
        { tick: number; effective_tps: number }[]).map((d) => [d.tick, d.effective_tps]));
      const pool = rows.filter((r) => r.key === 'api' && r.latency_count > 0);
      const latency = (r: Row) => r.latency_sum_us / r.latency_count / 1000;
      if (process.env.DEBUG_LATENCY) for (const r of pool) console.log(r.tick, r.granted, latency(r).toFixed(1), effective.get(r.tick));
      const over = pool.find((r) => latency(r) > SLO_MS);
      assert.ok(over !== undefined, 'the load pushed the upstream past its SLO');
      const f = over.tick;
      // The pool shrinks at once: the capacity decided in the tick that saw it is under what was granted then.
      const shrunk = effective.get(f);
      assert.ok(shrunk !== undefined && shrunk < POOL.capacity_tps && shrunk < (over.granted * 10) * 0.95,
        `effective capacity after tick ${f}: ${shrunk} (granted ${over.granted * 10}/s)`);
      // Latency is back under the SLO within a few ticks, and stays there most of the time.
      const back = pool.find((r) => r.tick > f && latency(r) <= SLO_MS);
      assert.ok(back !== undefined && back.tick <= f + 5, `back under the SLO at tick ${back?.tick} (over at ${f})`);
      const late = pool.filter((r) => r.tick > f + 10);
      assert.ok(late.length >= 10, `ticks of traffic after the shrink: ${late.length}`);
      const within = late.filter((r) => latency(r) <= SLO_MS).length;
      assert.ok(within >= 0.8 * late.length, `late ticks within the SLO: ${within} of ${late.length}`);
      // Lowest priority first: batch (LOW) loses its share, checkout (CRITICAL) keeps being served.
      const share = (key: string, from: number, to: number) => {
        const rs = rows.filter((r) => r.key === key && r.tick >= from && r.tick <= to);
        const g = rs.reduce((s, r) => s + r.granted, 0);
        const q = rs.reduce((s, r) => s + r.requested, 0);
        return { granted: g, fulfilment: q > 0 ? g / q : 1 };
      };
      const last = late[late.length - 1].tick;
      const checkout = share('api/checkout', f + 10, last);
      const batch = share('api/batch', f + 10, last);
      const meanEff = late.reduce((s, r) => s + (effective.get(r.tick) ?? 0), 0) / late.length;
      assert.ok(meanEff < KNEE_TPS, `the pool runs under the knee: ${meanEff}`);
      assert.ok(batch.fulfilment < 0.5 && checkout.fulfilment > 2 * batch.fulfilment,
        `checkout ${JSON.stringify(checkout)}, batch ${JSON.stringify(batch)}`);
      const checkoutDemandTps = rows.filter((r) => r.key === 'api/checkout' && r.tick > f + 10 && r.tick <= last)
        .reduce((s, r) => s + r.requested, 0) / ((last - f - 10) * 0.1);
      const checkoutTps = checkout.granted / ((last - f - 10) * 0.1);
      assert.ok(checkoutTps >= 0.8 * Math.min(checkoutDemandTps, meanEff),
        `checkout keeps what it asks for, up to the pool: ${checkoutTps.toFixed(0)}/s of ${checkoutDemandTps.toFixed(0)}/s asked, pool ${meanEff.toFixed(0)}/s`);
    } finally {
      db.close();
    }
  });
});
