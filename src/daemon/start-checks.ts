// Checks made before the daemon builds anything: the native uWebSockets.js
// build, the thread count, a warning for an open address without auth, and an
// exclusive probe of the listen port.
//
// Threads: main thread, once at start, before any I/O thread exists.

import { createServer } from 'node:net';
import uWS from 'uWebSockets.js';
import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { THREAD_LIMIT } from '../io/lease-table.ts';
import { ListenError, NativeUwsMissingError, PortInUseError, TooManyIoThreadsError } from './errors.ts';

/** Refuses to run on uWebSockets.js's pure-JS fallback. */
export function assertNativeUws(): void {
  if (typeof (uWS as { SSLApp?: unknown }).SSLApp !== 'function') {
    throw new NativeUwsMissingError();
  }
}

/** Checks the listen settings; resolves with the port to listen on (for port 0, a free one). */
export async function checkListen(config: TpsdConfig, log: Logger): Promise<number> {
  if (config.io_threads > THREAD_LIMIT) throw new TooManyIoThreadsError(config.io_threads, THREAD_LIMIT);
  if (config.auth === null && !isLoopback(config.listen.host)) {
    log.warn({ host: config.listen.host }, 'listening on a non-loopback address without auth: anyone who can reach it can take tokens');
  }
  return probePort(config.listen.host, config.listen.port);
}

/**
 * Checks that no other process listens on host:port and, for port 0, picks a
 * free one. The I/O threads share the port with SO_REUSEPORT, which would let a
 * second daemon share it silently; this exclusive probe refuses that instead.
 */
function probePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(host, port) : new ListenError(host, port, err.message));
    });
    srv.listen({ host, port, exclusive: true }, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      srv.close(() => resolve(bound));
    });
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
