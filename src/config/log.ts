// The daemon's logger: pino writing one JSON line per event to stdout with
// synchronous writes, so nothing is lost when the process exits right after
// logging (e.g. on a fatal error or process.exit() after shutdown).

import pino from 'pino';

export type Logger = pino.Logger;

/** `level` is one of pino's levels (config.log.level); `name` tags every line. */
export function createLogger(level: string, name?: string): Logger {
  return pino({ level, name }, pino.destination({ dest: 1, sync: true }));
}
