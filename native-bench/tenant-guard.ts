// Micro-benchmark of the surge and abuse defence's share of a controller
// tick (control/tenant-guard.ts TenantGuard.tick), 100 000 live tenants of
// one tier (262 144 slots), ops = ticks:
//   - none moved: the scan of the TOUCHED bytes and the services' classes;
//   - the same 1000 tenants move every tick (a steady active set);
//   - 1000 other tenants move every tick (churn: each is watched until its
//     rate settles, about 7 ticks, so about 8000 visits a tick).
// Each tick's asks are written into the per-tenant counters as the I/O
// threads would (TenantCounters.count, 1000 a tick, inside the measured loop: a few
// microseconds of the figures). The tick
// target is 20 ms with 1000 keys active: the defence's share is the figure
// to hold against it.
//
// Run: node --import tsx native-bench/tenant-guard.ts [--json] [--seconds S]

import { validateConfig } from '../src/config/schema.ts';
import { TenantGuard } from '../src/control/tenant-guard.ts';
import { KeyIndex } from '../src/shm/key-index.ts';
import { allocateShm, tenantSlotsFor } from '../src/shm/layout.ts';
import { TC_REQUESTED, TenantCounterReader, TenantCounters, allocateTenantCounters, tenantCounterViews } from '../src/shm/tenant-counters.ts';
import { TenantTable } from '../src/shm/tenant-table.ts';
import { type CaseResult, benchArgs, lastCpuOpsPerSec, measure, report } from './harness.ts';

const args = benchArgs();
const TENANTS = 100_000;
const ACTIVE = 1000;

function setup(): { guard: TenantGuard; counters: TenantCounters; reader: TenantCounterReader; live: Int32Array } {
  const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 1e6, services: [{ name: 's', priority: 'LOW', max_tps: 1e6,
    tenants: { tiers: [{ name: 'std', priority: 'LOW', tps: 20 }], max: TENANTS } }] }] }, {});
  const keys = KeyIndex.fromConfig(config);
  const service = keys.find('p/s');
  const tier = keys.find('p/s/~std');
  const slots = tenantSlotsFor(TENANTS);
  const views = allocateShm(keys.size, 1, slots);
  const cv = tenantCounterViews(allocateTenantCounters(slots, 1), slots, 1);
  const reader = new TenantCounterReader(cv);
  const table = new TenantTable(views);
  const live = new Int32Array(TENANTS);
  const enc = new TextEncoder();
  for (let i = 0; i < TENANTS; i++) {
    const b = enc.encode(`t${i}`);
    live[i] = table.create(service, b, 0, b.length, table.hash(service, b, 0, b.length), TENANTS, tier, 20_000, 4_000, 0);
  }
  return { guard: new TenantGuard(keys, views, reader), counters: new TenantCounters(cv, 0), reader, live };
}

function ticks(moving: (tick: number, i: number) => number | -1): (n: number) => number {
  const { guard, counters, reader, live } = setup();
  let tick = 0;
  return (n) => {
    for (let k = 0; k < n; k++) {
      tick++;
      for (let i = 0; i < ACTIVE; i++) {
        const t = moving(tick, i);
        if (t >= 0) counters.count(live[t], TC_REQUESTED, 3);
      }
      reader.sweep(); // the controller's, before the guard (shared with telemetry's tenant rows)
      guard.tick(1, tick * 1000);
    }
    return guard.tiers[0].current[0];
  };
}

const IDLE = 'TenantGuard.tick, 100 000 tenants, none moved';
const STEADY = 'TenantGuard.tick, the same 1000 tenants moved';
const CHURN = 'TenantGuard.tick, 1000 other tenants moved each tick';
const cases: CaseResult[] = [
  { case: IDLE, opsPerSec: measure(ticks(() => -1), args.seconds, 1 << 12), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  { case: STEADY, opsPerSec: measure(ticks((_, i) => i * 97), args.seconds, 1 << 12), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  { case: CHURN, opsPerSec: measure(ticks((tick, i) => (tick * ACTIVE + i) % TENANTS), args.seconds, 1 << 12), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
];
report({ name: 'tenant-guard', cases }, args);
