// A reload (SIGHUP: Daemon.reload, as cli/start.ts calls it) of the settings
// the controller read only at start: a pool's upstream.slo_ms (the latency
// rule of capacity discovery) and a tenant tier's `defense` apply to the
// running daemon. Tiers: a changed tps or burst applies to the tier's live
// tenants and to those made after (by any I/O thread), the burst clamping
// what they hold; a changed priority applies to the tier's bucket; an added
// or removed tier is refused with its path, the running config kept. Real
// daemons (2 I/O threads, 100 ms ticks), real clients; no timed assertions:
// waits are bounded polls; a rate is checked as at most rate x elapsed +
// burst (holds however slow the machine), and a raised one as more than
// twice what the old rate could give in the same time.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/schema.ts';
import type { TpsdConfig } from '../../src/config/types.ts';
import { ATTACK } from '../../src/control/surge-detector.ts';
import { PRIORITY_INDEX, stateBase } from '../../src/shm/layout.ts';
import { TenantTable } from '../../src/shm/tenant-table.ts';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { sleep, until } from '../fixtures/telemetry.ts';

/** The running config, changed by `edit` on a plain copy, validated as a reloaded file would be. */
function edited(config: TpsdConfig, edit: (raw: any) => void): TpsdConfig { // eslint-disable-line @typescript-eslint/no-explicit-any
  const raw = JSON.parse(JSON.stringify(config)) as unknown;
  edit(raw);
  return validateConfig(raw, {});
}

const CAPACITY_TPS = 1000;
const LATENCY_POOL = {
  name: 'api', capacity_tps: CAPACITY_TPS, burst: 100, upstream: { window: 'token_bucket', slo_ms: 5000, timeout_ms: 10_000 },
  services: [{ name: 'v1', priority: 'HIGH', max_tps: CAPACITY_TPS, burst: 100 }],
};

const TIER_TPS = 20;
const TENANT_POOL = {
  name: 'api', capacity_tps: 5000, burst: 500,
  services: [{ name: 'v1', priority: 'HIGH', max_tps: 5000, burst: 500, tenants: {
    tiers: [{ name: 'std', priority: 'HIGH', tps: TIER_TPS, burst: 4, defense: { tps_fraction: 0.1, cooldown_s: 60 } }], max: 100, idle_s: 60 } }],
};

const RATED_POOL = {
  name: 'api', capacity_tps: 5000, burst: 500,
  services: [{ name: 'v1', priority: 'HIGH', max_tps: 5000, burst: 500, tenants: {
    tiers: [
      { name: 'std', priority: 'HIGH', tps: 10, burst: 5, defense: { tps_fraction: 1 } },
      { name: 'big', priority: 'LOW', tps: 1, burst: 10, defense: { tps_fraction: 1 } },
    ], default_tier: 'std', max: 100, idle_s: 600 } }],
};
/** Acquires in flight at once while a rate is measured (each waits for its token). */
const IN_FLIGHT = 10;
const MEASURE_MS = 1500;

/**
 * Tenant `key`'s grants over about MEASURE_MS: IN_FLIGHT loops, each asking
 * one token with wait_ms (no denial, so no abuse class) and releasing it.
 * `elapsedS`: from the first ask to the last reply.
 */
async function measure(c: RawClient, key: string, ids: { next: number }): Promise<{ granted: number; elapsedS: number }> {
  const start = performance.now();
  let granted = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() - start < MEASURE_MS) {
      const r = await c.call([1, ids.next++, key, 1, 2000], 10_000);
      if (r[2] !== 0) continue;
      granted++;
      c.send([2, 0, r[3], 0, 1000]);
    }
  }));
  return { granted, elapsedS: (performance.now() - start) / 1000 };
}

async function effectiveTps(c: RawClient, id: number): Promise<number> {
  const snap = (await c.call([3, id]))[3] as { pools: { name: string; effective_capacity_tps: number }[] };
  return snap.pools.find((p) => p.name === 'api')!.effective_capacity_tps;
}

