// The HTTP/JSON API beside the WebSocket protocol, in one run against one
// tpsd: the round trip (1 connection, 1 request in flight) and the
// throughput of 64 keep-alive connections with 1 request in flight each
// (what a service with a pool of HTTP connections does), with the same load
// generator (`tpsd bench`, raw WebSocket client vs http client) and the same
// keys. Written into docs/benchmarks.md, section "http".
//
// Server: one tpsd child process (servers.ts, bench-config.ts: 2 I/O
// threads, 16 keys, limits at the schema's maximum, so the decision is what
// is measured). Load: every run a fresh `tpsd bench --json` process; trials
// interleaved (trial 1 of every run, then trial 2, ...) so a slow spell of
// the shared machine spreads over both transports; a ratio is computed within
// each trial (same minute, same machine state), then its median is taken.
//
// Usage: node --import tsx bench/http-compare.ts [--trials 5] [--seconds 3] [--warmup 1] [--dry-run]

import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchConfig } from './bench-config.ts';
import { median } from './compare-report.ts';
import { writeSection } from './doc.ts';
import type { LoadResult } from '../src/loadgen/run-load.ts';
import { ROOT, runTpsdBench, startTpsd, type ServerHandle } from './servers.ts';

const KEYS = 16;
const IO_THREADS = 2;
export const HTTP_COMMAND = 'node --import tsx bench/http-compare.ts';

interface Shape { id: string; title: string; connections: number }
const SHAPES: Shape[] = [
  { id: 'c1', title: 'Round trip: 1 connection, 1 request in flight', connections: 1 },
  { id: 'c64', title: 'Throughput: 64 keep-alive connections, 1 request in flight on each', connections: 64 },
];
const TRANSPORTS = [
  { id: 'ws', label: 'WebSocket + MessagePack (raw client)', client: 'raw', scheme: 'ws' },
  { id: 'http', label: 'HTTP/1.1 + JSON, keep-alive (http client)', client: 'http', scheme: 'http' },
] as const;

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'dry-run': { type: 'boolean', default: false },
  },
  strict: true,
});
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${values.trials}`);
const log = (s: string) => process.stderr.write(`bench:http: ${s}\n`);

function runBench(shape: Shape, t: (typeof TRANSPORTS)[number], server: ServerHandle): Promise<LoadResult> {
  return runTpsdBench(['--url', `${t.scheme}://127.0.0.1:${server.port}`, '--client', t.client,
    '--connections', String(shape.connections), '--pipeline', '1', '--batch', '1', '--keys', String(KEYS),
    '--duration', values.seconds!, '--warmup', values.warmup!, '--server-pid', String(server.pid)], `${shape.id}/${t.id}`);
}

const rate = (v: number) => (v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0));
const ms = (v: number) => (v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const x = (v: number) => `${v.toFixed(2)}x`;

/** One scenario's table: a row per transport, then the per-trial ratios HTTP / WebSocket. */
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
  const ratio = (f: (r: LoadResult) => number | null | undefined) => {
    const per = results.map((r) => { const h = f(r.http), w = f(r.ws); return h && w ? h / w : null; }).filter((v): v is number => v !== null);
    return per.length === 0 ? '-' : `${x(median(per))} (${x(Math.min(...per))} - ${x(Math.max(...per))})`;
  };
  out.push('', '| HTTP / WebSocket, median of per-trial ratios (min - max) | |', '|---|--:|',
    `| decisions/s | ${ratio((r) => r.decisionsPerSec)} |`,
    `| p50 latency | ${ratio((r) => r.latencyMs.p50)} |`,
    `| p99 latency | ${ratio((r) => r.latencyMs.p99)} |`,
    `| server CPU per decision | ${ratio((r) => r.cpu.server?.usPerDecision)} |`, '');
  return out.join('\n');
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
const tpsd = await startTpsd({ config: benchConfig({ keys: KEYS, ioThreads: IO_THREADS }) });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void tpsd.stop().finally(() => process.exit(130)); });
try {
  log(`tpsd: pid ${tpsd.pid}, port ${tpsd.port}`);
  for (let t = 1; t <= trials; t++) {
    for (const shape of SHAPES) {
      const trial: Record<string, LoadResult> = {};
      for (const tr of TRANSPORTS) {
        const r = await runBench(shape, tr, tpsd);
        trial[tr.id] = r;
        log(`trial ${t}/${trials} ${shape.id} ${tr.id}: ${r.decisionsPerSec.toFixed(0)} decisions/s, p50 ${r.latencyMs.p50.toFixed(3)} ms, `
          + `p99 ${r.latencyMs.p99.toFixed(3)} ms, server ${r.cpu.server?.usPerDecision?.toFixed(2) ?? '-'} us/decision, errors ${r.errors.total}`);
      }
      results.get(shape.id)!.push(trial);
    }
  }
} finally {
  await tpsd.stop();
}

const body = [
  `Measured ${started.toISOString()} at commit ${gitHead()}: node ${process.version}, ${cpus()[0]?.model.trim() ?? '?'} `
    + `(${cpus().length} logical CPUs, shared by the load generator and the server), load average ${loadStart.toFixed(2)} at the start `
    + `and ${loadavg()[0].toFixed(2)} at the end.`,
  `${trials} trial(s) per row, each a fresh \`tpsd bench\` process: ${values.warmup} s warm-up, then ${values.seconds} s measured; `
    + `${KEYS} keys; one tpsd with ${IO_THREADS} I/O threads (bench/bench-config.ts) serving both transports; acquires of 1 token, `
    + 'wait_ms 0, never released (leases end by the 100 ms TTL).',
  '',
  ...SHAPES.map((s) => table(s, results.get(s.id)!)),
].join('\n');
process.stdout.write(`\n${body}\n`);
if (!values['dry-run']) {
  writeSection('http', HTTP_COMMAND, body);
  log('wrote docs/benchmarks.md');
}
