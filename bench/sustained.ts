// npm run bench:sustained: tpsd at the load generator's maximum rate for a
// minute and more, on the default config, to show that throughput holds once
// every I/O thread's lease table is full (limits.max_leases_per_thread leases:
// at the default 30 s lease TTL an acquire-only client fills it within
// seconds, and from then on every grant ends the oldest lease that holds no
// concurrency slot).
//
// Config: config/default.json as shipped (lease TTL, limits, policy, I/O
// threads, telemetry) with only a pool added, `bench` (services s0..s15 at the
// schema's largest rate), because the default pools allow 1600 tokens/s in
// all and a denied ACQUIRE makes no lease; data_dir is a temporary directory.
// Load: `tpsd bench`, raw client, each case against a fresh daemon (an empty
// table) in a fresh process, closed loop (as fast as the daemon answers):
// - acquire-only: 16 connections x 2 messages in flight x 64 acquires per
//   message (bench:compare's "batched" shape, the highest rate): leases end
//   by TTL or when the table makes room; the tables fill in the first seconds;
// - acquire-only, 1 per message: 64 x 32 in flight, one acquire per message:
//   a lower rate, so the tables fill during the run, and the first window is
//   before, the last after;
// - acquire-release: the batched shape, each granted lease released as soon
//   as its grant arrives (`tpsd bench --release`): the tables stay small.
// Throughput per 10 s window comes from the generator's once-a-second progress
// (decisions answered so far); at each window's end the daemon's /metrics
// gives the leases held and those ended without a RELEASE (by the TTL or to
// make room), and /proc/PID/stat the daemon's CPU time, so each window also
// has the daemon's CPU per decision: other work on a shared machine moves
// throughput a lot and that much less. The check: last window / first window
// within 10 %.
//
// Usage: npm run bench:sustained -- [--seconds 60] [--warmup 2] [--only CASE] [--dry-run] [--verbose]
// (CASE: acquire-only, acquire-only-1, acquire-release; --verbose logs every progress line.)
// Writes its section of docs/benchmarks.md (not with --dry-run or --only).

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_BURST, MAX_TPS } from '../src/config/schema.ts';
import { httpText } from '../src/loadgen/http-text.ts';
import { cpuSeconds } from '../src/loadgen/proc-stats.ts';
import type { LoadResult } from '../src/loadgen/run-load.ts';
import { writeSection } from './doc.ts';
import { ROOT, startTpsd, type ServerHandle } from './servers.ts';

const WINDOW_S = 10;
const KEYS = 16;
const BATCHED = { connections: 16, pipeline: 2, batch: 64 };
const UNBATCHED = { connections: 64, pipeline: 32, batch: 1 };
const CASES = [
  { id: 'acquire-only', title: 'acquire only, 64 per message (leases end by TTL, or early to make room)', shape: BATCHED, release: false },
  { id: 'acquire-only-1', title: 'acquire only, 1 per message (the tables fill during the run)', shape: UNBATCHED, release: false },
  { id: 'acquire-release', title: 'acquire + release, 64 per message (each lease released when granted)', shape: BATCHED, release: true },
] as const;
type Case = (typeof CASES)[number];

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '2' },
    only: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
  strict: true,
});
const seconds = Number(values.seconds);
if (!Number.isInteger(seconds) || seconds < 2 * WINDOW_S || seconds % WINDOW_S !== 0) {
  throw new Error(`--seconds: a multiple of ${WINDOW_S}, at least ${2 * WINDOW_S}; got ${values.seconds}`);
}
const cases = CASES.filter((c) => values.only === undefined || c.id === values.only);
if (cases.length === 0) throw new Error(`--only ${values.only}: no such case (${CASES.map((c) => c.id).join(', ')})`);
const log = (s: string) => process.stderr.write(`bench:sustained: ${s}\n`);

/** The shipped default config with the bench pool added (nothing else changed but data_dir, set by startTpsd). */
function sustainedConfig(): Record<string, unknown> {
  const { data_dir: _dataDir, ...shipped } = JSON.parse(readFileSync(join(ROOT, 'config/default.json'), 'utf8')) as Record<string, unknown>;
  const bench = {
    name: 'bench', capacity_tps: MAX_TPS, burst: MAX_BURST,
    services: Array.from({ length: KEYS }, (_, i) => ({ name: `s${i}`, priority: 'HIGH', max_tps: MAX_TPS, burst: MAX_BURST })),
  };
  return { ...shipped, pools: [...(shipped.pools as unknown[]), bench] };
}

