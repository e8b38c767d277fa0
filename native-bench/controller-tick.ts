// Micro-benchmark of the control loop's tick (src/control/controller.ts) for
// 1000 keys: 20 pools of 1 pool bucket + 49 services. Set up as the daemon
// does (allocateShm, KeyIndex, BucketTable.initialize), driven by a
// ManualClock advanced one tick_ms (1 s) per tick; before each tick one
// tick's worth of counters is added for every service in an I/O thread's
// counter block (varied demand, some denials), as the I/O threads would; that
// bookkeeping is inside the timed loop and is about 1% of it.
//
// Cases, one Controller each, every tick awaited in turn (the latency of one
// tick): policy fair (the fallback of every mode), static, ppo with inline
// inference (everything on this thread), and ppo as the daemon runs it, with
// inference in a Piscina worker: for that case the "CPU" figure is the main
// thread's busy time per tick (event-loop utilisation, which leaves out the
// worker and the time spent waiting for it), the cost the tick puts on the
// thread that also answers admin ops and writes telemetry; the wall figure is
// the tick's latency, Piscina round trips included. Target: a tick under 2 ms.
//
// Run: node --import tsx native-bench/controller-tick.ts [--json] [--seconds S]

import { performance } from 'node:perf_hooks';
import { validateConfig } from '../src/config/schema.ts';
import type { PolicyMode } from '../src/config/types.ts';
import { Controller } from '../src/control/controller.ts';
import { Rng } from '../src/ppo/rng.ts';
import { BucketTable } from '../src/shm/bucket-table.ts';
import { ManualClock } from '../src/shm/clock.ts';
import { KeyIndex } from '../src/shm/key-index.ts';
import { C_DENIED_INDEX, C_GRANTED_INDEX, C_REQUESTED_INDEX, allocateShm } from '../src/shm/layout.ts';
import { benchModel } from './bench-model.ts';
import { type CaseResult, benchArgs, lastCpuOpsPerSec, measureAsync, report } from './harness.ts';

const POOLS = 20;
const SERVICES = 49;
const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];
const args = benchArgs();
const { path: modelPath, label } = benchModel();

function setup(mode: PolicyMode, inference: 'inline' | 'piscina' = 'inline'): { tick: () => Promise<number>; keys: number; controller: Controller } {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: 1000, log: { level: 'silent' },
    policy: { mode, model: modelPath },
    pools: Array.from({ length: POOLS }, (_, p) => ({
      name: `p${p}`, capacity_tps: 10_000,
      services: Array.from({ length: SERVICES }, (_, s) => ({ name: `s${s}`, priority: PRIORITIES[s % 4], min_tps: s % 5 === 0 ? 10 : 0, max_tps: 5000 })),
    })),
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const clock = new ManualClock();
  BucketTable.initialize(views, keys, clock.nowMs());
  const io = new BucketTable(views, clock, 0);
  const controller = new Controller(views, keys, config, clock, { inference });
  if (mode === 'ppo' && controller.modelVersion === 'none') throw new Error(`no usable model at ${modelPath}`);
  const services = keys.specs.filter((s) => s.depth === 1).map((s) => s.index);
  const rng = new Rng(11);
  const demand = Float64Array.from(services, () => rng.uniform(0, 600));
  let t = 0;
  return {
    keys: keys.size,
    controller,
    tick: async () => {
      t++;
      for (let i = 0; i < services.length; i++) {
        const d = Math.round(demand[i] * (1 + 0.3 * Math.sin(t + i)));
        io.count(services[i], C_REQUESTED_INDEX, d);
        io.count(services[i], C_GRANTED_INDEX, d - (d >> 4));
        io.count(services[i], C_DENIED_INDEX, d >> 4);
      }
      clock.advance(1000);
      await controller.tick();
      return controller.ticks;
    },
  };
}

const cases: CaseResult[] = [];
for (const mode of ['fair', 'static', 'ppo'] as const) {
  const { tick, keys } = setup(mode);
  const what = mode === 'ppo' ? `ppo, inline inference (${label})` : mode;
  cases.push({
    case: `Controller.tick, ${keys} keys (${POOLS} pools x ${SERVICES} services), ${what}`,
    opsPerSec: await measureAsync(tick, args.seconds), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false,
    target: { text: 'under 2 ms per tick', maxUsPerOp: 2000 },
  });
}
{
  const { tick, keys, controller } = setup('ppo', 'piscina');
  try {
    const elu0 = performance.eventLoopUtilization();
    let ticks = 0;
    const opsPerSec = await measureAsync(async () => { ticks++; return tick(); }, args.seconds);
    // Busy time over every tick run, warm-up included.
    const busyMsPerTick = performance.eventLoopUtilization(elu0).active / ticks;
    cases.push({
      case: `Controller.tick, ${keys} keys (${POOLS} pools x ${SERVICES} services), ppo, inference in Piscina (CPU: main thread busy time) (${label})`,
      opsPerSec, cpuOpsPerSec: 1000 / busyMsPerTick, baseline: false,
      target: { text: 'under 2 ms per tick', maxUsPerOp: 2000 },
    });
  } finally {
    await controller.close();
  }
}
report({ name: 'controller-tick', cases }, args);
