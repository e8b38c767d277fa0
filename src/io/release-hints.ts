// The optional sixth element of a RELEASE: what the upstream's own rate-limit
// headers said, as numbers (`[2, id, lease, outcome, latency_us, hints?]`).
// A map; the fields below are read, any other field is ignored (upstreams
// and SDKs may add their own); a known field that is not a finite number >= 0
// makes the whole RELEASE a BAD_REQUEST. nil (or no sixth element) means no
// hints. What the numbers are worth is judged by the controller
// (control/upstream-hints.ts), never here.
//
// Pure, no state: the handler of each I/O thread calls it for RELEASEs read
// the general way (a map never takes the flat path), and the HTTP codec for
// POST /v1/release. It reads only the fields it knows, by name, into a
// caller's reused object, so a map with many fields costs no more and a
// RELEASE allocates nothing.

import type { ReleaseHints } from '../shm/hint-board.ts';

/** Wire name of each field of ReleaseHints. */
export const HINT_FIELDS = {
  limit: 'limit',
  remaining: 'remaining',
  resetMs: 'reset_ms',
  windowMs: 'window_ms',
  retryAfterMs: 'retry_after_ms',
} as const satisfies Record<keyof ReleaseHints, string>;

const NAMES = Object.keys(HINT_FIELDS) as (keyof ReleaseHints)[];

export const RELEASE_HINTS_USAGE = 'RELEASE hints are a map of numbers >= 0: {limit, remaining, reset_ms, window_ms, retry_after_ms}';

/**
 * Checks the sixth element of a RELEASE and, given `out`, reads it there (NaN
 * for each field it does not carry). Returns null when it is usable (nil and
 * undefined are: no hints), else the message of the BAD_REQUEST.
 */
export function readReleaseHints(v: unknown, out?: ReleaseHints): string | null {
  if (out !== undefined) for (const name of NAMES) out[name] = NaN;
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof Map) return RELEASE_HINTS_USAGE;
  const map = v as Record<string, unknown>;
  for (const name of NAMES) {
    const wire = HINT_FIELDS[name];
    if (!Object.hasOwn(map, wire)) continue;
    const x = map[wire];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) return `${RELEASE_HINTS_USAGE}; ${wire} is ${typeof x === 'number' ? String(x) : x === null ? 'nil' : typeof x}`;
    if (out !== undefined) out[name] = x;
  }
  return null;
}

/** True when `h` (read by readReleaseHints) carries at least one field. */
export function hasHints(h: ReleaseHints): boolean {
  for (const name of NAMES) if (!Number.isNaN(h[name])) return true;
  return false;
}
