// Micro-benchmark of ACQUIRE on a tenant key against a configured key, the
// whole request path of an I/O thread: RequestHandler.handleMessage on a
// message of 64 flat ACQUIREs (read from the bytes, key looked up, tokens
// taken, lease made, reply written), as io-worker.ts calls it.
//
// Cases (ops = requests):
//   - a configured endpoint key, `api/v1/ep` (3 levels: endpoint, service,
//     pool): the baseline, same process;
//   - one tenant, `api/v1/acme` (4 levels: the tenant's own bucket, its tier,
//     the service, the pool);
//   - 1000 configured endpoints in turn, `api/v1/config-N` (each request
//     another key, so another bucket and no per-thread allowance: what many
//     busy keys cost whatever they are), the baseline of:
//   - 1000 tenants in turn, `api/v1/tenant-N` (each request another tenant:
//     the lookup of many tenants, as a public API sees them);
//   - one tenant without the per-tenant counters (the daemon counts them
//     for telemetry and the abuse detector; this shows what they cost).
// Every bucket is reset to its initial state and every tenant refilled
// between batches (outside the requests' own work: a copy of the bucket
// records and a few thousand stores), so every acquire is granted in every
// case, and none meets the pool's gate.
// Target: a tenant key at least 0.8x a configured key (one tenant against
// one endpoint, 1000 tenants against 1000 endpoints; 1000 tenants against
// the one endpoint is printed too). The cases run side by side in 5 ms
// slices, one of each in turn, for --seconds (harness.ts
// measureInterleaved), so the ratios are paired within a few tens of
// milliseconds however loaded the machine is.
//
// Run: node --import tsx native-bench/tenant-acquire.ts [--json] [--seconds S]

import { validateConfig } from '../src/config/schema.ts';
import { tenantSlotsWanted } from '../src/config/tenants-schema.ts';
import { Authenticator } from '../src/io/auth.ts';
import type { Conn } from '../src/io/conn.ts';
import { RequestHandler } from '../src/io/request-handler.ts';
import { TenantKeys } from '../src/io/tenant-keys.ts';
import { MsgWriter } from '../src/protocol/codec.ts';
import { BucketTable } from '../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../src/shm/clock.ts';
import { KeyIndex } from '../src/shm/key-index.ts';
import { TENANT_FIELDS, T_BURST_MILLI_INDEX, allocateShm, tenantSlotsFor } from '../src/shm/layout.ts';
import { TenantTable } from '../src/shm/tenant-table.ts';
import { TenantCounters, allocateTenantCounters, tenantCounterViews } from '../src/shm/tenant-counters.ts';
import { type CaseResult, benchArgs, measureInterleaved, report } from './harness.ts';

const args = benchArgs();
const BATCH = 64;
const TENANTS = 1000;
const MAX = 2_000_000;

const config = validateConfig({
  listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
  limits: { max_leases_per_thread: 4096 },
  pools: [{ name: 'api', capacity_tps: MAX, burst: MAX, services: [
    { name: 'v1', priority: 'HIGH', max_tps: MAX, burst: MAX, endpoints: [{ name: 'ep', max_tps: MAX, burst: MAX },
      // Named like the tenants (`config-N`, `tenant-N`: keys of the same lengths).
      ...Array.from({ length: TENANTS }, (_, i) => ({ name: `config-${i}`, max_tps: MAX, burst: MAX }))],
      tenants: { tiers: [{ name: 'std', priority: 'HIGH', tps: MAX, burst: MAX }], max: 2 * TENANTS } },
  ] }],
}, {});
const keys = KeyIndex.fromConfig(config);
const views = allocateShm(keys.size, 1, tenantSlotsFor(tenantSlotsWanted(config.pools[0].services)));
const epoch = hrtimeMs();
BucketTable.initialize(views, keys, createClock(epoch).nowMs());
const table = new BucketTable(views, createClock(epoch), 0);
const initialState = views.state.slice();
const slots = views.layout.tenantSlots;
const handler = new RequestHandler({
  config, keys, table, thread: 0, auth: new Authenticator(config.auth), status: () => ({}), shuttingDown: () => false,
  // Counting each tenant's tokens (shm/tenant-counters.ts), as the daemon does.
  tenants: new TenantKeys(keys, new TenantTable(views), new TenantCounters(tenantCounterViews(allocateTenantCounters(slots, 1), slots, 1), 0)),
});
// The same without those counts: what they cost, in the same run.
const uncounted = new RequestHandler({
  config, keys, table, thread: 0, auth: new Authenticator(config.auth), status: () => ({}), shuttingDown: () => false,
  tenants: new TenantKeys(keys, new TenantTable(views)),
});
const conn: Conn = { connId: 1, token: null, authFailures: 0, outstanding: 0, closed: false, out: null };

/**
 * Every bucket as it was made (full, its gate and pace full, no refusal
 * stamped) and every tenant full again. Restoring only the token counts left
 * the pool's pace (a bucket at twice its capacity) to run dry in the faster
 * cases: a take it refused stamps the pool, and while stamped no take of the
 * pool keeps a per-thread allowance, so the configured key (the fastest
 * case) measured the gate's slow path in some slices and not in others.
 */
