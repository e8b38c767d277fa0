// Public types of the tpsd client SDK. Plain data only: this folder imports
// nothing but src/protocol/ so that it runs in browsers as well as in Node.

/** The answer to an acquire. */
export interface Permit {
  /** True when the tokens were taken (by the daemon, or locally in a failure mode). */
  granted: boolean;
  /** Lease id to pass to release(); 0 when denied or decided locally. */
  lease: number;
  /** Whole tokens left in the key's own bucket after the grant. */
  remaining: number;
  /** When denied: estimated milliseconds until the tokens would be available. */
  retryAfterMs: number;
  /** Set when the daemon was unreachable and the failure mode decided. */
  local?: boolean;
}

/**
 * What acquire answers while the daemon cannot be reached:
 * - 'open': grant everything (availability first);
 * - 'closed': deny everything, retry after the next reconnect attempt;
 * - 'local': a token bucket per key in this process at `localRate`.
 */
export type FailureMode = 'open' | 'closed' | 'local';

/** Connection state as reported to listeners. */
export type ConnectionState = 'connected' | 'disconnected';

/**
 * Outcome of a guarded call, reported by release(): OUTCOME_OK (0),
 * OUTCOME_FAILED (1), OUTCOME_THROTTLED (2: the upstream answered 429),
 * OUTCOME_TIMED_OUT (3: the upstream did not answer within the caller's
 * deadline).
 */
export type Outcome = 0 | 1 | 2 | 3;

/**
 * What the upstream's rate-limit headers said, passed with a release (all
 * numbers >= 0, every field optional). withPermit fills it from a response's
 * headers (see rate-limit-headers.ts).
 */
export interface ReleaseHints {
  /** Requests the upstream allows per window. */
  limit?: number;
  /** Requests left in the upstream's current window. */
  remaining?: number;
  /** Milliseconds until the upstream's window resets. */
  resetMs?: number;
  /** Length of the upstream's window in milliseconds, when it says. */
  windowMs?: number;
  /** A 429's Retry-After, in milliseconds. */
  retryAfterMs?: number;
}

/** What the daemon said in its HELLO reply. */
export interface ServerInfo {
  v: number;
  server: string;
  tick_ms: number;
}

export interface AcquireOptions {
  /** How long the daemon may queue the request for tokens (default 0: answer at once). */
  waitMs?: number;
  /** Extra time allowed for the answer beyond waitMs (default: the client's timeoutMs). */
  timeoutMs?: number;
}

export interface WithPermitOptions extends AcquireOptions {
  /** Tokens to take (default 1). */
  tokens?: number;
}
