// npm run bench:http: the HTTP/JSON API beside the WebSocket protocol, in
// one run against one tpsd, and beside Redis + rate-limiter-flexible (what a
// service without tpsd would call instead, as in bench:compare): the round
// trip (1 connection, 1 request in flight) and the throughput of 64
// keep-alive connections with 1 request in flight each (what a service with
// a pool of HTTP connections does), with the same load generator (`tpsd
// bench`: raw WebSocket client, http client, rlf client) and the same keys.
// Written into docs/benchmarks.md, section "http".
//
// Servers: one tpsd child process (servers.ts, bench-config.ts: 2 I/O
// threads, 16 keys, limits at the schema's maximum, so the decision is what
// is measured) and one redis-server (servers.ts; installed with apt-get when
// missing; --no-redis leaves that row out). Load: every run a fresh `tpsd
// bench --json` process; trials interleaved (trial 1 of every run, then
// trial 2, ...) so a slow spell of the shared machine spreads over every
// transport; a ratio is computed within each trial (same minute, same
// machine state), then its median is taken.
//
// Usage: npm run bench:http -- [--trials 5] [--seconds 3] [--warmup 1] [--no-redis] [--dry-run]

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchConfig } from './bench-config.ts';
import { median } from './compare-report.ts';
import { writeSection } from './doc.ts';
import type { LoadResult } from '../src/loadgen/run-load.ts';
import { ROOT, ensureRedisServer, runTpsdBench, startRedis, startTpsd, type ServerHandle } from './servers.ts';

const KEYS = 16;
const IO_THREADS = 2;
export const HTTP_COMMAND = 'npm run bench:http';

interface Shape { id: string; title: string; connections: number }
const SHAPES: Shape[] = [
  { id: 'c1', title: 'Round trip: 1 connection, 1 request in flight', connections: 1 },
  { id: 'c64', title: 'Throughput: 64 keep-alive connections, 1 request in flight on each', connections: 64 },
];
interface Transport { id: string; label: string; client: string; scheme: string; server: 'tpsd' | 'redis' }
const ALL_TRANSPORTS: Transport[] = [
  { id: 'ws', label: 'tpsd: WebSocket + MessagePack (raw client)', client: 'raw', scheme: 'ws', server: 'tpsd' },
  { id: 'http', label: 'tpsd: HTTP/1.1 + JSON, keep-alive (http client)', client: 'http', scheme: 'http', server: 'tpsd' },
  { id: 'rlf', label: 'Redis + rate-limiter-flexible (ioredis, rlf client)', client: 'rlf', scheme: 'redis', server: 'redis' },
];
/** Ratios shown under each table: [numerator, denominator, title]. */
const RATIOS: [string, string, string][] = [['http', 'ws', 'HTTP / WebSocket'], ['http', 'rlf', 'tpsd HTTP / Redis + rate-limiter-flexible']];

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'no-redis': { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
  },
  strict: true,
});
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${values.trials}`);
const log = (s: string) => process.stderr.write(`bench:http: ${s}\n`);
const TRANSPORTS = ALL_TRANSPORTS.filter((t) => t.server !== 'redis' || !values['no-redis']);

function runBench(shape: Shape, t: Transport, server: ServerHandle): Promise<LoadResult> {
  return runTpsdBench(['--url', `${t.scheme}://127.0.0.1:${server.port}`, '--client', t.client,
    '--connections', String(shape.connections), '--pipeline', '1', '--batch', '1', '--keys', String(KEYS),
    '--duration', values.seconds!, '--warmup', values.warmup!, '--server-pid', String(server.pid)], `${shape.id}/${t.id}`);
}