function refill(): void {
  views.state.set(initialState);
  const r = views.tenantRecords;
  for (let i = 0; i < views.layout.tenantSlots; i++) r[i * TENANT_FIELDS] = r[i * TENANT_FIELDS + T_BURST_MILLI_INDEX];
}

/** MESSAGES messages of BATCH flat ACQUIREs, the n-th request on keyOf(n). */
function messages(keyOf: (n: number) => string, count: number): Uint8Array[] {
  const w = new MsgWriter();
  const out: Uint8Array[] = [];
  for (let m = 0; m < count; m++) {
    for (let r = 0; r < BATCH; r++) w.array(5).uint(1).uint(1 + r).str(keyOf(m * BATCH + r)).uint(1).uint(0);
    out.push(w.take());
  }
  return out;
}

function handlerCase(msgs: Uint8Array[], h: RequestHandler = handler): (n: number) => number {
  let i = 0;
  return (n) => {
    refill();
    let bytes = 0;
    for (let k = 0; k < n; k++) {
      h.handleMessage(conn, msgs[i]);
      i = (i + 1) % msgs.length;
      bytes += h.out.length;
      h.out.reset();
    }
    return bytes;
  };
}

/** Checks the message's 64 replies are all grants (status 0), so no case measures denials. */
function checkGranted(msg: Uint8Array, what: string): void {
  handler.handleMessage(conn, msg);
  const replies = handler.out.view();
  handler.out.reset();
  // A grant is [1, id, 0, lease, remaining]: fixarray(5), 1, id, 0.
  let grants = 0;
  for (let i = 0; i + 3 < replies.length; i++) if (replies[i] === 0x95 && replies[i + 1] === 1 && replies[i + 3] === 0) grants++;
  if (grants < BATCH) throw new Error(`${what}: ${grants} of ${BATCH} granted`);
}

const configured = messages(() => 'api/v1/ep', 16);
const oneTenant = messages(() => 'api/v1/acme', 16);
const manyTenants = messages((n) => `api/v1/tenant-${n % TENANTS}`, TENANTS / BATCH * 4);
const manyConfigured = messages((n) => `api/v1/config-${n % TENANTS}`, TENANTS / BATCH * 4);
refill();
for (const m of manyTenants) checkGranted(m, 'tenants');
refill();
for (const m of manyConfigured) checkGranted(m, 'configured keys');
refill();
checkGranted(configured[0], 'configured');
checkGranted(oneTenant[0], 'tenant');

const CONF = 'handleMessage, 64 ACQUIREs on a configured endpoint key (3 levels)';
const ONE = 'handleMessage, 64 ACQUIREs on one tenant key (tenant + 3 levels)';
const MANY_CONF = 'handleMessage, 64 ACQUIREs on 1000 configured endpoint keys in turn';
const MANY = 'handleMessage, 64 ACQUIREs on 1000 tenant keys in turn';
const UNCOUNTED = 'handleMessage, 64 ACQUIREs on one tenant key, without per-tenant counters';
const target = (baseline: string) => ({ text: 'at least 0.8x a configured key', baseline, minRatio: 0.8 });

const runs = [handlerCase(configured), handlerCase(oneTenant), handlerCase(manyConfigured), handlerCase(manyTenants), handlerCase(oneTenant, uncounted)];
const [conf, one, manyConf, many, uncountedRes] = measureInterleaved(runs, args.seconds, BATCH, 1 << 16);
const cases: CaseResult[] = [
  { case: CONF, opsPerSec: conf.opsPerSec, cpuOpsPerSec: conf.cpuOpsPerSec, baseline: true, baselineOf: ONE },
  { case: ONE, opsPerSec: one.opsPerSec, cpuOpsPerSec: one.cpuOpsPerSec, baseline: false, target: target(CONF) },
  { case: MANY_CONF, opsPerSec: manyConf.opsPerSec, cpuOpsPerSec: manyConf.cpuOpsPerSec, baseline: true, baselineOf: MANY },
  { case: MANY, opsPerSec: many.opsPerSec, cpuOpsPerSec: many.cpuOpsPerSec, baseline: false, target: target(MANY_CONF) },
  { case: UNCOUNTED, opsPerSec: uncountedRes.opsPerSec, cpuOpsPerSec: uncountedRes.cpuOpsPerSec, baseline: false, target: target(CONF) },
];
report({ name: 'tenant-acquire', cases }, args);
if (!args.json) {
  /** The cycles' CPU ratios (a case's ops per CPU-second over its baseline's in the same cycle): quartiles. */
  const spread = (a: number[], b: number[]) => {
    const r = a.map((v, i) => v / b[i]).sort((x, y) => x - y);
    const q = (f: number) => r[Math.min(r.length - 1, Math.floor(f * r.length))].toFixed(2);
    return `${q(0.5)} (quartiles ${q(0.25)} - ${q(0.75)}, ${r.length} cycles)`;
  };
  process.stdout.write(`tenant-acquire: CPU ratio per cycle, median: one tenant / configured key ${spread(one.cycleCpuOpsPerSec, conf.cycleCpuOpsPerSec)}; `
    + `1000 tenants / 1000 configured keys ${spread(many.cycleCpuOpsPerSec, manyConf.cycleCpuOpsPerSec)}; `
    + `1000 tenants / one configured key ${spread(many.cycleCpuOpsPerSec, conf.cycleCpuOpsPerSec)}\n`);
}
