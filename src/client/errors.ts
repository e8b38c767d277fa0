// Errors raised by the SDK itself (the daemon's error replies are the
// TpsdError classes of src/protocol/errors.ts, re-exported by index.ts).
// Each has a stable `code`, listed in docs/errors.md.

import { CodedError } from '../protocol/coded-error.ts';

/** Base class of the errors the client raises on its own; it raises only the subclasses. */
export class TpsdClientError extends CodedError {
  override readonly code: string = 'TPSD_CLIENT_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TpsdClientError';
  }
}

/** withPermit() could not get a permit; retry after `retryAfterMs`. */
export class PermitDeniedError extends TpsdClientError {
  override readonly code = 'TPSD_CLIENT_DENIED';
  readonly key: string;
  readonly retryAfterMs: number;
  /** True when the failure mode (not the daemon) denied it. */
  readonly local: boolean;
  constructor(key: string, retryAfterMs: number, local = false) {
    super(`tpsd: no permit for "${key}", retry after ${retryAfterMs} ms${local ? ' (daemon unreachable)' : ''}`);
    this.name = 'PermitDeniedError';
    this.key = key;
    this.retryAfterMs = retryAfterMs;
    this.local = local;
  }
}

/** The connection is down (or went down while the call was outstanding). */
export class DisconnectedError extends TpsdClientError {
  override readonly code = 'TPSD_CLIENT_DISCONNECTED';
  constructor(message: string) {
    super(message);
    this.name = 'DisconnectedError';
  }
}

/** No reply within the call's timeout although the connection is alive. */
export class CallTimeoutError extends TpsdClientError {
  override readonly code = 'TPSD_CLIENT_TIMEOUT';
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super(`tpsd: no reply to ${what} within ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** The client was closed by close(). */
export class ClientClosedError extends TpsdClientError {
  override readonly code = 'TPSD_CLIENT_CLOSED';
  constructor() {
    super('tpsd: client is closed');
    this.name = 'ClientClosedError';
  }
}

/** The daemon could not be reached: connect() rejects with it in failure mode 'closed'; failed attempts are reported with it to onError. */
export class ConnectError extends TpsdClientError {
  override readonly code = 'TPSD_CLIENT_CONNECT_FAILED';
  readonly url: string;
  constructor(url: string, reason: string, cause?: unknown) {
    super(`tpsd: cannot connect to ${url}: ${reason}`, { cause });
    this.name = 'ConnectError';
    this.url = url;
  }
}

/**
 * True when an error thrown by a guarded call says the upstream answered
 * 429 Too Many Requests (errors with `status` or `statusCode` 429, or with a
 * `response` whose status is 429, as axios and got throw). A fetch does not
 * throw on a 429: withPermit reads the returned Response instead.
 */
export function isUpstreamThrottle(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { status?: unknown; statusCode?: unknown; response?: { status?: unknown; statusCode?: unknown } | null };
  return e.status === 429 || e.statusCode === 429
    || (typeof e.response === 'object' && e.response !== null && (e.response.status === 429 || e.response.statusCode === 429));
}

/** Error codes of Node, undici (fetch) and request libraries for a call that got no answer in time. */
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * True when an error thrown by a guarded call says the upstream did not
 * answer in time: a `TimeoutError` (fetch with `AbortSignal.timeout()`, got)
 * or a timeout code (ETIMEDOUT, undici's UND_ERR_*_TIMEOUT), on the error
 * or on its `cause` (fetch wraps undici's errors). A plain abort is not a
 * timeout: the caller gave up, the upstream may have been fine.
 */
export function isUpstreamTimeout(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const x = e as { name?: unknown; code?: unknown; cause?: unknown };
    if (x.name === 'TimeoutError' || (typeof x.code === 'string' && TIMEOUT_CODES.has(x.code))) return true;
    e = x.cause;
  }
  return false;
}
