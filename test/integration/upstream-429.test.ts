// Capacity discovery in a running daemon: clients pass each grant to a fake
// upstream (a token bucket, the one mock: the upstream API is the true
// external boundary) and report its 429s in RELEASE. When the upstream's
// limit drops under the pool's capacity, the pool shrinks and the 429s stop
// within 2 ticks (of the tick the drop happened in). Ticks are counted by the daemon itself, from its telemetry
// rows in SQLite, so a loaded machine cannot blur them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startTestDaemon } from '../fixtures/daemon.ts';
import { runLoad, sleep } from '../fixtures/telemetry.ts';
import { FakeUpstream } from '../fixtures/fake-upstream.ts';
import { DEFAULT_DISCOVERY } from '../../src/control/capacity-discovery.ts';


const UPSTREAM_TPS = 300;
const TICK_S = 0.1; // the default tick_ms
// The fake upstream is a token bucket, and the pool says so: with a window gate (the default) the second
// before the drop would still count against the shrunk capacity, and the pool would rightly pause for it.
const POOL = {
  name: 'api', capacity_tps: 1000, burst: 20, upstream: { window: 'token_bucket' },
  services: [{ name: 'svc', priority: 'HIGH', max_tps: 1000, burst: 50 }],
};

describe('upstream 429s in a running daemon', () => {
  for (const mode of ['ppo', 'fair']) {
    it(`${mode}: the pool shrinks to what the upstream accepts and its 429s stop within 2 ticks`, async () => {
      const daemon = await startTestDaemon({ policy: { mode }, pools: [POOL] });
      const upstream = new FakeUpstream(100_000, 30);
      let stop = false;
      const load = runLoad(daemon.port, ['api/svc'], () => stop, { batch: 40, upstream: () => upstream.admit() });
      await sleep(1000);
      upstream.rate = UPSTREAM_TPS;
      await sleep(3000);
      stop = true;
      const counts = await load;
      await sleep(200); // the last releases land in a tick
      await daemon.stop();
      const db = new Database(daemon.dbFile!, { readonly: true });
      try {
        const ticks = db.prepare(`SELECT t.tick AS tick, t.throttled AS throttled, t.granted AS granted, t.requested AS requested FROM telemetry t
          JOIN keys k ON k.id = t.key_id WHERE k.key = 'api/svc' ORDER BY t.tick`).all() as { tick: number; throttled: number; granted: number; requested: number }[];
        const effective = new Map((db.prepare("SELECT tick, effective_tps FROM decisions WHERE pool = 'api'").all() as
          { tick: number; effective_tps: number }[]).map((d) => [d.tick, d.effective_tps]));
        if (process.env.DEBUG_429) for (const t of ticks) console.log(t.tick, t.granted, t.throttled, effective.get(t.tick));
        // Every failure message carries the ticks around the drop (tick: requested>granted/throttled@effective): a failure
        // under load must say what happened.
        const around = (from: number): string => ticks.filter((t) => t.tick >= from - 2 && t.tick <= from + 24)
          .map((t) => `${t.tick}:${t.requested}>${t.granted}/${t.throttled}@${Math.round(effective.get(t.tick) ?? -1)}`).join(' ');
        const with429 = ticks.filter((t) => t.throttled > 0);
        assert.ok(counts.throttled['api/svc'] > 0 && with429.length > 0, 'the upstream drop caused 429s');
        // As in the simulator's count (metrics.ts): the tick the upstream dropped in and the 2 after it may see 429s.
        const first = with429[0].tick;
        const episode = ticks.filter((t) => t.tick <= first + 2).reduce((s, t) => s + t.throttled, 0);
        const after = ticks.filter((t) => t.tick > first + 2 && t.tick <= first + 22);
        assert.ok(after.length >= 18 && after.every((t) => t.granted > 0), `traffic kept pressing after the drop: ${around(first)}`);
        // Quiet until discovery probes again: recoveryHoldS after the drop's last 429 tick (first + 1 or first + 2), the
        // slow start climbs back to the 429s' measured ceiling and one request above it; that probe may meet the upstream.
        const quiet = after.filter((t) => t.tick <= first + 1 + Math.round(DEFAULT_DISCOVERY.recoveryHoldS / TICK_S));
        assert.ok(quiet.length >= 4 && quiet.every((t) => t.throttled === 0), `the 429s stopped after 2 ticks: ${around(first)}`);
        // Later, probing back toward capacity_tps meets the upstream now and then, at a fraction of the drop's cost.
        const probes = after.reduce((s, t) => s + t.throttled, 0);
        assert.ok(probes <= episode / 2, `429s from probing (${probes}) against the drop's ${episode}: ${around(first)}`);
        const shrunk = effective.get(first + 2);
        assert.ok(shrunk !== undefined && shrunk <= UPSTREAM_TPS * 1.1, `effective capacity after 2 ticks: ${shrunk}: ${around(first)}`);
        // Measured against what the client asked: a client starved of CPU (the load generator shares this process's
        // thread with the daemon's controller) cannot press the upstream, and then no pool could use it.
        const perTick = UPSTREAM_TPS * TICK_S;
        const used = after.reduce((s, t) => s + t.granted, 0) / after.reduce((s, t) => s + Math.min(perTick, t.requested), 0);
        assert.ok(used > 0.7, `the pool still uses the upstream: ${(used * 100).toFixed(0)} % of what was asked up to its rate: ${around(first)}`);
      } finally {
        db.close();
      }
    });
  }
});
