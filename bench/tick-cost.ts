// The controller tick's main-thread cost in process, without a daemon: the
// memory benchmark's 100 000 keys (pools of 999 services; policy `ppo` by
// default, the default config's, with the shipped model), 1 000 of them active, 10 in each of 100 pools ("spread": every
// pool awake each tick), traffic written into shared memory as an I/O thread
// would (5 to 9 grants per key per tick, each released); per tick the
// controller's tick and the telemetry collection (TickRecorder.afterTick,
// its batch posted to a MessagePort as the writer does). Measured per tick:
// wall time and CPU time (process.cpuUsage: this process has no I/O threads,
// so it is the main thread's, GC included, with microsecond resolution;
// tsx's loader thread is idle). Each run is a fresh child process; with
// --baseline the commit's code (a temporary git worktree) and this
// checkout's alternate, round after round, so both share the machine's load.
// PPO's inference runs inline (as in the simulator) by default, so the
// model's rows are counted here; the daemon runs them in a worker thread and
// posts it the services it scores (src/control/policies/ppo.ts), which its
// main thread pays: --inference piscina does as the daemon does (the worker
// loads infer.task.ts under tsx); process.cpuUsage then counts the worker
// too, so the main thread's CPU is also read from /proc (its mean per tick,
// in 10 ms steps over the run).
//
// Run: tsx bench/tick-cost.ts [--baseline REF] [--rounds 3] [--ticks 60] [--mode ppo|fair|static|...] [--inference inline|piscina]

import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MessageChannel } from 'node:worker_threads';
import { manyKeysConfig } from './bench-config.ts';
import { activeKeys, baselineWorktree, threadCpuSeconds } from './idle-keys.ts';
import { ROOT } from './servers.ts';

const WARM_TICKS = 10;

interface RunFigures { root: string; ticks: number; wallP50: number; wallP99: number; cpuP50: number; cpuP99: number; cpuMean: number; tickCpuP50: number;
  /** The main thread's CPU per tick, mean over the run (/proc, 10 ms steps). */
  mainCpuMean: number;
  /** Pool decisions that fell back to fair over the measured ticks (deadline, busy, ...: PolicyRunner.fallbacksByKind). */
  fallbacks: number }

function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** One run in this process: the controller and recorder of the checkout at `root`. */
async function child(root: string, ticks: number, mode: string, inference: string): Promise<RunFigures> {
  const { validateConfig } = await import(`${root}/src/config/load.ts`);
  const { Controller } = await import(`${root}/src/control/controller.ts`);
  const { TickRecorder } = await import(`${root}/src/daemon/tick-recorder.ts`);
  const { BucketTable } = await import(`${root}/src/shm/bucket-table.ts`);
  const { ManualClock } = await import(`${root}/src/shm/clock.ts`);
  const { KeyIndex } = await import(`${root}/src/shm/key-index.ts`);
  const L = await import(`${root}/src/shm/layout.ts`);
  const raw = { ...manyKeysConfig(100_000, 2), policy: { mode, model: null }, log: { level: 'silent' } };
  const cfg = validateConfig(raw, {});
  const keys = KeyIndex.fromConfig(cfg);
  const clock = new ManualClock();
  const views = L.allocateShm(keys.size, 2);
  BucketTable.initialize(views, keys, clock.nowMs());
  const controller = new Controller(views, keys, cfg, clock, { inference });
  const io = new BucketTable(views, clock, 1);
  const { port1, port2 } = new MessageChannel();
  port2.on('message', () => {});
  const writer = {
    write(b: { buckets: Int32Array; values: Float64Array; decisionValues: Float64Array; decisionPositions?: Int32Array }): boolean {
      const transfer = [b.buckets.buffer, b.values.buffer, b.decisionValues.buffer] as ArrayBuffer[];
      if (b.decisionPositions !== undefined) transfer.push(b.decisionPositions.buffer as ArrayBuffer);
      port1.postMessage(b, transfer);
      return true;
    },
    stats: {},
  };
  const recorder = new TickRecorder(controller, views, keys, cfg, writer);
  const active = activeKeys(cfg, true).map((k) => keys.lookup(k));
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const wall: number[] = [], cpu: number[] = [], tickCpu: number[] = [];
  let main0 = 0, fallbacks0 = 0;
  const fallbacks = (): number => Object.values(controller.runner.fallbacksByKind as Record<string, number>).reduce((a, b) => a + b, 0);
  for (let t = 0; t < ticks + WARM_TICKS; t++) {
    if (t === WARM_TICKS) { main0 = threadCpuSeconds(process.pid, process.pid); fallbacks0 = fallbacks(); }
    for (const leaf of active) {
      const n = 5 + Math.floor(rnd() * 5);
      io.countPair(leaf, L.C_REQUESTED_INDEX, n, L.C_GRANTED_INDEX, n);
      io.countPair(leaf, L.C_GRANTS_INDEX, n, L.C_RELEASED_OK_INDEX, n);
    }
    clock.advance(1000);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    recorder.beforeTick();
    await controller.tick();
    const cTick = process.cpuUsage(c0);
    recorder.afterTick();
    const w1 = performance.now();
    const c1 = process.cpuUsage(c0);
    if (t >= WARM_TICKS) {
      wall.push(w1 - w0);
      cpu.push((c1.user + c1.system) / 1000);
      tickCpu.push((cTick.user + cTick.system) / 1000);
    }
    await new Promise((r) => setTimeout(r, 20)); // the port's messages and timers run between ticks, as in the daemon
  }
  const mainCpuMean = ((threadCpuSeconds(process.pid, process.pid) - main0) * 1000) / ticks;
  port1.close();
  await controller.close();
  return { mainCpuMean, fallbacks: fallbacks() - fallbacks0, root, ticks, wallP50: quantile(wall, 0.5), wallP99: quantile(wall, 0.99), cpuP50: quantile(cpu, 0.5), cpuP99: quantile(cpu, 0.99),
    cpuMean: cpu.reduce((a, b) => a + b, 0) / cpu.length, tickCpuP50: quantile(tickCpu, 0.5) };
}

