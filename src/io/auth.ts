// Token authentication for protocol connections and HTTP calls. Pure
// functions and per-thread objects, used by every I/O thread. Tokens are
// compared through their SHA-256 digests with timingSafeEqual, so neither the
// length nor the content of a configured token leaks through timing.
//
// A token's scope is worked out once, when the Authenticator is built (at
// start and at each reload): its prefixes without the trailing '/', matched
// at path-segment boundaries, so the per-ACQUIRE check is a few compares and
// allocates nothing.
//
// Failed authentications are also counted per client address, in the table
// every I/O thread shares (shm/failure-table.ts): `blocked` and
// `countFailure` are the two calls HELLO and the HTTP bearer check make.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthToken, TpsdConfig } from '../config/types.ts';
import type { FailureTable } from '../shm/failure-table.ts';

/** A configured token with its scope worked out (what a connection holds after HELLO). */
export interface ScopedToken extends AuthToken {
  /** True when the token may use every key (its key list is empty). */
  readonly everyKey: boolean;
  /** The prefixes without a trailing '/': each allows itself and the keys below it. */
  readonly segments: readonly string[];
}

/** What an address's failures count against; NO_PEER when the address is not known (tests, in-process callers). */
export const NO_PEER = -1;

export class Authenticator {
  private readonly entries: { digest: Buffer; token: ScopedToken }[];
  /** Failed authentications allowed per address and minute; 0: no per-address limit. */
  readonly maxFailuresPerMinute: number;
  /** True when GET /metrics needs no token (auth.metrics_open). */
  readonly metricsOpen: boolean;

  /** `failures`: the shared per-address table; null counts nothing per address. */
  constructor(auth: TpsdConfig['auth'], private readonly failures: FailureTable | null = null) {
    this.entries = (auth?.tokens ?? []).map((t) => ({ digest: digest(t.token), token: scoped(t) }));
    this.maxFailuresPerMinute = auth?.max_failures_per_minute ?? 0;
    this.metricsOpen = auth?.metrics_open ?? true;
  }

  get enabled(): boolean { return this.entries.length > 0; }

  /** The configured token matching `presented`, or null. Checks every entry. */
  check(presented: unknown): ScopedToken | null {
    if (typeof presented !== 'string' || presented.length === 0 || presented.length > 4096) return null;
    const d = digest(presented);
    let found: ScopedToken | null = null;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && found === null) found = e.token;
    return found;
  }

  /** The key a client address counts under (shm/failure-table.ts), from uWS's address text. */
  peerOf(address: ArrayBuffer | string): number {
    return this.failures === null ? NO_PEER : this.failures.peerOf(address);
  }

  /** True when `peer` has used up its failed authentications for the minute: refuse without checking the token. */
  blocked(peer: number): boolean {
    if (peer === NO_PEER || this.failures === null || this.maxFailuresPerMinute === 0) return false;
    return this.failures.failures(peer) >= this.maxFailuresPerMinute;
  }

  /** Counts one failed authentication of `peer`. */
  countFailure(peer: number): void {
    if (peer !== NO_PEER && this.failures !== null && this.maxFailuresPerMinute !== 0) this.failures.record(peer);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function scoped(t: AuthToken): ScopedToken {
  const segments = t.keys.map((p) => (p.endsWith('/') ? p.slice(0, -1) : p));
  return { ...t, everyKey: t.keys.length === 0, segments };
}

/**
 * True when `token` may use `key`: a prefix `p` (given as `p` or `p/`)
 * allows `p` itself and every key below it (`p/...`), never a key that only
 * starts with the same letters (`pay` never allows `payroll/x`).
 */
export function keyAllowed(token: ScopedToken, key: string): boolean {
  if (token.everyKey) return true;
  const segments = token.segments;
  for (let i = 0; i < segments.length; i++) {
    const p = segments[i];
    if (key.length === p.length ? key === p : key.length > p.length && key.charCodeAt(p.length) === SLASH && key.startsWith(p)) return true;
  }
  return false;
}
const SLASH = 0x2f;

/** True when `token` may see `key` in STATUS: an admin token sees every key, another the keys it may use. */
export function keyVisible(token: ScopedToken, key: string): boolean {
  return token.admin || keyAllowed(token, key);
}
