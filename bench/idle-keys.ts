// What 100 000 configured keys cost a daemon that serves few of them: RSS,
// CPU over a minute with no traffic, and the controller's tick (main thread)
// idle and with 1 000 keys active; for this checkout and, in the same run,
// for a baseline commit (a temporary git worktree of it), so the two
// columns share the machine's load. Each daemon is a fresh `tpsd start`
// process (bench/servers.ts) with the memory benchmark's config: pools of one
// pool bucket and 999 services, the default policy (ppo), tick_ms 1000,
// telemetry on.
//
// - RSS: settled as in bench/memory.ts (at least 15 s, until it stops moving).
// - idle CPU: the process's CPU time (all threads) over IDLE_S, as % of a core.
// - tick: the controller tick's duration as the daemon records it (the
//   `ticks` table of its telemetry database, duration_ms) and the main
//   thread's CPU time per tick (/proc/PID/task/PID/stat: the tick, its
//   telemetry collection and the main thread's GC).
// - active: `tpsd bench` (open loop, RELEASE on grant) over 1 000 keys, 10 in
//   each of 100 pools ("spread": every pool evaluated each tick) or the first
//   1 000 services (2 pools, "packed"); measured after WARM_S of load,
//   packed first (a pool that had traffic stays awake 64 ticks after it).
// - 100 000 tenants live: another daemon, the bench config's 16 keys and
//   service bench/t with tenants (max 100 000, idle_s an hour, so none is
//   forgotten meanwhile); one client acquires (and releases) each tenant key
//   bench/t/cN once, 256 in flight, then RSS is read settled as above.
//
// Run: npm run bench:idle -- [--baseline REF] [--keys 100000] [--rss-only] [--no-tenants] [--pairs N]
// [--node-flags "FLAGS"] [--write] (--baseline: a commit to measure beside
// this checkout, e.g. the commit before the idle-keys work; --pairs: both
// columns N times, alternated; --node-flags: Node/V8 options for this
// checkout's daemons only, e.g. a young generation size to weigh; --write
// puts the table in docs/benchmarks.md).
// With --tick-only [--rounds N]: only the spread tick, over SPREAD_S, with
// its wall p50 / p99 and the main thread's CPU, a fresh daemon per round,
// baseline and this checkout alternated N times (its own table).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { benchConfig, manyKeysConfig } from './bench-config.ts';
import { OUTCOME_OK, connect } from '../src/client/index.ts';
import { writeSection } from './doc.ts';
import { mib, settledRss } from './memory.ts';
import { ROOT, startTpsd, type ServerHandle } from './servers.ts';
import { clockTicksPerSecond, cpuSeconds } from '../src/loadgen/proc-stats.ts';

const IDLE_S = 60;
const WARM_S = 10;
const ACTIVE_S = 20;
/** The spread tick's window with --tick-only: a minute of ticks, for their p50 and p99. */
const SPREAD_S = 60;
const ACTIVE_KEYS = 1000;
const LOAD_RATE = 5000;
const IO_THREADS = 2;
export const IDLE_COMMAND = 'npm run bench:idle -- --baseline REF --write';
export const TICK_COMMAND = 'npm run bench:idle -- --tick-only --baseline REF --rounds 2 --write';

interface TickFigures {
  ticks: number; avgMs: number; maxMs: number; mainCpuMsPerTick: number;
  /** Tick wall time (ticks.duration_ms), median and 99th percentile. */
  p50Ms: number; p99Ms: number;
  /** The main thread's CPU per second (one tick a second), median and 99th percentile; /proc counts in 10 ms steps. */
  cpuP50Ms: number; cpuP99Ms: number;
}
export interface IdleResult {
  label: string;
  rssBytes: number;
  rssNote: string;
  idleCpuPct: number;
  idle: TickFigures;
  spread: TickFigures;
  packed: TickFigures;
  /** Settled RSS with `tenants` tenants live (bench/t/cN), null when not measured. */
  tenants: { rssBytes: number; rssNote: string; granted: number } | null;
}

/** CPU seconds of one thread of `pid` (the main thread: tid = pid). */
export function threadCpuSeconds(pid: number, tid: number): number {
  const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[14 - 3]) + Number(rest[15 - 3])) / clockTicksPerSecond();
}

