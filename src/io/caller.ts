// Who an HTTP/JSON or gRPC (Envoy RLS) request is: the bearer token it
// presents, checked by the same Authenticator as HELLO, and the lease owner
// derived from it. Kept in one place so the auth rules of these front doors
// can change without touching the code that serves them.
//
// Lease owners (PROTOCOL.md: over HTTP a lease belongs to the token that
// acquired it; with auth off, to whoever holds its id): a WebSocket
// connection owns its leases by its connId (1, 2, ... per thread). An HTTP
// request owns by its token: a number derived from the token's secret, the
// same on every thread and across reloads, always negative so it can never
// equal a connId; with auth off the owner is ANY_OWNER (0): anyone holding
// the id may release the lease.
//
// Threads: pure functions, called by the I/O thread serving the request; the
// owner cache is per thread (a WeakMap keyed by the frozen token objects of
// the config in force).

import { createHash } from 'node:crypto';
import type { MsgWriter } from '../protocol/codec.ts';
import type { ScopedToken } from './auth.ts';
import type { Authenticator } from './auth.ts';
import type { Conn } from './conn.ts';

/** Lease owner meaning "whoever holds the id" (auth off). */
export const ANY_OWNER = 0;
/** Owner of a request without a valid token while auth is on (it is refused before any lease is touched). */
export const NO_OWNER = -0x80000000;

/** The credentials of one HTTP or gRPC request. */
export interface Caller {
  /** The configured token presented, or null (none, invalid, or auth off). */
  readonly token: ScopedToken | null;
  /** Lease owner id (see the header). */
  readonly owner: number;
}

const ANONYMOUS: Caller = { token: null, owner: ANY_OWNER };
const REFUSED: Caller = { token: null, owner: NO_OWNER };
const owners = new WeakMap<ScopedToken, number>();

/** The secret of an `Authorization: Bearer SECRET` header value, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header.length < 8) return null;
  if (header.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  const secret = header.slice(7).trim();
  return secret.length > 0 ? secret : null;
}

/** The caller presenting `secret` (null: no Authorization header). */
export function callerOf(auth: Authenticator, secret: string | null): Caller {
  if (!auth.enabled) return ANONYMOUS;
  const token = secret === null ? null : auth.check(secret);
  return token === null ? REFUSED : { token, owner: ownerOf(token) };
}

/** The lease owner of a token: derived from its secret, in [-(2^31 - 1), -1]. */
function ownerOf(token: ScopedToken): number {
  let owner = owners.get(token);
  if (owner === undefined) {
    const digest = createHash('sha256').update('tpsd lease owner\0').update(token.token, 'utf8').digest();
    owner = -1 - (digest.readUInt32BE(0) % 0x7fffffff);
    owners.set(token, owner);
  }
  return owner;
}

/**
 * The Conn the request handler sees for one HTTP or gRPC request: its
 * caller's token, and its lease owner as its connection id (so its leases
 * belong to the token, see the header). It never says HELLO.
 */
export class CallerConn implements Conn {
  readonly connId: number;
  /** Lease owner id: negative per token, ANY_OWNER with auth off. */
  readonly owner: number;
  token: ScopedToken | null;
  authFailures = 0;
  outstanding = 0;
  /** Set when the client went away: the handler then drops its waiter. */
  closed = false;
  out: MsgWriter | null = null;

  constructor(caller: Caller, readonly name: string) {
    this.token = caller.token;
    this.owner = caller.owner;
    this.connId = caller.owner;
  }
}
