// value_per_request in a running daemon (docs/tenants.md "Revenue-aware"):
// two tiers of one priority class, tenants of both asking more than their
// service can give; the controller's tick gives the more valuable tier's
// demand first, so its cap (STATUS limit_tps of `api/v1/~gold`) takes
// nearly all of the service while the other's falls to nearly nothing;
// without values the two share it evenly. Real daemon (fair policy, 100 ms
// ticks), real clients; no timed assertions: bounded polls of STATUS.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { sleep, until } from '../fixtures/telemetry.ts';

const SERVICE_TPS = 300;

function pools(values: boolean) {
  return [{
    name: 'api', capacity_tps: 1000, burst: 100,
    services: [{ name: 'v1', priority: 'HIGH', max_tps: SERVICE_TPS, burst: 60, tenants: {
      tiers: [
        { name: 'basic', priority: 'HIGH', tps: 1000, ...(values ? { value_per_request: 1 } : {}) },
        { name: 'gold', priority: 'HIGH', tps: 1000, ...(values ? { value_per_request: 5 } : {}) },
      ], default_tier: 'basic', max: 10, idle_s: 600 } }],
  }];
}

async function limits(c: RawClient, id: number): Promise<{ gold: number; basic: number }> {
  const snap = (await c.call([3, id]))[3] as { keys: { key: string; limit_tps: number }[] };
  const of = (k: string) => snap.keys.find((x) => x.key === k)!.limit_tps;
  return { gold: of('api/v1/~gold'), basic: of('api/v1/~basic') };
}

/** Both tenants ask 20 tokens every 50 ms (400/s each, more than the service's 300) until `stop()`. */
async function withLoad(port: number, body: (admin: RawClient) => Promise<void>): Promise<void> {
  const [c, admin] = await Promise.all([RawClient.open(port), RawClient.open(port)]);
  assert.equal((await admin.call([17, 1, 'set', 'api/v1/midas', { tier: 'gold' }]))[2], 0);
  let stop = false;
  const load = (async () => {
    let id = 1;
    while (!stop) {
      const replies = await Promise.all(['midas', 'joe'].flatMap((t) => Array.from({ length: 20 }, () => c.call([1, id++, `api/v1/${t}`, 1, 0]))));
      const releases = replies.filter((r) => r[2] === 0).map((r) => [2, 0, r[3], 0, 1000]);
      if (releases.length > 0) c.send(...releases);
      await sleep(50);
    }
  })();
  try {
    await body(admin);
  } finally {
    stop = true;
    await load;
    c.close();
    admin.close();
  }
}

describe('tier value_per_request in a running daemon', () => {
  it('gives the more valuable tier of a class the service first; without values the class shares it evenly', async () => {
    for (const values of [true, false]) {
      const d = await startTestDaemon({ policy: { mode: 'fair' }, pools: pools(values) });
      try {
        await withLoad(d.port, async (admin) => {
          let id = 100;
          let now = { gold: 0, basic: 0 };
          const want = values
            ? () => now.gold >= 0.8 * SERVICE_TPS && now.basic <= 0.2 * SERVICE_TPS
            : () => Math.abs(now.gold - now.basic) <= 0.1 * SERVICE_TPS && now.gold > 0.3 * SERVICE_TPS;
          const met = await until(async () => { now = await limits(admin, id++); return want(); }, 15_000, 'the tiers\' caps')
            .then(() => true, () => false);
          assert.ok(met, `${values ? 'gold takes the service first' : 'the two tiers share the service'}: caps ${JSON.stringify(now)}`);
        });
      } finally {
        await d.stop();
      }
    }
  });
});
