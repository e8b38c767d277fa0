// Builds and runs a C reference of a micro-benchmark (native-bench/*-ref.c):
// compiled with `cc -O2 -std=c11 -pthread` at run time (CC overrides cc) into
// a cache directory keyed by the source's hash, run as a child process of the
// trial, its one JSON line parsed. When there is no working compiler the
// reference is skipped (null), with a note on stderr.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = join(tmpdir(), 'tpsd-native-bench');

/** Path of the built binary for `source` (a file beside this one), or null without a compiler. */
export function buildReference(source: string): string | null {
  const file = fileURLToPath(new URL(source, import.meta.url));
  const cc = process.env.CC ?? 'cc';
  const flags = ['-O2', '-std=c11', '-pthread'];
  const hash = createHash('sha256').update(readFileSync(file)).update(cc).update(flags.join(' ')).digest('hex').slice(0, 16);
  const bin = join(CACHE, `${source.replace(/\W/g, '_')}-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    execFileSync(cc, [...flags, '-o', tmp, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    process.stderr.write(`native-bench: cannot build ${source} with ${cc} (${(err as Error).message.split('\n')[0]}); C reference skipped\n`);
    return null;
  }
  renameSync(tmp, bin);
  return bin;
}

/** Runs a built reference with `args`; its last stdout line is JSON. */
export function runReference<T>(bin: string, args: string[]): T {
  const r = spawnSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${bin} exited with ${r.status ?? r.signal}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as T;
}