const rate = (v: number) => (v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0));
const ms = (v: number) => (v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const x = (v: number) => `${v.toFixed(2)}x`;

/** One scenario's table: a row per transport, then the per-trial ratios (RATIOS). */
function table(shape: Shape, results: Record<string, LoadResult>[]): string {
  const out = [`### ${shape.title}`, '',
    '| transport (client) | decisions/s: median (min - max) | p50 ms | p99 ms | errors | server CPU us/decision | load generator CPU us/decision |',
    '|---|--:|--:|--:|--:|--:|--:|'];
  for (const t of TRANSPORTS) {
    const rs = results.map((r) => r[t.id]);
    const d = rs.map((r) => r.decisionsPerSec);
    const med = (f: (r: LoadResult) => number | null | undefined) => {
      const v = rs.map(f).filter((n): n is number => typeof n === 'number' && Number.isFinite(n));
      return v.length === 0 ? null : median(v);
    };
    const srv = med((r) => r.cpu.server?.usPerDecision);
    out.push(`| ${t.label} | ${rate(median(d))} (${rate(Math.min(...d))} - ${rate(Math.max(...d))}) | ${ms(med((r) => r.latencyMs.p50)!)} `
      + `| ${ms(med((r) => r.latencyMs.p99)!)} | ${rs.reduce((a, r) => a + r.errors.total, 0)} | ${srv === null ? '-' : srv.toFixed(2)} `
      + `| ${med((r) => r.cpu.loadgen.usPerDecision)?.toFixed(2) ?? '-'} |`);
  }
  for (const [a, b, title] of RATIOS) {
    if (!TRANSPORTS.some((t) => t.id === b)) continue;
    const ratio = (f: (r: LoadResult) => number | null | undefined) => {
      const per = results.map((r) => { const n = f(r[a]), d = f(r[b]); return n && d ? n / d : null; }).filter((v): v is number => v !== null);
      return per.length === 0 ? '-' : `${x(median(per))} (${x(Math.min(...per))} - ${x(Math.max(...per))})`;
    };
    out.push('', `| ${title}, median of per-trial ratios (min - max) | |`, '|---|--:|',
      `| decisions/s | ${ratio((r) => r.decisionsPerSec)} |`,
      `| p50 latency | ${ratio((r) => r.latencyMs.p50)} |`,
      `| p99 latency | ${ratio((r) => r.latencyMs.p99)} |`,
      `| server CPU per decision | ${ratio((r) => r.cpu.server?.usPerDecision)} |`);
  }
  out.push('');
  return out.join('\n');
}

function commandOutput(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return '?'; }
}

function versionOf(pkg: string): string {
  try { return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '?'; }
}

function gitHead(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return `${head}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch { return '?'; }
}

const started = new Date();
const loadStart = loadavg()[0];
const results = new Map<string, Record<string, LoadResult>[]>(SHAPES.map((s) => [s.id, []]));
const redisBin = TRANSPORTS.some((t) => t.server === 'redis') ? ensureRedisServer(log) : null;
const servers: ServerHandle[] = [];
let stopping: Promise<unknown> | null = null;
const stopAll = () => { stopping ??= Promise.all(servers.map((s) => s.stop())); return stopping; };
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void stopAll().finally(() => process.exit(130)); });
const bySystem: Partial<Record<Transport['server'], ServerHandle>> = {};
try {
  servers.push(bySystem.tpsd = await startTpsd({ config: benchConfig({ keys: KEYS, ioThreads: IO_THREADS }) }));
  if (redisBin !== null) servers.push(bySystem.redis = await startRedis(redisBin));
  for (const s of servers) log(`${s.name}: pid ${s.pid}, port ${s.port}`);
  for (let t = 1; t <= trials; t++) {
    for (const shape of SHAPES) {
      const trial: Record<string, LoadResult> = {};
      for (const tr of TRANSPORTS) {
        const r = await runBench(shape, tr, bySystem[tr.server]!);
        trial[tr.id] = r;
        log(`trial ${t}/${trials} ${shape.id} ${tr.id}: ${r.decisionsPerSec.toFixed(0)} decisions/s, p50 ${r.latencyMs.p50.toFixed(3)} ms, `
          + `p99 ${r.latencyMs.p99.toFixed(3)} ms, server ${r.cpu.server?.usPerDecision?.toFixed(2) ?? '-'} us/decision, errors ${r.errors.total}`);
      }
      results.get(shape.id)!.push(trial);
    }
  }
} finally {
  await stopAll();
}

const body = [
  `Measured ${started.toISOString()} at commit ${gitHead()}: node ${process.version}, ${cpus()[0]?.model.trim() ?? '?'} `
    + `(${cpus().length} logical CPUs, shared by the load generator and the server), load average ${loadStart.toFixed(2)} at the start `
    + `and ${loadavg()[0].toFixed(2)} at the end.`,
  `${trials} trial(s) per row, each a fresh \`tpsd bench\` process: ${values.warmup} s warm-up, then ${values.seconds} s measured; `
    + `${KEYS} keys; one tpsd with ${IO_THREADS} I/O threads (bench/bench-config.ts) serving both of its transports; acquires of 1 token, `
    + 'wait_ms 0, never released (leases end by the 100 ms TTL).'
    + (redisBin === null ? '' : ` Redis row: ${commandOutput(redisBin, ['--version']).split(' ').slice(0, 3).join(' ')} (no persistence), `
      + `ioredis ${versionOf('ioredis')}, rate-limiter-flexible ${versionOf('rate-limiter-flexible')} (RateLimiterRedis, 2 000 000 points `
      + 'per 1 s window, so every call is a grant; one ioredis client per connection).'),
  '',
  ...SHAPES.map((s) => table(s, results.get(s.id)!)),
].join('\n');
process.stdout.write(`\n${body}\n`);
if (!values['dry-run']) {
  writeSection('http', HTTP_COMMAND, body);
  log('wrote docs/benchmarks.md');
}
