// Memory of the daemon (VmRSS of the whole process, all threads): idle, with
// 10 000 idle WebSocket connections, and idle with 100 000 keys configured;
// the bare echo server with the same connections as the uWS floor. Each
// server is a fresh `tpsd start --config <tmp> --port 0` process (bench/
// servers.ts); the connections come from another process
// (idle-connections.ts). RSS is read after the state is reached and has
// settled: the median of 5 readings over one second.
//
// Run alone: npm run bench:memory -- [--connections 10000] [--keys 100000] [--write]
// bench:compare runs it too (measureMemory) and writes the same section.

import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchConfig, manyKeysConfig } from './bench-config.ts';
import { writeSection } from './doc.ts';
import { cpuSeconds, rssBytes, threadCount } from '../src/loadgen/proc-stats.ts';
import { startEcho, startIdleConnections, startTpsd, type ServerHandle } from './servers.ts';

/** RSS is read every SAMPLE_MS until the last STABLE_SAMPLES agree within 2%, between MIN and MAX_SETTLE_MS. */
const SAMPLE_MS = 500;
const STABLE_SAMPLES = 6;
/** V8's memory reducer gives start-up garbage back some 8-15 s after the allocation stops; RSS is flat until then. */
const MIN_SETTLE_MS = 15_000;
const MAX_SETTLE_MS = 30_000;
export const RSS_TARGET_BYTES = 300 * 1024 * 1024;
/** The command named in the generated section's marker. */
export const MEMORY_COMMAND = 'npm run bench:memory -- --write, or bench:compare -- --memory';

export interface MemoryRow { what: string; rssBytes: number; threads: number | null; note: string }
export interface MemoryResult { rows: MemoryRow[]; connections: number; keys: number; tenKConnectionsBytes: number | null }

/**
 * RSS once it has settled. V8 gives memory back some seconds after a burst of
 * allocation (start-up, accepting connections), so an early reading overstates
 * what the process keeps; this waits at least MIN_SETTLE_MS and until the
 * readings stop moving (at most MAX_SETTLE_MS), and returns the median of the
 * last ones.
 */
export interface Settled { bytes: number; afterS: number; stable: boolean; min: number; max: number }

export async function settledRss(pid: number): Promise<Settled> {
  const t0 = performance.now();
  const xs: number[] = [];
  const late: number[] = []; // readings after MIN_SETTLE_MS
  for (;;) {
    await sleep(SAMPLE_MS);
    const v = rssBytes(pid) ?? NaN;
    xs.push(v);
    const elapsed = performance.now() - t0;
    if (elapsed >= MIN_SETTLE_MS) late.push(v);
    const last = xs.slice(-STABLE_SAMPLES);
    const stable = last.length === STABLE_SAMPLES && Math.max(...last) <= Math.min(...last) * 1.02;
    if ((stable && elapsed >= MIN_SETTLE_MS) || elapsed >= MAX_SETTLE_MS) {
      const sorted = [...last].sort((a, b) => a - b);
      return { bytes: sorted[sorted.length >> 1], afterS: elapsed / 1000, stable, min: Math.min(...late), max: Math.max(...late) };
    }
  }
}

/** "settled 15 s after start", or the range RSS kept moving in. */
function settleNote(s: Settled, what: string): string {
  if (s.stable) return `${what} settled after ${s.afterS.toFixed(0)} s`;
  return `${what} not stable after ${s.afterS.toFixed(0)} s: ${mib(s.min)} - ${mib(s.max)} from ${MIN_SETTLE_MS / 1000} s on (median of the last readings shown)`;
}

async function withServer<T>(start: () => Promise<ServerHandle>, body: (s: ServerHandle) => Promise<T>): Promise<T> {
  const s = await start();
  try { return await body(s); } finally { await s.stop(); }
}

