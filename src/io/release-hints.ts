// The optional sixth element of RELEASE: the upstream's own rate-limit
// headers, as the client read them (protocol: "RELEASE carries what the
// upstream said"). Validation only; pure, used by any I/O thread. A map of
// numbers: `limit`, `remaining`, `reset_ms`, `window_ms`, `retry_after_ms`,
// each optional, each a finite number >= 0; other keys are ignored (an
// upstream may send more than we read); anything else is a BAD_REQUEST.
// nil counts as no hints. What the numbers are worth is judged by the
// controller (control/upstream-hints.ts), never here.

import { noHints, type ReleaseHints } from '../shm/hint-board.ts';

const FIELDS: readonly [string, keyof ReleaseHints][] = [
  ['limit', 'limit'], ['remaining', 'remaining'], ['reset_ms', 'resetMs'], ['window_ms', 'windowMs'], ['retry_after_ms', 'retryAfterMs'],
];

/** The hints element of a RELEASE: null (none), the numbers, or an error message. */
export function parseReleaseHints(v: unknown): ReleaseHints | null | string {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof Map) {
    return 'hints must be a map {limit?, remaining?, reset_ms?, window_ms?, retry_after_ms?: number >= 0}';
  }
  const h = noHints();
  for (const [key, field] of FIELDS) {
    if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
    const x = (v as Record<string, unknown>)[key];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) return `hints.${key} must be a number >= 0`;
    h[field] = x;
  }
  return h;
}
