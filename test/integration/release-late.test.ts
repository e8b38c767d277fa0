// RELEASEs past the pool's upstream.slo_ms are counted late by the I/O
// thread (request-handler.ts, late-thresholds.ts) and shown in /metrics as
// tpsd_release_late_total, on the key and every key above it; a pool without
// slo_ms counts nothing late; a reload that changes slo_ms applies on the
// I/O threads. Real daemon on port 0; the "upstream" is a fixed list of
// answer times the client reports in RELEASE, above and below the SLO,
// timeouts (outcome 3) among them. The reload reaches a thread by message,
// so the test waits for it in a bounded poll (no timed assertion), then
// checks a fresh round exactly.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/schema.ts';
import type { TpsdConfig } from '../../src/config/types.ts';
import { RawClient, acquireAndRelease, httpGet, startTestDaemon } from '../fixtures/daemon.ts';

const SLO_MS = 50;
const POOLS = [
  { name: 'api', capacity_tps: 5000, burst: 500, upstream: { slo_ms: SLO_MS, timeout_ms: 1000 },
    services: [{ name: 'svc', priority: 'HIGH', max_tps: 5000, burst: 500, endpoints: [{ name: 'ep', max_tps: 5000, burst: 500 }] }] },
  { name: 'free', capacity_tps: 5000, burst: 500, services: [{ name: 'svc', priority: 'HIGH', max_tps: 5000, burst: 500 }] },
];
/** The fake upstream's answers: [latency ms, outcome]; 4 past 50 ms (one a timeout at the caller's deadline), 4 within it (50 exactly is not late). */
const ANSWERS: [number, number][] = [[10, 0], [49, 0], [50, 0], [51, 0], [120, 0], [30, 2], [1000, 3], [75, 1]];
const LATE_AT_50 = 4;

async function lateTotals(port: number): Promise<Map<string, number>> {
  const body = (await httpGet(port, '/metrics')).body;
  const out = new Map<string, number>();
  for (const m of body.matchAll(/^tpsd_release_late_total\{key="([^"]+)"[^}]*\} (\S+)$/gm)) out.set(m[1], Number(m[2]));
  return out;
}

function withSlo(config: TpsdConfig, sloMs: number): TpsdConfig {
  const raw = JSON.parse(JSON.stringify(config)) as { pools: { name: string; upstream: { slo_ms: number | null } }[] };
  raw.pools.find((p) => p.name === 'api')!.upstream.slo_ms = sloMs;
  return validateConfig(raw, {});
}

describe('late releases (latency past the pool\'s slo_ms)', () => {
  it('are counted on the key and its chain, only past slo_ms, and not at all without an SLO', async () => {
    const d = await startTestDaemon({ pools: POOLS });
    const c = await RawClient.open(d.port);
    try {
      await acquireAndRelease(c, 'api/svc/ep', ANSWERS);
      await acquireAndRelease(c, 'api/svc', ANSWERS);
      await acquireAndRelease(c, 'free/svc', ANSWERS);
      const late = await lateTotals(d.port);
      assert.equal(late.get('api/svc/ep'), LATE_AT_50, 'the endpoint: its own releases past 50 ms');
      assert.equal(late.get('api/svc'), 2 * LATE_AT_50, 'the service: its endpoint\'s and its own');
      assert.equal(late.get('api'), 2 * LATE_AT_50, 'the pool: all of them');
      assert.equal(late.get('free/svc'), 0, 'a pool without slo_ms counts nothing late');
      assert.equal(late.get('free'), 0);
    } finally {
      c.close();
      await d.stop();
    }
  });

  it('follow a reload that changes slo_ms', async () => {
    const d = await startTestDaemon({ pools: POOLS, io_threads: 1 });
    const c = await RawClient.open(d.port);
    try {
      await d.reload(withSlo(d.config, 100));
      // 75 ms: late under the old SLO, not under the new one. Poll until the thread has the reload.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const before = (await lateTotals(d.port)).get('api/svc') ?? 0;
        await acquireAndRelease(c, 'api/svc', [[75, 0]]);
        if ((await lateTotals(d.port)).get('api/svc') === before) break;
        if (Date.now() > deadline) assert.fail('a reload to slo_ms 100 never stopped counting 75 ms as late');
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = (await lateTotals(d.port)).get('api/svc')!;
      await acquireAndRelease(c, 'api/svc', ANSWERS);
      assert.equal((await lateTotals(d.port)).get('api/svc'), before + 2, 'past 100 ms: 120 ms and the timeout at 1000 ms');
    } finally {
      c.close();
      await d.stop();
    }
  });
});