/** A progress line: seconds since measuring began, decisions answered so far, the daemon's CPU seconds then (NaN: unknown). */
interface Sample { t: number; decisions: number; cpuS: number }
interface TableState { held: number; endedEarly: number }
interface CaseResult { c: Case; samples: Sample[]; tables: TableState[]; result: LoadResult; ttlMs: number; maxLeases: string }


/** Leases the bench pool holds (on every thread) and those ended without a RELEASE, from /metrics. */
async function tableState(port: number): Promise<TableState> {
  const m = await httpText(port, '/metrics');
  const num = (name: string) => Number(new RegExp(`^${name}\\{key="bench",[^}]*\\} (\\d+)$`, 'm').exec(m)?.[1] ?? NaN);
  return { held: num('tpsd_in_flight'), endedEarly: num('tpsd_leases_expired_total') };
}

/** One `tpsd bench` run against `server`: its progress samples, the table at each window's end, its JSON result. */
function load(c: Case, server: ServerHandle): Promise<{ samples: Sample[]; tables: Promise<TableState>[]; result: LoadResult }> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--json', '--url', server.url, '--client', 'raw',
    '--connections', String(c.shape.connections), '--pipeline', String(c.shape.pipeline), '--batch', String(c.shape.batch),
    '--keys', String(KEYS), '--duration', String(seconds), '--warmup', values.warmup!, '--server-pid', String(server.pid),
    ...(c.release ? ['--release'] : [])];
  const samples: Sample[] = [{ t: 0, decisions: 0, cpuS: NaN }];
  const tables: Promise<TableState>[] = [];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', partial = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const m = /\[\s*([\d.]+) s\] .*?, (\d+) so far/.exec(line);
        if (m === null) continue;
        const s = { t: Number(m[1]), decisions: Number(m[2]), cpuS: cpuSeconds(server.pid) ?? NaN };
        samples.push(s);
        if (s.t >= (tables.length + 1) * WINDOW_S - 0.5) tables.push(tableState(server.port));
        if (values.verbose || Math.round(s.t) % WINDOW_S === 0) log(`${c.id}: ${line.replace(/^tpsd bench: /, '')}`);
      }
    });
    child.once('exit', (code) => {
      if (code !== 0) { reject(new Error(`tpsd bench (${c.id}) exited with ${code}:\n${err.slice(-2000)}`)); return; }
      // The last progress line comes just before the end: the last window's table is read now.
      while (tables.length < seconds / WINDOW_S) tables.push(tableState(server.port));
      resolve({ samples, tables, result: JSON.parse(out.trim().split('\n').pop()!) as LoadResult });
    });
  });
}

async function runCase(c: Case): Promise<CaseResult> {
  const config = sustainedConfig();
  const server = await startTpsd({ config });
  log(`${c.id}: tpsd pid ${server.pid}, ${server.url}, lease_ttl_ms ${String(config.lease_ttl_ms ?? 'default')}`);
  try {
    const { samples, tables, result } = await load(c, server);
    const limits = config.limits as { max_leases_per_thread?: number } | undefined;
    return {
      c, samples, tables: await Promise.all(tables), result,
      ttlMs: Number(config.lease_ttl_ms), maxLeases: String(limits?.max_leases_per_thread ?? 'default (1 048 576)'),
    };
  } finally {
    await server.stop();
  }
}

/**
 * Per WINDOW_S window, from the progress samples nearest its ends: decisions/s,
 * and the daemon's CPU microseconds per decision (from the first sample with a
 * CPU reading, about 1 s in, for the first window).
 */
export function windowFigures(samples: Sample[], totalS: number): { rate: number; cpuUs: number }[] {
  const nearest = (list: Sample[], t: number) => list.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best));
  const withCpu = samples.filter((s) => Number.isFinite(s.cpuS));
  const out: { rate: number; cpuUs: number }[] = [];
  for (let w = 0; w < totalS / WINDOW_S; w++) {
    const a = nearest(samples, w * WINDOW_S), b = nearest(samples, (w + 1) * WINDOW_S);
    const ca = withCpu.length > 0 ? nearest(withCpu, w * WINDOW_S) : a, cb = withCpu.length > 0 ? nearest(withCpu, (w + 1) * WINDOW_S) : b;
    out.push({
      rate: b.t > a.t ? (b.decisions - a.decisions) / (b.t - a.t) : NaN,
      cpuUs: cb.decisions > ca.decisions ? ((cb.cpuS - ca.cpuS) * 1e6) / (cb.decisions - ca.decisions) : NaN,
    });
  }
  return out;
}

