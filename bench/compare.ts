// npm run bench:compare: tpsd beside the transport floor (a bare uWS echo
// server with the same framing) and beside what a Node user would pick
// instead (Redis + rate-limiter-flexible over ioredis), in one run, with the
// same load generator (`tpsd bench`) and the same keys (bench/s0..s15).
//
// Servers: started once each as child processes on free loopback ports
// (servers.ts) and stopped at the end, also on error or SIGINT/SIGTERM;
// redis-server is installed with apt-get when missing. Load: every trial is a
// fresh `tpsd bench --json` process (so no trial inherits another's JIT or
// heap); trials are interleaved (trial 1 of every run, then trial 2, ...) so a
// slow spell of the machine spreads over all systems. The load generator
// samples the server's CPU time (/proc/PID/stat) over its measured window.
//
// Usage: npm run bench:compare -- [--trials 3] [--seconds 3] [--warmup 1]
//          [--only c1|pipelined|own-client|tenant|batched] [--memory] [--dry-run] [--help]
//          [--baseline DIR]
// Writes the tables to docs/benchmarks.md (not with --dry-run or --only).
// The tenant scenario runs tpsd on tenant keys (bench/t/cN) beside configured
// endpoints of the same service (bench/t/eN) in the same daemon, in the same
// trials; with --baseline DIR (another checkout, e.g. `git archive` of an
// older commit with node_modules linked) also on that checkout's daemon, in
// the same trials, for a before/after ratio measured in one run.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_LEASE_TTL_MS, benchConfig } from './bench-config.ts';
import { SCENARIOS, type RunDef, type Scenario } from './compare-plan.ts';
import { errorNotes, scenarioTables, targetOutcomes, targetTable, type Trials } from './compare-report.ts';
import { writeSection } from './doc.ts';
import type { LoadResult } from '../src/loadgen/run-load.ts';
import { MEMORY_COMMAND, measureMemory, memoryTable } from './memory.ts';
import { ROOT, ensureRedisServer, runTpsdBench, startEcho, startRedis, startTpsd, type ServerHandle } from './servers.ts';

