// Why the daemon could not start, stopped, or refused a reload: one class per
// condition a caller (tpsd start, tests, a program embedding the daemon) may
// want to handle, each with a stable code listed in docs/errors.md. Each
// constructor takes the facts and builds the message the daemon has always
// printed, so replacing `new Error(...)` with one of these changes only the
// error's class, `name` and `code`.

import { CodedError } from '../protocol/coded-error.ts';

/** uWebSockets.js fell back to its pure-JS build (no native binary for this platform). */
export class NativeUwsMissingError extends CodedError {
  override readonly code = 'TPSD_DAEMON_NATIVE_UWS_MISSING';
  constructor() {
    super('the native uWebSockets.js build did not load (pure-JS fallback); reinstall with npm ci on Node 20 / glibc');
    this.name = 'NativeUwsMissingError';
  }
}

/** Another process (another tpsd?) listens on the configured host:port. */
export class PortInUseError extends CodedError {
  override readonly code = 'TPSD_DAEMON_PORT_IN_USE';
  constructor(readonly host: string, readonly port: number) {
    super(`${host}:${port} is already in use (another tpsd running?)`);
    this.name = 'PortInUseError';
  }
}

/** host:port cannot be listened on for another reason (`reason` from the OS, when known). */
export class ListenError extends CodedError {
  override readonly code = 'TPSD_DAEMON_LISTEN_FAILED';
  constructor(readonly host: string, readonly port: number, reason?: string) {
    super(`cannot listen on ${host}:${port}${reason === undefined ? '' : `: ${reason}`}`);
    this.name = 'ListenError';
  }
}

/** `io_threads` is above the number of threads the shared-memory layout has room for. */
export class TooManyIoThreadsError extends CodedError {
  override readonly code = 'TPSD_DAEMON_TOO_MANY_IO_THREADS';
  constructor(readonly ioThreads: number, readonly threadLimit: number) {
    super(`io_threads ${ioThreads} is above ${threadLimit}`);
    this.name = 'TooManyIoThreadsError';
  }
}

/** An I/O thread exited: before it listened (startup fails) or while serving (fatal). */
export class IoThreadExitedError extends CodedError {
  override readonly code = 'TPSD_DAEMON_IO_THREAD_EXITED';
  constructor(readonly thread: number, readonly exitCode: number, readonly beforeListening: boolean) {
    super(`I/O thread ${thread} exited with code ${exitCode}${beforeListening ? ' before listening' : ''}`);
    this.name = 'IoThreadExitedError';
  }
}

/** A reload was refused: the new config changes something only a restart applies. */
export class RestartNeededError extends CodedError {
  override readonly code = 'TPSD_DAEMON_RESTART_NEEDED';
  /** `reason` is restartNeeded()'s text, e.g. "changing listen.port needs a restart". */
  constructor(reason: string) {
    super(reason);
    this.name = 'RestartNeededError';
  }
}