const rate = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0));
const count = (v: number) => (Number.isFinite(v) ? v.toLocaleString('en-US').replace(/,/g, ' ') : '?');

function report(results: CaseResult[], started: Date, loadStart: number): string {
  const heads = Array.from({ length: seconds / WINDOW_S }, (_, w) => `${w * WINDOW_S}-${(w + 1) * WINDOW_S} s`);
  const lines = ['| case | ' + heads.join(' | ') + ' | last / first | within 10 % |', `|---|${heads.map(() => '--:|').join('')}--:|---|`];
  const cpu = ['| case: daemon CPU us per decision | ' + heads.join(' | ') + ' | last / first | within 10 % |', lines[1]];
  const verdict = (ratio: number) => `${ratio.toFixed(3)} | ${Math.abs(ratio - 1) <= 0.1 ? 'yes' : '**no**'}`;
  const held = ['| case: leases held / ended without RELEASE (so far), at the end of each window | ' + heads.join(' | ') + ' |', `|---|${heads.map(() => '--:|').join('')}`];
  for (const r of results) {
    const f = windowFigures(r.samples, seconds);
    const last = f[f.length - 1];
    lines.push(`| ${r.c.title} | ${f.map((x) => rate(x.rate)).join(' | ')} | ${verdict(last.rate / f[0].rate)} |`);
    cpu.push(`| ${r.c.id} | ${f.map((x) => x.cpuUs.toFixed(2)).join(' | ')} | ${verdict(last.cpuUs / f[0].cpuUs)} |`);
    held.push(`| ${r.c.id} | ${r.tables.map((s) => `${count(s.held)} / ${count(s.endedEarly)}`).join(' | ')} |`);
  }
  const first = results[0];
  const summary = [
    `Measured ${started.toISOString()} at commit ${gitHead()}: node ${process.version}, ${cpus()[0]?.model.trim() ?? '?'} `
      + `(${cpus().length} logical CPUs, shared by the load generator and the daemon), load average ${loadStart.toFixed(2)} at the start `
      + `and ${loadavg()[0].toFixed(2)} at the end.`,
    `Daemon: config/default.json as shipped plus the pool \`bench\` (16 services at 2 M tokens/s): lease TTL ${count(first.ttlMs)} ms `
      + `(the default), max_leases_per_thread ${first.maxLeases}, I/O threads: the default (one per core). Load: \`tpsd bench\`, raw client, `
      + `closed loop, ${KEYS} keys, ${values.warmup} s warm-up (its leases count), then ${seconds} s measured; a fresh daemon per case. `
      + 'Shapes: 64 per message = 16 connections x 2 messages in flight x 64 acquires; 1 per message = 64 connections x 32 in flight.',
  ].join('\n');
  const totals = results.map((r) => `${r.c.id}: ${rate(r.result.decisionsPerSec)} decisions/s over the run, daemon CPU `
    + `${r.result.cpu.server?.usPerDecision?.toFixed(2) ?? '-'} us/decision, ${r.result.errors.total} errors, p99 ${r.result.latencyMs.p99.toFixed(2)} ms`);
  return [summary, '', '### Decisions/s per 10 s window', '', ...lines, '', '### Daemon CPU per decision, per 10 s window', '', ...cpu, '',
    '### The lease tables', '', ...held, '', ...totals.map((s) => `- ${s}`), ''].join('\n');
}

function gitHead(): string {
  const run = (args: string[]) => { try { return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { return '?'; } };
  return `${run(['rev-parse', '--short', 'HEAD'])}${run(['status', '--porcelain']) === '' ? '' : ' (with uncommitted changes)'}`;
}

const started = new Date();
const loadStart = loadavg()[0];
const results: CaseResult[] = [];
for (const c of cases) results.push(await runCase(c));
const body = report(results, started, loadStart);
process.stdout.write(`\n${body}\n`);
if (!values['dry-run'] && values.only === undefined) {
  writeSection('sustained', 'npm run bench:sustained', body);
  log('wrote docs/benchmarks.md');
}
