// The no-wait rule of issue 13 (pool-loans.ts: the trunk reservation and the
// booking a second ahead) for tenant keys: a CRITICAL service whose callers
// are tenants (`p/c/TENANT`), asking with wait_ms 0 through the real
// RequestHandler (I/O thread 1), keeps its assured rate at a binding gate
// while a LOW service borrowing far above the pool hammers without waiting
// (the bucket table of I/O thread 0, as no-wait-priority.test.ts plays it).
// Real shared memory, a ManualClock, no timing. Failed before tenant
// acquires passed noWait to the table: the tenants got 79/s (window) and
// 135/s (token bucket) of 180 assured.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { tenantSlotsWanted } from '../../../src/config/tenants-schema.ts';
import { writeAllocations } from '../../../src/control/bucket-writes.ts';
import { configuredLimits } from '../../../src/control/key-limits.ts';
import { Authenticator } from '../../../src/io/auth.ts';
import { RequestHandler } from '../../../src/io/request-handler.ts';
import { TenantKeys } from '../../../src/io/tenant-keys.ts';
import { BucketTable, GRANTED } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { MILLI, allocateShm, tenantSlotsFor } from '../../../src/shm/layout.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';
import { HandlerDriver } from '../../fixtures/handler-driver.ts';

const GATE_TPS = 600;
const GATE_BURST = 100;
const ASSURED_TPS = 180;
const SECONDS = 8;
/** Seconds left out of the counts: the buckets' initial bursts. */
const WARM_S = 3;
const FLUSH_MS = 100;
const TENANTS = ['acme', 'globex', 'initech'];

function setup(window: string) {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, log: { level: 'silent' }, policy: { mode: 'static' },
    pools: [{ name: 'p', capacity_tps: 1000, burst: GATE_BURST, upstream: { window }, services: [
      { name: 'c', priority: 'CRITICAL', max_tps: 1000, burst: 50, tenants: {
        tiers: [{ name: 'all', priority: 'CRITICAL', tps: 1000, burst: 50 }], max: 10, idle_s: 600 } },
      { name: 'l', priority: 'LOW', max_tps: 5000, burst: 200 },
    ] }],
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 2, tenantSlotsFor(tenantSlotsWanted(config.pools[0].services)));
  const clock = new ManualClock();
  BucketTable.initialize(views, keys, 0);
  const low = new BucketTable(views, clock, 0);
  const crit = new BucketTable(views, clock, 1);
  const control = new BucketTable(views, clock, null);
  const [pool, c, l, tier] = ['p', 'p/c', 'p/l'].map((k) => keys.lookup(k)).concat(keys.find('p/c/~all'));
  const limits = keys.specs.map(configuredLimits);
  writeAllocations(control, limits, [{ pool, effectiveTps: 1000, burst: GATE_BURST, services: [c, l], endpoints: [[], []], alloc: [ASSURED_TPS, 0] }], 0);
  control.setRate(tier, 1000, 0); // the tier split gives the only tier the whole service
  control.setRate(pool, GATE_TPS, 0);
  const handler = new RequestHandler({
    config, keys, table: crit, thread: 1, auth: new Authenticator(config.auth), status: () => ({}),
    shuttingDown: () => false, tenants: new TenantKeys(keys, new TenantTable(views)),
  });
  return { clock, low, crit, l, driver: new HandlerDriver(handler) };
}

/** Plays SECONDS of traffic, the tenants asking `critTps` in all (in turn, wait_ms 0); grants per second of each service. */
function play(window: string, critTps: number): { critTps: number; lowTps: number } {
  const { clock, low, crit, l, driver } = setup(window);
  const conn = driver.conn();
  let asked = 0;
  let id = 1;
  let critGranted = 0;
  let lowGranted = 0;
  for (let ms = 0; ms < SECONDS * 1000; ms++) {
    clock.set(ms);
    const counted = ms >= WARM_S * 1000;
    if (ms % FLUSH_MS === 0) { low.flushAllowances(ms); crit.flushAllowances(ms); }
    for (let n = 0; n < 10_000 && low.acquire(l, MILLI, 3, false, ms, true) === GRANTED; n++) if (counted) lowGranted++;
    while (asked < Math.floor(((ms + 1) * critTps) / 1000)) {
      const key = `p/c/${TENANTS[asked++ % TENANTS.length]}`;
      const [reply] = driver.send(conn, [1, id++, key, 1, 0]);
      if (reply[2] !== 0) continue;
      if (counted) critGranted++;
      driver.send(conn, [2, id++, reply[3], 0, 1000]);
    }
  }
  const s = SECONDS - WARM_S;
  return { critTps: critGranted / s, lowTps: lowGranted / s };
}

for (const window of ['sliding_1s', 'token_bucket']) {
  describe(`tenant acquires without waiting at a binding ${window} gate`, () => {
    it('the CRITICAL service\'s tenants get its assured rate while a LOW service hammers, LOW the rest', () => {
      const { critTps, lowTps } = play(window, ASSURED_TPS);
      assert.ok(critTps >= ASSURED_TPS - 2, `the tenants were granted ${critTps}/s of ${ASSURED_TPS} assured (LOW ${lowTps}/s)`);
      assert.ok(lowTps >= GATE_TPS - critTps - 2, `LOW granted ${lowTps}/s of the ${GATE_TPS - critTps} left`);
    });
  });
}
