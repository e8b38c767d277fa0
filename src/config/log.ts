// The daemon's logger: pino writing to stdout with synchronous writes, so
// nothing is lost when the process exits right after logging (e.g. on a
// fatal error or process.exit() after shutdown).
//
// Format: one JSON object per line, unless stdout is a terminal; then
// readable lines (log-pretty.ts), coloured unless NO_COLOR is set.
// TPSD_LOG_FORMAT=json keeps JSON on a terminal too. Whatever the setting, a
// stdout that is not a terminal (systemd's journal, a pipe, a file) gets JSON.
//
// Threads: any thread may create one (main thread, I/O workers); the
// terminal check is isatty(1) on the process's fd 1, which every thread sees
// the same (a worker's process.stdout is a pipe to the main thread, not the
// terminal).

import { isatty } from 'node:tty';
import pino from 'pino';
import { prettyStream } from './log-pretty.ts';

export type Logger = pino.Logger;

/** Readable lines for this process's stdout? (env: TPSD_LOG_FORMAT, NO_COLOR). */
export function logFormat(env: NodeJS.ProcessEnv = process.env, tty = isatty(1)): 'json' | 'pretty' {
  return tty && env.TPSD_LOG_FORMAT !== 'json' ? 'pretty' : 'json';
}

/** `level` is one of pino's levels (config.log.level); `name` tags every line. */
export function createLogger(level: string, name?: string): Logger {
  const out = pino.destination({ dest: 1, sync: true });
  if (logFormat() === 'json') return pino({ level, name }, out);
  return pino({ level, name }, prettyStream(out, process.env.NO_COLOR === undefined || process.env.NO_COLOR === ''));
}