describe('reload: settings the controller holds', () => {
  it('applies a changed upstream.slo_ms: releases at 200 ms, within a 5 s SLO, press the pool once it is 50 ms', async () => {
    const d = await startTestDaemon({ policy: { mode: 'fair' }, pools: [LATENCY_POOL] });
    const [c, admin] = await Promise.all([RawClient.open(d.port), RawClient.open(d.port)]);
    let stop = false;
    // About 200 acquires a second, each released as answered in 200 ms.
    const load = (async () => {
      let id = 1;
      while (!stop) {
        const replies = await Promise.all(Array.from({ length: 10 }, () => c.call([1, id++, 'api/v1', 1, 0])));
        const releases = replies.filter((r) => r[2] === 0).map((r) => [2, 0, r[3], 0, 200_000]);
        if (releases.length > 0) c.send(...releases);
        await sleep(50);
      }
    })();
    try {
      let statusId = 1;
      await sleep(1000);
      assert.equal(await effectiveTps(admin, statusId++), CAPACITY_TPS, '200 ms is within the 5 s SLO');
      await d.reload(edited(d.config, (raw) => { raw.pools[0].upstream.slo_ms = 50; }));
      let now = CAPACITY_TPS;
      await until(async () => (now = await effectiveTps(admin, statusId++)) < CAPACITY_TPS, 5000,
        `the pool shrinks under the reloaded 50 ms SLO (effective ${now})`);
    } finally {
      stop = true;
      await load;
      c.close();
      admin.close();
      await d.stop();
    }
  });

  it('applies a changed tier defense to a tenant already held', async () => {
    const d = await startTestDaemon({ policy: { mode: 'fair' }, pools: [TENANT_POOL] });
    const guard = d.controller.guard!;
    const table = new TenantTable(d.views);
    const service = d.keys.find('api/v1');
    const slotOf = (name: string) => table.findByName(service, new TextEncoder().encode(name));
    const mallory = await RawClient.open(d.port);
    let hammer = true;
    // 30 acquires every 50 ms (600/s, 30x the tier), whatever the replies say.
    const hammering = (async () => {
      let id = 1;
      while (hammer) {
        mallory.send(...Array.from({ length: 30 }, () => [1, id++, 'api/v1/mallory', 1, 0]));
        await sleep(50);
      }
    })();
    try {
      await until(() => slotOf('mallory') >= 0 && guard.detector.classOf(slotOf('mallory')) === ATTACK, 10_000, 'mallory classed attack');
      const m = slotOf('mallory');
      await until(() => table.rateMilli(m) === 2000, 3000, 'mallory held at 0.1 x 20/s');

      await d.reload(edited(d.config, (raw) => { raw.pools[0].services[0].tenants.tiers[0].defense.tps_fraction = 0.25; }));
      let rate = 0;
      await until(() => (rate = table.rateMilli(m)) === 5000, 3000, `mallory held at the reloaded 0.25 x 20/s (rate ${rate} milli)`);
      assert.equal(guard.tiers[0].defended, 1, 'still one defended tenant');
      hammer = false;
      await hammering;
      // A shorter cool-down applies too: the limit lifts within it, back to the tier's rate.
      await d.reload(edited(d.config, (raw) => { raw.pools[0].services[0].tenants.tiers[0].defense.cooldown_s = 0.5; }));
      await until(() => table.rateMilli(m) === TIER_TPS * 1000, 10_000, 'the limit lifts after the reloaded 0.5 s cool-down');
    } finally {
      hammer = false;
      await hammering;
      mallory.close();
      await d.stop();
    }
  });

  it('applies a changed tier tps and burst to live tenants and new ones; a tier priority too; refuses an added tier, naming it', async () => {
    const d = await startTestDaemon({ policy: { mode: 'fair' }, pools: [RATED_POOL] });
    const [c, admin] = await Promise.all([RawClient.open(d.port), RawClient.open(d.port)]);
    const ids = { next: 1 };
    try {
      // carol (tier big) fills her bucket: 10 tokens at 1/s.
      assert.equal((await admin.call([17, 1, 'set', 'api/v1/carol', { tier: 'big' }]))[2], 0);
      assert.equal((await c.call([1, ids.next++, 'api/v1/carol', 1, 0]))[2], 0);
      const before = await measure(c, 'api/v1/alice', ids);
      assert.ok(before.granted <= 10 * before.elapsedS + 5 + 1, `alice at 10/s: ${before.granted} in ${before.elapsedS} s`);

      const raised = edited(d.config, (raw) => {
        raw.pools[0].services[0].tenants.tiers[0].tps = 60;
        raw.pools[0].services[0].tenants.tiers[1].burst = 3;
        raw.pools[0].services[0].tenants.tiers[1].priority = 'CRITICAL';
      });
      await d.reload(raised);
      // The burst clamps what carol held (9 or 10 tokens): 10 asks at once get 3, and what 1/s earned meanwhile.
      const t0 = performance.now();
      const burst = await Promise.all(Array.from({ length: 10 }, () => c.call([1, ids.next++, 'api/v1/carol', 1, 0])));
      const carolGranted = burst.filter((r) => r[2] === 0).length;
      assert.ok(carolGranted <= 3 + Math.ceil((performance.now() - t0) / 1000), `carol got ${carolGranted} of 10 after the burst went to 3`);
      assert.ok(carolGranted >= 1, 'carol still holds tokens');

      for (const name of ['alice', 'bob']) { // alice lived before the reload; bob is made after it, by an I/O thread
        const after = await measure(c, `api/v1/${name}`, ids);
        assert.ok(after.granted <= 60 * after.elapsedS + 5 + 1, `${name} at 60/s: ${after.granted} in ${after.elapsedS} s`);
        assert.ok(after.granted > 2 * (10 * after.elapsedS + 5), `${name} at the reloaded 60/s, not 10/s: ${after.granted} in ${after.elapsedS} s`);
      }
      const big = d.keys.find('api/v1/~big');
      assert.equal(d.views.state[stateBase(big) + PRIORITY_INDEX], 0, 'tier big is CRITICAL (0) now');

      const added = edited(d.config, (raw) => {
        raw.pools[0].services[0].tenants.tiers.push({ name: 'gold', priority: 'CRITICAL', tps: 100 });
      });
      await assert.rejects(d.reload(added), (e: Error & { code?: string }) => e.code === 'TPSD_DAEMON_RESTART_NEEDED'
        && /pools\[0\]\.services\[0\]\.tenants\.tiers\[2\] \(tier "gold" added\)/.test(e.message), 'an added tier is named by its path');
      assert.equal(d.config.pools[0].services[0].tenants!.tiers.length, 2, 'the running config is kept');
      assert.equal(d.config.pools[0].services[0].tenants!.tiers[0].tps, 60);
    } finally {
      c.close();
      admin.close();
      await d.stop();
    }
  });
});