/** The q-quantile of xs (NaN when empty). */
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The ticks recorded between two wall-clock times, from the daemon's own database, and the main thread's CPU meanwhile (sampled each second). */
async function tickWindow(s: ServerHandle, seconds: number): Promise<TickFigures> {
  const from = Date.now();
  const cpu0 = threadCpuSeconds(s.pid, s.pid);
  const perSecondMs: number[] = [];
  let last = cpu0;
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    const now = threadCpuSeconds(s.pid, s.pid);
    perSecondMs.push((now - last) * 1000);
    last = now;
  }
  const cpu1 = last;
  const to = Date.now();
  await sleep(1500); // the last tick's rows reach the file
  const db = new Database(join(s.dir, 'data', 'tpsd.db'), { readonly: true });
  try {
    const ms = (db.prepare('SELECT duration_ms AS d FROM ticks WHERE ts_ms >= ? AND ts_ms < ?').all(from, to) as { d: number }[]).map((r) => r.d);
    const n = ms.length;
    return { ticks: n, avgMs: n > 0 ? ms.reduce((a, b) => a + b, 0) / n : NaN, maxMs: n > 0 ? Math.max(...ms) : NaN,
      mainCpuMsPerTick: n > 0 ? ((cpu1 - cpu0) * 1000) / n : NaN, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99),
      cpuP50Ms: quantile(perSecondMs, 0.5), cpuP99Ms: quantile(perSecondMs, 0.99) };
  } finally {
    db.close();
  }
}

/** 1 000 keys: 10 in each of 100 pools, or the first 1 000 services in config order. */
export function activeKeys(config: { pools: { name: string; services: { name: string }[] }[] }, spread: boolean): string[] {
  const all = config.pools.flatMap((p) => p.services.map((s) => `${p.name}/${s.name}`));
  if (!spread) return all.slice(0, ACTIVE_KEYS);
  const per = Math.ceil(ACTIVE_KEYS / config.pools.length);
  const out: string[] = [];
  for (let i = 0; out.length < ACTIVE_KEYS && i < per * 10; i++) {
    for (const p of config.pools) if (out.length < ACTIVE_KEYS && i * 97 < p.services.length) out.push(`${p.name}/${p.services[i * 97].name}`);
  }
  return out;
}

/** `tpsd bench` against s over `keys`, for `seconds`; resolves when it exits. */
function load(s: ServerHandle, keys: string[], seconds: number): Promise<void> {
  const argv = ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--url', s.url, '--keys', keys.join(','), '--rate', String(LOAD_RATE),
    '--release', '--pipeline', '64', '--threads', '1', '--warmup', '0', '--duration', String(seconds), '--json'];
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  return new Promise((res, rej) => child.once('exit', (code) => (code === 0 ? res() : rej(new Error(`tpsd bench exited ${code}: ${err}`)))));
}

async function activeWindow(s: ServerHandle, keys: string[], seconds = ACTIVE_S): Promise<TickFigures> {
  const running = load(s, keys, WARM_S + seconds + 3);
  await sleep(WARM_S * 1000);
  const figures = await tickWindow(s, seconds);
  await running;
  await sleep(2000);
  return figures;
}

const NO_TICKS: TickFigures = { ticks: 0, avgMs: NaN, maxMs: NaN, mainCpuMsPerTick: NaN, p50Ms: NaN, p99Ms: NaN, cpuP50Ms: NaN, cpuP99Ms: NaN };

/** `rssOnly`: the settled RSS, then stop (no CPU or tick windows: their cells show "-"). */
export async function measureIdleKeys(label: string, root: string, keys: number, log: (s: string) => void, rssOnly = false,
  nodeFlags: readonly string[] = []): Promise<IdleResult> {
  const config = manyKeysConfig(keys, IO_THREADS) as Parameters<typeof activeKeys>[0] & Record<string, unknown>;
  const s = await startTpsd({ config, root, nodeFlags });
  try {
    const r = await settledRss(s.pid);
    log(`${label}: RSS ${mib(r.bytes)}`);
    const rssNote = r.stable ? `settled after ${r.afterS.toFixed(0)} s` : `not stable: ${mib(r.min)} - ${mib(r.max)}`;
    if (rssOnly) return { label, rssBytes: r.bytes, rssNote, idleCpuPct: NaN, idle: NO_TICKS, spread: NO_TICKS, packed: NO_TICKS, tenants: null };
    const c0 = cpuSeconds(s.pid) ?? NaN;
    const t0 = performance.now();
    const idle = await tickWindow(s, IDLE_S);
    const idleCpuPct = (((cpuSeconds(s.pid) ?? NaN) - c0) / ((performance.now() - t0) / 1000)) * 100;
    log(`${label}: idle CPU ${idleCpuPct.toFixed(1)}% of a core, tick ${idle.avgMs.toFixed(2)} ms`);
    // Packed first: after the spread load every pool stays awake HINT_MEMORY_TICKS ticks (control/pool-rest.ts).
    const packed = await activeWindow(s, activeKeys(config, false));
    log(`${label}: 1000 active (packed) tick ${packed.avgMs.toFixed(2)} ms, main thread ${packed.mainCpuMsPerTick.toFixed(1)} ms CPU per tick`);
    const spread = await activeWindow(s, activeKeys(config, true));
    log(`${label}: 1000 active (spread) tick ${spread.avgMs.toFixed(2)} ms, main thread ${spread.mainCpuMsPerTick.toFixed(1)} ms CPU per tick`);
    return { label, rssBytes: r.bytes, rssNote, idleCpuPct, idle, spread, packed, tenants: null };
  } finally {
    await s.stop();
  }
}

