// How a call guarded by withPermit went, read from what it returned or
// threw: the outcome to report in RELEASE, and the upstream's rate-limit
// headers as hints. fetch resolves on every HTTP status, so a returned
// response is read as carefully as a thrown error:
// - returned: a response (a value with a numeric `status` or `statusCode`
//   AND a `headers` object: fetch's Response, axios' and got's responses,
//   undici's request()) is OUTCOME_THROTTLED on 429, OUTCOME_FAILED on 5xx,
//   else OUTCOME_OK; any other value is OUTCOME_OK (a plain object with a
//   `status` field is the caller's data, not an HTTP answer);
// - thrown: OUTCOME_THROTTLED for an upstream 429 (isUpstreamThrottle),
//   OUTCOME_TIMED_OUT for a timeout (isUpstreamTimeout), else OUTCOME_FAILED;
//   the hints come from the error's `response` (axios, got) or the error.
//
// Pure but for the clock: Date.now() unless the caller gives the time (it is
// read only when there are headers to read).

import { OUTCOME_FAILED, OUTCOME_OK, OUTCOME_THROTTLED, OUTCOME_TIMED_OUT } from '../protocol/opcodes.ts';
import { isUpstreamThrottle, isUpstreamTimeout } from './errors.ts';
import { readRateLimitHeaders } from './rate-limit-headers.ts';
import type { Outcome, ReleaseHints } from './types.ts';

interface ResponseLike {
  status: number;
  headers: object;
}

/** The HTTP status of a response-like value (a status and headers), or -1. */
function responseStatus(v: unknown): number {
  if (v === null || typeof v !== 'object') return -1;
  const r = v as { status?: unknown; statusCode?: unknown; headers?: unknown };
  if (r.headers === null || typeof r.headers !== 'object') return -1;
  if (typeof r.status === 'number') return r.status;
  if (typeof r.statusCode === 'number') return r.statusCode;
  return -1;
}

function asResponse(v: unknown): ResponseLike | null {
  const status = responseStatus(v);
  return status < 0 ? null : { status, headers: (v as { headers: object }).headers };
}

// Each function below answers for any value, also one whose getters throw
// (then OK or FAILED, and no hints): the lease must be released whatever fn
// returned.

/** The outcome of a call that returned `result`. */
export function outcomeOfResult(result: unknown): Outcome {
  try {
    const status = responseStatus(result);
    if (status === 429) return OUTCOME_THROTTLED;
    if (status >= 500 && status <= 599) return OUTCOME_FAILED;
  } catch {
    // not a response we can read
  }
  return OUTCOME_OK;
}

/** The outcome of a call that threw `err`. */
export function outcomeOfError(err: unknown): Outcome {
  try {
    if (isUpstreamThrottle(err)) return OUTCOME_THROTTLED;
    if (isUpstreamTimeout(err)) return OUTCOME_TIMED_OUT;
  } catch {
    // an error we cannot read
  }
  return OUTCOME_FAILED;
}

/** The rate-limit hints of a returned response, or undefined. */
export function hintsOfResult(result: unknown, nowMs?: number): ReleaseHints | undefined {
  try {
    const r = asResponse(result);
    return r === null ? undefined : readRateLimitHeaders(r.headers, r.status, nowMs);
  } catch {
    return undefined;
  }
}

/** The rate-limit hints of a thrown error's response (or of the error itself), or undefined. */
export function hintsOfError(err: unknown, nowMs?: number): ReleaseHints | undefined {
  try {
    if (err === null || typeof err !== 'object') return undefined;
    const r = asResponse((err as { response?: unknown }).response) ?? asResponse(err);
    if (r !== null) return readRateLimitHeaders(r.headers, r.status, nowMs);
    // An error with headers but no status of its own: a 429 when isUpstreamThrottle says so.
    const headers = (err as { headers?: unknown }).headers;
    return headers !== null && typeof headers === 'object' ? readRateLimitHeaders(headers, isUpstreamThrottle(err) ? 429 : 0, nowMs) : undefined;
  } catch {
    return undefined;
  }
}