/** Idle, then with `connections` idle connections; one row each. */
async function idleAndConnected(name: string, start: () => Promise<ServerHandle>, connections: number, log: (s: string) => void): Promise<MemoryRow[]> {
  return withServer(start, async (s) => {
    const idleR = await settledRss(s.pid);
    const idle = idleR.bytes;
    log(`${name} idle: ${mib(idle)} (${settleNote(idleR, 'RSS')})`);
    const conns = await startIdleConnections(s.url, connections);
    try {
      if (conns.open !== connections) throw new Error(`${name}: only ${conns.open} of ${connections} connections opened`);
      const connR = await settledRss(s.pid);
      const rss = connR.bytes;
      log(`${name} with ${connections} idle connections (opened in ${conns.seconds.toFixed(1)} s): ${mib(rss)}`);
      return [
        { what: `${name}, idle`, rssBytes: idle, threads: threadCount(s.pid), note: settleNote(idleR, 'RSS') },
        {
          what: `${name}, ${connections.toLocaleString('en-US')} idle connections`, rssBytes: rss, threads: threadCount(s.pid),
          note: `${rss > idle ? `+${((rss - idle) / connections / 1024).toFixed(1)} KiB per connection over idle`
            : 'below the idle reading: garbage from start-up was returned meanwhile'}; ${settleNote(connR, 'RSS')}`,
        },
      ];
    } finally {
      await conns.stop();
    }
  });
}

export async function measureMemory(connections: number, keys: number, log: (s: string) => void): Promise<MemoryResult> {
  const ioThreads = 2;
  const rows: MemoryRow[] = [];
  rows.push(...await idleAndConnected('tpsd (16 keys, 2 I/O threads)',
    () => startTpsd({ config: benchConfig({ keys: 16, ioThreads }) }), connections, log));
  rows.push(...await idleAndConnected('bare uWS echo server (2 threads)', () => startEcho(ioThreads), connections, log));
  const t0 = performance.now();
  await withServer(() => startTpsd({ config: manyKeysConfig(keys, ioThreads) }), async (s) => {
    const started = (performance.now() - t0) / 1000;
    const cpu0 = cpuSeconds(s.pid);
    const r = await settledRss(s.pid);
    const cpu1 = cpuSeconds(s.pid);
    const idleCpu = cpu0 === null || cpu1 === null ? '' : `; idle CPU ${(((cpu1 - cpu0) / r.afterS) * 100).toFixed(0)}% of a core`;
    log(`tpsd with ${keys} keys: ${mib(r.bytes)} (listening ${started.toFixed(1)} s after spawn${idleCpu})`);
    rows.push({
      what: `tpsd (${keys.toLocaleString('en-US')} keys, 2 I/O threads), idle`, rssBytes: r.bytes, threads: threadCount(s.pid),
      note: `listening ${started.toFixed(1)} s after spawn${idleCpu}; ${settleNote(r, 'RSS')}`,
    });
  });
  const tenK = rows.find((r) => r.what.startsWith('tpsd (16') && r.what.includes('connections'));
  return { rows, connections, keys, tenKConnectionsBytes: tenK?.rssBytes ?? null };
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function memoryTable(m: MemoryResult): string {
  const lines = ['| process | VmRSS | threads | note |', '|---|--:|--:|---|'];
  for (const r of m.rows) lines.push(`| ${r.what} | ${mib(r.rssBytes)} | ${r.threads ?? '-'} | ${r.note} |`);
  if (m.tenKConnectionsBytes !== null) {
    const ok = m.tenKConnectionsBytes < RSS_TARGET_BYTES;
    lines.push('', `Target: ${m.connections.toLocaleString('en-US')} idle connections under 300 MB RSS: `
      + `${mib(m.tenKConnectionsBytes)} (${(m.tenKConnectionsBytes / 1e6).toFixed(0)} MB), ${ok ? 'met' : 'MISSED'}.`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '10000' }, keys: { type: 'string', default: '100000' },
      write: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const m = await measureMemory(Number(values.connections), Number(values.keys), (s) => process.stderr.write(`bench:memory: ${s}\n`));
  const body = `Measured ${new Date().toISOString()}, node ${process.version}, load average ${loadavg()[0].toFixed(2)}.\n\n${memoryTable(m)}`;
  process.stdout.write(`${body}\n`);
  if (values.write) writeSection('memory', MEMORY_COMMAND, body);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
