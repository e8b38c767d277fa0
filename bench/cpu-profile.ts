// Reading V8 .cpuprofile files (node --cpu-prof writes one per thread):
// self time per function, and per thread the share spent in each part of the
// code (by source file), for the hot-path report of bench/profile.ts.

import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

export interface FunctionTime {
  name: string;
  /** file:line, relative to the repository where possible. */
  where: string;
  selfMs: number;
}

export interface ThreadProfile {
  file: string;
  totalMs: number;
  /** Time not idle (program, GC and JS). */
  busyMs: number;
  functions: FunctionTime[];
}

/** Self time per function of one profile, from its samples and time deltas. */
export function readProfile(file: string, root: string): ThreadProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute each interval to the sample that ends it.
  for (let i = 0; i < samples.length; i++) {
    const d = deltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, d));
  }
  const merged = new Map<string, FunctionTime>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    totalUs += us;
    if (cf.functionName === '(idle)') idleUs += us;
    const url = cf.url.replace(/^file:\/\//, '').replace(root, '');
    const where = url === '' ? '' : `${url}:${cf.lineNumber + 1}`;
    const name = cf.functionName || '(anonymous)';
    const key = `${name}@${where}`;
    const f = merged.get(key) ?? { name, where, selfMs: 0 };
    f.selfMs += us / 1000;
    merged.set(key, f);
  }
  const functions = [...merged.values()].sort((a, b) => b.selfMs - a.selfMs);
  return { file, totalMs: totalUs / 1000, busyMs: (totalUs - idleUs) / 1000, functions };
}

/** Which part of the code a function belongs to, by its file. */
export function partOf(f: FunctionTime): string {
  const w = f.where;
  if (w === '') return f.name.startsWith('(') ? f.name : `native: ${f.name}`;
  if (w.includes('node_modules/msgpackr')) return 'msgpackr (decode)';
  if (w.includes('node_modules/uWebSockets.js')) return 'uWS (JS side)';
  if (w.includes('node_modules/pino')) return 'pino';
  if (w.startsWith('node:') || w.includes('internal/')) return 'Node internals';
  const m = /src\/[a-z-]+\/[a-z-]+\.ts/.exec(w) ?? /src\/[a-z-]+\.ts/.exec(w);
  return m ? m[0] : w.replace(/:\d+$/, '');
}

/** Busy time per part, largest first. */
export function byPart(t: ThreadProfile): { part: string; ms: number }[] {
  const parts = new Map<string, number>();
  for (const f of t.functions) {
    if (f.name === '(idle)') continue;
    const part = partOf(f);
    parts.set(part, (parts.get(part) ?? 0) + f.selfMs);
  }
  return [...parts].map(([part, ms]) => ({ part, ms })).sort((a, b) => b.ms - a.ms);
}
