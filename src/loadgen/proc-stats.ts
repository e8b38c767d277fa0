// Readings of another process from /proc (Linux): CPU time used so far
// (utime + stime of /proc/PID/stat, all threads of the process together) and
// resident memory (VmRSS of /proc/PID/status).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/PID/stat times (getconf CLK_TCK; 100 when unknown). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { clockTicks = 100; }
  }
  return clockTicks;
}

/** User + system CPU seconds the process (all its threads) has used; null when it cannot be read. */
export function cpuSeconds(pid: number): number | null {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return null; }
  // The command name (field 2) may hold spaces; fields after it start past the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / clockTicksPerSecond();
}

/** Resident set size in bytes (VmRSS); null when it cannot be read. */
export function rssBytes(pid: number): number | null {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return null; }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** Threads of the process (Threads: of /proc/PID/status). */
export function threadCount(pid: number): number | null {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return null; }
  const m = /^Threads:\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}
