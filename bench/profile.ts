// Profiles tpsd under load: starts the daemon with `node --cpu-prof` (every
// thread writes its own profile: main, each I/O thread, Piscina workers),
// runs one `tpsd bench` load in a fresh process, stops the daemon with
// SIGTERM so the profiles are written, and prints per thread where the busy
// time went (by source file and by function, self time).
//
// Usage: npm run bench:profile -- [--connections 64] [--pipeline 32] [--batch 1]
//          [--seconds 5] [--keys 16] [--io-threads 2] [--top 25] [--out DIR] [--write]
// --write puts the tables into docs/benchmarks.md (section "profile").

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchConfig } from './bench-config.ts';
import { byPart, readProfile } from './cpu-profile.ts';
import { writeSection } from './doc.ts';
import { ROOT, startTpsd } from './servers.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    pipeline: { type: 'string', default: '32' },
    batch: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '5' },
    keys: { type: 'string', default: '16' },
    'io-threads': { type: 'string', default: '2' },
    client: { type: 'string', default: 'raw' },
    top: { type: 'string', default: '25' },
    out: { type: 'string' },
    write: { type: 'boolean', default: false },
  },
  strict: true,
});

const out = values.out ?? mkdtempSync(join(tmpdir(), 'tpsd-profile-'));
const log = (s: string) => process.stderr.write(`bench:profile: ${s}\n`);
const daemon = await startTpsd({
  config: benchConfig({ keys: Number(values.keys), ioThreads: Number(values['io-threads']) }), cpuProfDir: out,
});
let load;
try {
  log(`tpsd pid ${daemon.pid} on ${daemon.url}; profiles go to ${out}`);
  load = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--json', '--url', daemon.url,
    '--client', values.client!, '--connections', values.connections!, '--pipeline', values.pipeline!, '--batch', values.batch!,
    '--keys', values.keys!, '--duration', values.seconds!, '--warmup', '1', '--server-pid', String(daemon.pid)],
  { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
} finally {
  const code = await daemon.stop();
  log(`tpsd exited with ${code}`);
}
if (load.status !== 0) throw new Error(`tpsd bench exited with ${load.status}`);
const result = JSON.parse(load.stdout.trim().split('\n').pop()!) as { decisionsPerSec: number; decisions: number; cpu: { server: { usPerDecision: number } | null } };
log(`load: ${result.decisionsPerSec.toFixed(0)} decisions/s, daemon ${result.cpu.server?.usPerDecision.toFixed(2)} us CPU per decision`);

const top = Number(values.top);
const files = readdirSync(out).filter((f) => f.endsWith('.cpuprofile')).sort();
if (files.length === 0) throw new Error(`no .cpuprofile written to ${out}`);
const lines: string[] = [
  `Profiled ${new Date().toISOString()}, node ${process.version}: tpsd with ${values['io-threads']} I/O threads under `
    + `\`tpsd bench --client ${values.client} --connections ${values.connections} --pipeline ${values.pipeline} --batch ${values.batch} `
    + `--keys ${values.keys}\` for ${values.seconds} s (+1 s warm-up): ${result.decisionsPerSec.toFixed(0)} decisions/s, `
    + `${result.cpu.server?.usPerDecision.toFixed(2) ?? '-'} us of daemon CPU per decision. Self time per thread, over the daemon's whole `
    + 'life (start-up included), for the threads busy at least a fifth as long as the busiest one (the others: the main thread, '
    + 'module loader and storage threads, nearly idle here); "(program)" is native code not attributed to a JS function '
    + '(uWS: epoll, frame parsing, send syscalls).',
];
const threads = files.map((f) => ({ f, t: readProfile(join(out, f), ROOT) }));
const busiest = Math.max(...threads.map((x) => x.t.busyMs));
for (const { f, t } of threads) {
  if (t.busyMs < Math.max(50, busiest / 5)) continue;
  const kind = t.functions.some((fn) => fn.where.startsWith('src/io/')) ? 'I/O thread' : 'thread';
  lines.push('', `### ${kind} ${f.replace(/^CPU\.\d+\.\d+\.\d+\./, '').replace(/\.cpuprofile$/, '')}: `
    + `busy ${t.busyMs.toFixed(0)} ms of ${t.totalMs.toFixed(0)} ms profiled`, '');
  lines.push('| part | busy ms | share |', '|---|--:|--:|');
  for (const p of byPart(t)) {
    if (p.ms / t.busyMs < 0.005) continue;
    lines.push(`| ${p.part} | ${p.ms.toFixed(0)} | ${((100 * p.ms) / t.busyMs).toFixed(1)}% |`);
  }
  lines.push('', '| function | where | self ms | share |', '|---|---|--:|--:|');
  for (const fn of t.functions.filter((x) => x.name !== '(idle)').slice(0, top)) {
    lines.push(`| ${fn.name} | ${fn.where.replace(/:1$/, '')} | ${fn.selfMs.toFixed(0)} | ${((100 * fn.selfMs) / t.busyMs).toFixed(1)}% |`);
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
if (values.write) writeSection('profile', 'npm run bench:profile -- --write', lines.join('\n'));
