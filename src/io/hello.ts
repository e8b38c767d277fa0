// HELLO (op 0) and the authentication state of a connection: HELLO checks the
// protocol version and the token and records the client's name; the other
// ops ask `authorized` and answer `unauthorized`, which counts the failures
// that close the connection. A failed HELLO also counts against the client's
// address (Authenticator.countFailure); once the address is over
// auth.max_failures_per_minute, HELLO is refused without looking at the token
// and the connection is closed.
//
// Threads: functions called by the I/O thread that owns the connection (its
// RequestHandler); the Conn they update is that thread's alone. The
// per-address counts are shared by every I/O thread (shm/failure-table.ts).

import { ErrorCode } from '../protocol/errors.ts';
import type { MsgWriter } from '../protocol/codec.ts';
import { CLOSE_POLICY_VIOLATION, OP_HELLO, PROTOCOL_VERSION } from '../protocol/opcodes.ts';
import { NO_PEER, type Authenticator } from './auth.ts';
import type { Conn } from './conn.ts';
import { writeBody, writeError } from './replies.ts';
import { SERVER_NAME } from './server-name.ts';

/** Failed authentications after which a connection is closed. */
export const MAX_AUTH_FAILURES = 5;

/** Why an address over its limit is refused (HELLO and the HTTP bearer check). */
export const BLOCKED_MESSAGE = 'too many failed authentications from this address; try again in a minute';

/** True when auth is off or the connection's HELLO gave a valid token. */
export function authorized(auth: Authenticator, conn: Conn): boolean {
  return !auth.enabled || conn.token !== null;
}

/** Replies UNAUTHORIZED and counts the failure: CLOSE_POLICY_VIOLATION at the MAX_AUTH_FAILURES-th, else 0. */
export function unauthorized(w: MsgWriter, conn: Conn, op: number, id: number, message: string): number {
  writeError(w, op, id, ErrorCode.UNAUTHORIZED, message);
  return ++conn.authFailures >= MAX_AUTH_FAILURES ? CLOSE_POLICY_VIOLATION : 0;
}

/** HELLO `[0, id, {v: 1, token?, name?}]`, replied to in `w`; 0, or the close code that ends the connection. */
export function hello(w: MsgWriter, conn: Conn, req: unknown[], id: number, auth: Authenticator, tickMs: number): number {
  const body = req[2] as Record<string, unknown> | undefined;
  if (req.length !== 3 || typeof body !== 'object' || body === null || Array.isArray(body)) {
    writeError(w, OP_HELLO, id, ErrorCode.BAD_REQUEST, 'HELLO is [0, id, {v: 1, token?, name?}]');
    return 0;
  }
  if (body.v !== PROTOCOL_VERSION) {
    writeError(w, OP_HELLO, id, ErrorCode.BAD_REQUEST,
      `unsupported protocol version ${typeof body.v === 'number' ? body.v : `of type ${typeof body.v}`}; this server speaks v${PROTOCOL_VERSION}`);
    return 0;
  }
  if (auth.enabled) {
    const peer = conn.peer ?? NO_PEER;
    if (auth.blocked(peer)) {
      conn.token = null;
      writeError(w, OP_HELLO, id, ErrorCode.UNAUTHORIZED, BLOCKED_MESSAGE);
      return CLOSE_POLICY_VIOLATION;
    }
    const token = auth.check(body.token);
    if (token === null) {
      auth.countFailure(peer);
      return unauthorized(w, conn, OP_HELLO, id, body.token === undefined ? 'this server needs a token in HELLO' : 'invalid token');
    }
    conn.token = token;
  }
  if (typeof body.name === 'string') conn.name = body.name.slice(0, 64);
  writeBody(w, OP_HELLO, id, { v: PROTOCOL_VERSION, server: SERVER_NAME, tick_ms: tickMs });
  return 0;
}
