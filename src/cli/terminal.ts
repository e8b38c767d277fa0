// Terminal output shared by the verbs: exit codes, durations ("90s", "1h"),
// numbers, sparklines, utilisation bars, aligned tables, and progress on
// stderr (shown when stderr is a terminal, or with TPSD_PROGRESS=1; never on
// stdout, so piped output stays clean).

import { UsageError } from './args.ts';

/** Exit codes every verb uses; scripts may rely on them. */
export const EXIT = {
  OK: 0,
  /** Anything unexpected (a bug, an I/O error). */
  FAILURE: 1,
  /** Wrong command line (args.ts). */
  USAGE: 2,
  /** The daemon could not be reached (connect failed, timed out, closed). */
  UNREACHABLE: 3,
  /** The daemon has no such key (UNKNOWN_KEY), or history has no such key. */
  NOT_FOUND: 4,
  /** The daemon refused: a bad value (BAD_REQUEST), no admin token (UNAUTHORIZED), stopping. */
  REFUSED: 5,
  /** The database is missing or holds no rows for what was asked. */
  NO_DATA: 6,
} as const;

export const EXIT_HELP_DAEMON = 'Exit status: 0 ok, 1 unexpected error, 2 wrong usage, 3 daemon unreachable';
export const EXIT_HELP_DB = 'Exit status: 0 ok, 1 unexpected error, 2 wrong usage, 4 unknown key, 6 no database or no rows in the window';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "1h", "90s", "2d", "1h30m", "500ms" -> milliseconds; UsageError otherwise. */
export function parseDuration(text: string, flag: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  const total = parts.reduce((sum, m) => sum + Number(m[1]) * UNITS[m[2]], 0);
  if (parts.length === 0 || parts.map((m) => m[0]).join('') !== text.trim() || !(total > 0)) {
    throw new UsageError(`--${flag}: expected a duration like 90s, 15m, 1h, 2d, found ${JSON.stringify(text)}`);
  }
  return total;
}

/** "--since" as a duration back from now, or an ISO date/time. */
export function parseSince(text: string, nowMs: number, flag = 'since'): number {
  if (/^\d{4}-\d\d-\d\d/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return t;
    throw new UsageError(`--${flag}: not a date/time: ${JSON.stringify(text)}`);
  }
  return nowMs - parseDuration(text, flag);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 7_200_000) return `${+(ms / 60_000).toFixed(1)}m`;
  if (ms < 172_800_000) return `${+(ms / 3_600_000).toFixed(1)}h`;
  return `${+(ms / 86_400_000).toFixed(1)}d`;
}

/** Local time as YYYY-MM-DD HH:MM:SS. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A rate or count in at most ~6 characters: 0, 12.5, 1234, 12.3k, 1.2M. */
export function num(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1e6) return `${+(x / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(x / 1e3).toFixed(1)}k`;
  if (a >= 100 || Number.isInteger(x)) return String(Math.round(x));
  return String(+x.toFixed(1));
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** One character per value, scaled between 0 (or the minimum, if negative) and `max`; a blank for a missing value. */
export function sparkline(values: readonly number[], max = Math.max(0, ...values.filter(Number.isFinite))): string {
  const lo = Math.min(0, ...values.filter(Number.isFinite));
  return values.map((v) => {
    if (!Number.isFinite(v)) return ' ';
    if (max <= lo) return SPARKS[0];
    const i = Math.round(((v - lo) / (max - lo)) * (SPARKS.length - 1));
    return SPARKS[Math.max(0, Math.min(SPARKS.length - 1, i))];
  }).join('');
}

/** A utilisation bar: `fraction` of `width` filled, e.g. "█████░░░░░ 52%". */
export function bar(fraction: number, width = 10): string {
  const f = Number.isFinite(fraction) ? Math.max(0, fraction) : 0;
  const filled = Math.min(width, Math.round(f * width));
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${String(Math.round(f * 100)).padStart(3)}%`;
}

/** Columns aligned by the widest cell; `right` lists the right-aligned column indices. */
export function table(rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, [...c].length); });
  return rows.map((r) => r.map((c, i) => {
    const pad = widths[i] - [...c].length;
    return right.has(i) ? ' '.repeat(pad) + c : c + (i === r.length - 1 ? '' : ' '.repeat(pad));
  }).join('  ')).join('\n') + '\n';
}

/** Progress of a long step on stderr. */
export class Progress {
  private readonly on: boolean;
  private readonly tty: boolean;
  private lastPct = -1;
  private readonly started = Date.now();

  constructor(private readonly label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true;
    this.on = this.tty || process.env.TPSD_PROGRESS === '1';
  }

  /** A step without a known size ("connecting to ..."). */
  note(text: string): void {
    if (!this.on) return;
    process.stderr.write(this.tty ? `\r\x1b[K${this.label}: ${text}` : `${this.label}: ${text}\n`);
  }

  /** done of total; prints on each whole percent (tty) or each 25% (otherwise). */
  update(done: number, total: number): void {
    if (!this.on || total <= 0) return;
    const pct = Math.floor((done / total) * 100);
    const step = this.tty ? 1 : 25;
    if (Math.floor(pct / step) === Math.floor(this.lastPct / step)) return;
    this.lastPct = pct;
    this.note(`${pct}% (${done}/${total})`);
  }

  done(text = 'done'): void {
    if (!this.on) return;
    this.note(`${text} in ${formatDuration(Date.now() - this.started)}`);
    if (this.tty) process.stderr.write('\n');
  }
}