/** The bench config's keys and service bench/t whose tenants stay live: max `tenants`, idle_s an hour. */
function tenantsConfig(tenants: number): Record<string, unknown> {
  const config = benchConfig({ keys: 16, ioThreads: IO_THREADS, tenants: true }) as { pools: { services: Record<string, unknown>[] }[] };
  const t = config.pools[0].services.find((svc) => svc.name === 't')!;
  t.tenants = { ...(t.tenants as object), max: tenants, idle_s: 3600 };
  return config;
}

/** Acquires (and releases) bench/t/c0 .. c(n-1) once each, `inFlight` at a time: each answer, granted or denied, means the tenant was made (an error rejects); the number granted. */
async function makeTenants(url: string, n: number, inFlight = 256): Promise<number> {
  const client = await connect(url);
  let next = 0, granted = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) {
      const p = await client.acquire(`bench/t/c${i}`);
      if (p.granted) granted++;
      if (p.lease !== 0) client.release(p.lease, OUTCOME_OK, 0);
    }
  };
  try { await Promise.all(Array.from({ length: inFlight }, lane)); } finally { await client.close(); }
  return granted;
}

export async function measureLiveTenants(label: string, root: string, tenants: number, log: (s: string) => void,
  nodeFlags: readonly string[] = []): Promise<IdleResult['tenants']> {
  const s = await startTpsd({ config: tenantsConfig(tenants), root, nodeFlags });
  try {
    const granted = await makeTenants(s.url, tenants);
    const r = await settledRss(s.pid);
    log(`${label}: RSS ${mib(r.bytes)} with ${tenants} tenants live (${granted} first acquires granted)`);
    return { rssBytes: r.bytes, rssNote: r.stable ? `settled after ${r.afterS.toFixed(0)} s` : `not stable: ${mib(r.min)} - ${mib(r.max)}`, granted };
  } finally {
    await s.stop();
  }
}

/** The spread tick alone (--tick-only): a fresh daemon, 1 000 keys spread over 100 pools, a minute of ticks. */
export async function measureSpreadTick(label: string, root: string, keys: number, log: (s: string) => void,
  nodeFlags: readonly string[] = []): Promise<{ label: string; spread: TickFigures }> {
  const config = manyKeysConfig(keys, IO_THREADS) as Parameters<typeof activeKeys>[0] & Record<string, unknown>;
  const s = await startTpsd({ config, root, nodeFlags });
  try {
    await sleep(5000);
    const spread = await activeWindow(s, activeKeys(config, true), SPREAD_S);
    log(`${label}: spread tick p50 ${spread.p50Ms.toFixed(2)} ms, p99 ${spread.p99Ms.toFixed(2)} ms, main thread ${spread.mainCpuMsPerTick.toFixed(1)} ms CPU per tick`);
    return { label, spread };
  } finally {
    await s.stop();
  }
}

export function spreadTable(rs: { label: string; spread: TickFigures }[], keys: number): string {
  const lines = [`| ${keys.toLocaleString('en-US')} keys, 1 000 active spread over 100 pools, ${SPREAD_S} s | ticks | wall p50 | wall p99 | wall mean (max) | main thread CPU per tick, mean | main thread CPU per second, p50 / p99 |`,
    '|---|--:|--:|--:|--:|--:|--:|'];
  for (const { label, spread: f } of rs) {
    lines.push(`| ${label} | ${f.ticks} | ${cell(f.p50Ms, 2)} ms | ${cell(f.p99Ms, 2)} ms | ${cell(f.avgMs, 2)} (${cell(f.maxMs, 1)}) ms | ${cell(f.mainCpuMsPerTick, 1)} ms | ${cell(f.cpuP50Ms, 0)} / ${cell(f.cpuP99Ms, 0)} ms |`);
  }
  return lines.join('\n');
}

/** --tick-only: the spread tick of `ref` and of this checkout, alternated `rounds` times (the before/after columns share the load). */
async function tickOnly(baseline: string | undefined, rounds: number, keys: number, head: string, log: (s: string) => void,
  flags: readonly string[]): Promise<string> {
  const wt = baseline === undefined ? null : baselineWorktree(baseline);
  const results: { label: string; spread: TickFigures }[] = [];
  try {
    for (let r = 1; r <= rounds; r++) {
      if (wt !== null) results.push(await measureSpreadTick(`before (${baseline}), round ${r}`, wt.dir, keys, log));
      results.push(await measureSpreadTick(`after (${[head, ...flags].join(' ')}), round ${r}`, ROOT, keys, log, flags));
    }
  } finally {
    wt?.remove();
  }
  return spreadTable(results, keys);
}

