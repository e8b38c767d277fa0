// A readable form of the daemon's JSON log lines, for a terminal (pino-pretty
// is not a dependency, and a formatter fetched at run time never will be):
//
//   12:00:01.234 INFO  tpsd: listening on 127.0.0.1:7070 host=127.0.0.1 port=7070
//   12:00:09.870 ERROR io-1: handler failed key=a/b err=TypeError: boom
//       at ... (the stack, indented)
//
// Local time, the level (coloured), the logger's name (the thread: tpsd or
// io-N), the message, then every other field as key=value (strings with
// spaces or quotes JSON-quoted, objects as compact JSON). pid and hostname
// are left out. A line that is not a JSON object is passed through as is.
//
// Threads: whichever thread logs (main, I/O workers); pure functions plus a
// stream object that writes through the thread's own synchronous sink.

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '90'], 20: ['DEBUG', '36'], 30: ['INFO', '32'], 40: ['WARN', '33'], 50: ['ERROR', '31'], 60: ['FATAL', '35'],
};
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

const pad2 = (n: number) => String(n).padStart(2, '0');

function clock(ms: unknown): string {
  const d = new Date(typeof ms === 'number' ? ms : Date.now());
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/** pino's serialized error: message on the line, stack below it. */
function errorField(key: string, e: Record<string, unknown>): { inline: string; below: string } {
  const head = `${typeof e.type === 'string' ? e.type : 'Error'}: ${String(e.message ?? '')}`;
  const stack = typeof e.stack === 'string' ? e.stack.split('\n').slice(1).map((l) => `    ${l.trim()}`).join('\n') : '';
  return { inline: `${key}=${JSON.stringify(head)}`, below: stack };
}

/** One JSON log line (with or without its newline) as a readable line ending in a newline; `color` adds ANSI colours. */
export function formatLogLine(line: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return line.endsWith('\n') ? line : `${line}\n`;
    o = parsed as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const [levelName, levelColor] = LEVELS[o.level as number] ?? [String(o.level ?? '?').toUpperCase(), '0'];
  const level = levelName.padEnd(5);
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const fields: string[] = [];
  const below: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    if ((k === 'err' || k === 'error') && typeof v === 'object' && v !== null && 'message' in v) {
      const e = errorField(k, v as Record<string, unknown>);
      fields.push(e.inline);
      if (e.below !== '') below.push(e.below);
    } else {
      fields.push(`${k}=${value(v)}`);
    }
  }
  const name = typeof o.name === 'string' ? `${o.name}: ` : '';
  const msg = typeof o.msg === 'string' ? o.msg : '';
  const rest = fields.length === 0 ? '' : ` ${paint('2', fields.join(' '))}`;
  return `${paint('2', clock(o.time))} ${paint(levelColor, level)} ${name}${msg}${rest}\n${below.map((b) => `${b}\n`).join('')}`;
}

/** A pino destination that writes each line through `sink` in its readable form. */
export function prettyStream(sink: { write(s: string): unknown }, color: boolean): { write(s: string): void } {
  return {
    write(chunk: string) {
      // pino writes one line per call; split anyway, in case several arrive at once.
      for (const line of chunk.split('\n')) if (line !== '') sink.write(formatLogLine(line, color));
    },
  };
}