const KEYS = 16;
const IO_THREADS = 2;

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string' },
    memory: { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    baseline: { type: 'string' },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(`npm run bench:compare -- [--trials N (3)] [--seconds S (3)] [--warmup S (1)] [--only SCENARIO] [--memory] [--dry-run]
  scenarios: ${SCENARIOS.map((s) => `${s.id} (${s.title})`).join('\n             ')}
  --memory   also measure RSS with 10 000 and 100 000 keys
  --dry-run  print the tables, do not write docs/benchmarks.md (--only never writes it)
  --baseline DIR  also run the tenant scenario on the tpsd of checkout DIR (a before/after in one run)
`);
  process.exit(0);
}
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${values.trials}`);
const scenarios = SCENARIOS.filter((s) => values.only === undefined || s.id === values.only);
if (scenarios.length === 0) throw new Error(`--only ${values.only}: no such scenario (${SCENARIOS.map((s) => s.id).join(', ')})`);
const log = (s: string) => process.stderr.write(`bench:compare: ${s}\n`);

/** One `tpsd bench --json` run in a fresh process. */
function runBench(sc: Scenario, def: RunDef, server: ServerHandle): Promise<LoadResult> {
  return runTpsdBench(['--url', server.url, '--client', def.client,
    '--connections', String(sc.connections), '--pipeline', String(sc.pipeline), '--batch', String(sc.batch),
    '--keys', def.keys ?? String(KEYS), '--duration', values.seconds!, '--warmup', values.warmup!, '--server-pid', String(server.pid)],
  `${sc.id}/${def.id}`);
}

function versionOf(pkg: string): string {
  try { return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '?'; }
}

function commandOutput(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return '?'; }
}

const servers: ServerHandle[] = [];
let stopping: Promise<unknown> | null = null;
const stopAll = () => { stopping ??= Promise.all(servers.map((s) => s.stop())); return stopping; };
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { log(`${sig}: stopping the servers`); void stopAll().finally(() => process.exit(130)); });

const loadStart = loadavg()[0];
const started = new Date();
const redisBin = ensureRedisServer(log);
const results: Trials = new Map(scenarios.map((s) => [s.id, []]));
try {
  const needs = new Set(scenarios.flatMap((s) => s.runs.map((r) => r.system)));
  if (values.baseline === undefined) needs.delete('tpsd-base');
  const bySystem: Partial<Record<RunDef['system'], ServerHandle>> = {};
  if (needs.has('echo')) servers.push(bySystem.echo = await startEcho(IO_THREADS));
  if (needs.has('tpsd')) servers.push(bySystem.tpsd = await startTpsd({
    config: benchConfig({ keys: KEYS, ioThreads: IO_THREADS, tenants: scenarios.some((s) => s.runs.some((r) => r.keys !== undefined)) }),
  }));
  if (needs.has('tpsd-base')) {
    servers.push(bySystem['tpsd-base'] = await startTpsd({ config: benchConfig({ keys: KEYS, ioThreads: IO_THREADS, tenants: true }), root: values.baseline }));
  }
  if (needs.has('redis')) servers.push(bySystem.redis = await startRedis(redisBin));
  for (const s of servers) log(`${s.name}: pid ${s.pid}, ${s.url}`);
  for (let t = 1; t <= trials; t++) {
    for (const sc of scenarios) {
      const trial: Record<string, LoadResult> = {};
      for (const def of sc.runs) {
        if (!needs.has(def.system)) continue;
        const r = await runBench(sc, def, bySystem[def.system]!);
        trial[def.id] = r;
        log(`trial ${t}/${trials} ${sc.id} ${def.id}: ${r.decisionsPerSec.toFixed(0)} decisions/s, p50 ${r.latencyMs.p50.toFixed(3)} ms, `
          + `p99 ${r.latencyMs.p99.toFixed(3)} ms, server ${r.cpu.server?.usPerDecision?.toFixed(2) ?? '-'} us/decision, errors ${r.errors.total}`);
      }
      results.get(sc.id)!.push(trial);
    }
  }
} finally {
  await stopAll();
}
const loadEnd = loadavg()[0];

const outcomes = targetOutcomes(results);
const notes = errorNotes(results);
const summary = [
  `Measured ${started.toISOString()} at commit ${commandOutput('git', ['rev-parse', '--short', 'HEAD'])}`
    + `${commandOutput('git', ['status', '--porcelain']) === '' ? '' : ' (with uncommitted changes)'}: `
    + `node ${process.version}, ${cpus()[0]?.model.trim() ?? '?'} (${cpus().length} logical CPUs, shared by the load generator and the server), `
    + `load average ${loadStart.toFixed(2)} at the start and ${loadEnd.toFixed(2)} at the end.`,
  `${trials} trial(s) per row, each a fresh \`tpsd bench\` process: ${values.warmup} s warm-up, then ${values.seconds} s measured; `
    + `${KEYS} keys; tpsd with ${IO_THREADS} I/O threads (bench/bench-config.ts) and the default lease TTL, `
    + `${BENCH_LEASE_TTL_MS.toLocaleString('en-US').replace(/,/g, ' ')} ms (the generator never releases: each thread's lease table `
    + `fills within seconds and stays full), the echo server with ${IO_THREADS} threads; `
    + `${commandOutput(redisBin, ['--version']).split(' ').slice(0, 3).join(' ')}, ioredis ${versionOf('ioredis')}, `
    + `rate-limiter-flexible ${versionOf('rate-limiter-flexible')}.`,
].join('\n');
const body = [summary, '', '### Targets', '', targetTable(outcomes), '', scenarioTables(results),
  notes.length > 0 ? `Runs with errors:\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : 'No run had errors or lost connections.', ''].join('\n');
process.stdout.write(`\n${body}\n`);
if (!values['dry-run'] && values.only === undefined) {
  writeSection('compare', 'npm run bench:compare', body);
  log('wrote docs/benchmarks.md');
}
if (values.memory) {
  const m = await measureMemory(10_000, 100_000, log);
  const mem = `Measured ${new Date().toISOString()}, node ${process.version}, load average ${loadavg()[0].toFixed(2)}.\n\n${memoryTable(m)}`;
  process.stdout.write(`\n${mem}\n`);
  if (!values['dry-run']) writeSection('memory', MEMORY_COMMAND, mem);
}