/** A temporary worktree of `ref` sharing this checkout's node_modules; removed by the returned function. */
export function baselineWorktree(ref: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tpsd-baseline-'));
  rmSync(dir, { recursive: true });
  execFileSync('git', ['worktree', 'add', '--detach', dir, ref], { cwd: ROOT, stdio: 'ignore' });
  symlinkSync(resolve(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { dir, remove: () => { execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT, stdio: 'ignore' }); } };
}

const cell = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function idleTable(rs: IdleResult[], keys: number): string {
  const head = `| ${keys.toLocaleString('en-US')} configured keys | ${rs.map((r) => r.label).join(' | ')} | target |`;
  const lines = [head, `|---|${rs.map(() => '--:|').join('')}---|`];
  const row = (what: string, f: (r: IdleResult) => string, target: string) => lines.push(`| ${what} | ${rs.map(f).join(' | ')} | ${target} |`);
  row('RSS, idle', (r) => `${mib(r.rssBytes)} (${r.rssNote})`, '< 400 MiB');
  if (rs.some((r) => r.tenants !== null)) {
    row(`RSS, ${keys.toLocaleString('en-US')} tenants live (16 keys configured)`, (r) => (r.tenants === null ? '-' : `${mib(r.tenants.rssBytes)} (${r.tenants.rssNote})`), '< 400 MiB');
  }
  row(`CPU, idle, over ${IDLE_S} s (all threads)`, (r) => `${cell(r.idleCpuPct)} % of a core`, '< 5 %');
  for (const [what, get] of [['idle', (r: IdleResult) => r.idle], ['1 000 active, packed in 2 pools', (r: IdleResult) => r.packed],
    ['1 000 active, spread over 100 pools', (r: IdleResult) => r.spread]] as const) {
    row(`tick, ${what}: mean (max) ms`, (r) => `${cell(get(r).avgMs, 2)} (${cell(get(r).maxMs, 1)})`, what === 'idle' ? '' : '< 20 ms');
    row(`main thread CPU per tick, ${what}`, (r) => `${cell(get(r).mainCpuMsPerTick, 1)} ms`, '');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      baseline: { type: 'string' }, keys: { type: 'string', default: '100000' }, write: { type: 'boolean', default: false },
      'rss-only': { type: 'boolean', default: false }, 'no-tenants': { type: 'boolean', default: false },
      'tick-only': { type: 'boolean', default: false }, rounds: { type: 'string', default: '1' },
      'node-flags': { type: 'string', default: '' }, pairs: { type: 'string', default: '1' },
    },
    strict: true,
  });
  const keys = Number(values.keys);
  const log = (s: string) => process.stderr.write(`bench:idle: ${s}\n`);
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const flags = values['node-flags'].split(' ').filter((f) => f !== '');
  if (values['tick-only']) {
    const table = await tickOnly(values.baseline, Number(values.rounds), keys, head, log, flags);
    const body = `Measured ${new Date().toISOString()}, node ${process.version}, load average ${loadavg()[0].toFixed(2)}.\n\n${table}`;
    process.stdout.write(`${body}\n`);
    if (values.write) writeSection('idle-keys-tick', TICK_COMMAND, body);
    return;
  }
  const wt = values.baseline === undefined ? null : baselineWorktree(values.baseline);
  try {
    if (wt !== null && !existsSync(join(wt.dir, 'src/cli/main.ts'))) throw new Error(`${values.baseline}: no src/cli/main.ts`);
    const after = `after (${head}${flags.length > 0 ? ` ${flags.join(' ')}` : ''})`;
    const runs = [...(wt === null ? [] : [{ label: `before (${values.baseline})`, root: wt.dir, flags: [] }]), { label: after, root: ROOT, flags }];
    const results: IdleResult[] = [];
    // --pairs N: the columns N times, alternated (each daemon fresh), so each pair shares the machine's load.
    const pairs = Number(values.pairs);
    for (let p = 1; p <= pairs; p++) {
      for (const run of runs) {
        results.push(await measureIdleKeys(pairs > 1 ? `${run.label}, pair ${p}` : run.label, run.root, keys, log, values['rss-only'], run.flags));
      }
    }
    // Tenants in the other order (after first), so neither column always runs on the fresher machine.
    if (!values['no-tenants']) for (let i = runs.length - 1; i >= 0; i--) results[i].tenants = await measureLiveTenants(runs[i].label, runs[i].root, keys, log, runs[i].flags);
    const body = `Measured ${new Date().toISOString()}, node ${process.version}, load average ${loadavg()[0].toFixed(2)}.\n\n${idleTable(results, keys)}`;
    process.stdout.write(`${body}\n`);
    if (values.write) writeSection('idle-keys', IDLE_COMMAND, body);
  } finally {
    wt?.remove();
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
