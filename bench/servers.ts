// The servers the macro benchmarks run against, each a child process on a
// free loopback port: tpsd itself, launched as an operator launches it
// (`node bin/tpsd.mjs start --config <tmp> --port 0`: the installed `tpsd`
// command, `npm start` and the systemd unit run that file), the
// bare echo server (echo-server.ts) and redis-server (installed with apt when
// missing). Each is started in `bash -c` with the open-files limit raised to
// the hard limit, and stopped with SIGTERM (SIGKILL after a timeout), by pid.
//
// The child's stdout is read to the end (tpsd logs synchronously to stdout: a
// pipe nobody drains would block it); its last lines are kept for errors.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from '../src/loadgen/run-load.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 10_000;

export interface ServerHandle {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Where its files live (config, profiles); removed by stop() unless kept. */
  readonly dir: string;
  stop(): Promise<number | null>;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs argv under bash with `ulimit -n` raised to the hard limit; exec keeps the pid. */
function spawnWithFdLimit(argv: string[], cwd: string): ChildProcess {
  const script = `ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec ${argv.map(shellQuote).join(' ')}`;
  return spawn('bash', ['-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Started { child: ChildProcess; port: number; tail: () => string }

/** Starts a child and waits until `ready(line)` returns a port (or the child exits). */
function startChild(name: string, argv: string[], ready: (line: string) => number | null, cwd = ROOT): Promise<Started> {
  const child = spawnWithFdLimit(argv, cwd);
  const lines: string[] = [];
  const keep = (s: string) => { lines.push(s); if (lines.length > 40) lines.shift(); };
  const tail = () => lines.join('\n');
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => { if (!done) { child.kill('SIGKILL'); reject(new Error(`${name}: not ready within ${START_TIMEOUT_MS} ms\n${tail()}`)); } }, START_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        keep(line);
        const port = done ? null : ready(line);
        if (port !== null) { done = true; clearTimeout(timer); resolve({ child, port, tail }); }
      }
    });
    child.stderr!.on('data', (d: Buffer) => keep(d.toString().trimEnd()));
    child.once('exit', (code, signal) => {
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${tail()}`)); }
    });
  });
}

function stopper(child: ChildProcess, onStopped: () => void): () => Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  let stopping: Promise<number | null> | null = null;
  return () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      onStopped();
      return code;
    })();
    return stopping;
  };
}

/** A JSON log line's port when its message says it listens. */
function listeningPort(line: string): number | null {
  try {
    const j = JSON.parse(line) as { port?: unknown; msg?: unknown };
    return typeof j.port === 'number' && j.port > 0 && /listening/.test(String(j.msg)) ? j.port : null;
  } catch { return null; }
}

export interface TpsdOptions {
  /** The config file's content (listen.port is overridden with --port 0). */
  config: Record<string, unknown>;
  /** Write V8 CPU profiles of every thread here (--cpu-prof). */
  cpuProfDir?: string;
  keepDir?: boolean;
  /** The checkout whose bin/tpsd.mjs runs (default: this one; bench/idle-keys.ts runs a baseline commit's too). */
  root?: string;
  /** Node options before the script (e.g. a V8 heap flag to measure). */
  nodeFlags?: readonly string[];
}

export async function startTpsd(o: TpsdOptions): Promise<ServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'tpsd-bench-'));
  const file = join(dir, 'tpsd.json');
  writeFileSync(file, JSON.stringify({ data_dir: join(dir, 'data'), ...o.config }));
  const prof = o.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`];
  const argv = [process.execPath, ...prof, ...(o.nodeFlags ?? []), 'bin/tpsd.mjs', 'start', '--config', file, '--port', '0'];
  const { child, port } = await startChild('tpsd', argv, listeningPort, o.root ?? ROOT);
  return {
    name: 'tpsd', pid: child.pid!, port, url: `ws://${HOST}:${port}`, dir,
    stop: stopper(child, () => { if (!o.keepDir) rmSync(dir, { recursive: true, force: true }); }),
  };
}

export async function startEcho(threads: number): Promise<ServerHandle> {
  const argv = [process.execPath, '--import', 'tsx', 'bench/echo-server.ts', '--threads', String(threads)];
  const { child, port } = await startChild('echo server', argv, listeningPort);
  return { name: 'echo', pid: child.pid!, port, url: `ws://${HOST}:${port}`, dir: ROOT, stop: stopper(child, () => {}) };
}

/** The redis-server binary; installs Debian's redis-server with apt-get when there is none. */
export function ensureRedisServer(log: (line: string) => void): string {
  const find = () => {
    for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (existsSync(p)) return p;
    try { return execFileSync('bash', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || null; } catch { return null; }
  };
  const found = find();
  if (found !== null) return found;
  log('redis-server not found: installing it with apt-get (Debian package redis-server)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const installed = find();
  if (installed === null) throw new Error('apt-get installed redis-server but no redis-server binary was found');
  return installed;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: HOST, port }, () => { s.end(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** redis-server on a free loopback port, no persistence, its own temporary dir. */
export async function startRedis(binary: string): Promise<ServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'tpsd-bench-redis-'));
  const port = await freePort();
  const argv = [binary, '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
  const { child } = await startChild('redis-server', argv, (line) => (/Ready to accept connections/.test(line) ? port : null));
  if (!(await canConnect(port))) throw new Error(`redis-server started but ${HOST}:${port} refuses connections`);
  return {
    name: 'redis', pid: child.pid!, port, url: `redis://${HOST}:${port}`, dir,
    stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })),
  };
}

export interface IdleConnections { readonly pid: number; readonly open: number; readonly seconds: number; stop(): Promise<number | null> }

/** A child process holding `count` idle WebSocket connections to `url` (bench/idle-connections.ts). */
export async function startIdleConnections(url: string, count: number): Promise<IdleConnections> {
  let info = { open: 0, seconds: 0 };
  const argv = [process.execPath, '--import', 'tsx', 'bench/idle-connections.ts', '--url', url, '--count', String(count)];
  const { child } = await startChild('idle connections', argv, (line) => {
    if (listeningPort(line) === null) return null;
    info = JSON.parse(line) as typeof info;
    return 1;
  });
  return { pid: child.pid!, open: info.open, seconds: info.seconds, stop: stopper(child, () => {}) };
}

/** One `tpsd bench --json ARGS` run in a fresh process; its result (the last line of stdout). `label` names it in errors. */
export function runTpsdBench(args: readonly string[], label: string): Promise<LoadResult> {
  const argv = ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--json', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('exit', (code) => {
      if (code !== 0) { reject(new Error(`tpsd bench (${label}) exited with ${code}:\n${err.slice(-2000)}`)); return; }
      resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
    });
  });
}