function run(root: string, ticks: number, mode: string, inference: string): RunFigures {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', root, '--ticks', String(ticks), '--mode', mode,
    '--inference', inference],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop()!) as RunFigures;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { baseline: { type: 'string' }, rounds: { type: 'string', default: '3' }, ticks: { type: 'string', default: '60' },
      mode: { type: 'string', default: 'ppo' }, child: { type: 'string' }, inference: { type: 'string', default: 'inline' } },
    strict: true,
  });
  const ticks = Number(values.ticks);
  if (values.child !== undefined) {
    process.stdout.write(`${JSON.stringify(await child(values.child, ticks, values.mode!, values.inference!))}\n`);
    return;
  }
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const wt = values.baseline === undefined ? null : baselineWorktree(values.baseline);
  const rows: string[] = [];
  const ratios: number[] = [];
  const f = (x: number) => x.toFixed(1);
  try {
    for (let r = 1; r <= Number(values.rounds); r++) {
      const before = wt === null ? null : run(wt.dir, ticks, values.mode!, values.inference!);
      const after = run(ROOT, ticks, values.mode!, values.inference!);
      for (const [label, x] of [[`before (${values.baseline})`, before], [`after (${head})`, after]] as const) {
        if (x === null) continue;
        rows.push(`| ${label}, round ${r} | ${f(x.wallP50)} | ${f(x.wallP99)} | ${f(x.cpuP50)} | ${f(x.cpuP99)} | ${f(x.cpuMean)} | ${f(x.tickCpuP50)} | ${f(x.mainCpuMean)} | ${x.fallbacks} |`);
      }
      if (before !== null) ratios.push(after.cpuP50 / before.cpuP50);
      process.stderr.write(`bench:tick-cost: round ${r} done\n`);
    }
  } finally {
    wt?.remove();
  }
  const head1 = `| ${values.mode}, inference ${values.inference}, ${ticks} ticks per run | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms | CPU mean ms | of which the controller's tick, CPU p50 ms | main thread CPU mean ms (/proc) | fallbacks to fair |`;
  const ratio = ratios.length === 0 ? '' : `\n\nCPU p50 after / before, per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}.`;
  process.stdout.write(`Measured ${new Date().toISOString()}, node ${process.version}, load average ${loadavg()[0].toFixed(2)}.\n\n${head1}\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n${rows.join('\n')}${ratio}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
