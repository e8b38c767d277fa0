// Requests written into the batch writer and replies read back into SDK
// values. Pure functions over src/protocol/; no I/O.

import { MsgWriter, isUint, utf8Length } from '../protocol/codec.ts';
import { MAX_KEY_BYTES, MAX_UINT32, OP_ACQUIRE, OP_HELLO, OP_RELEASE, OP_STATUS, PROTOCOL_VERSION, STATUS_DENIED, STATUS_OK } from '../protocol/opcodes.ts';
import { BadRequestError, errorCodeName, errorFromReply, type TpsdError } from '../protocol/errors.ts';
import type { Permit, ServerInfo } from './types.ts';

export function writeHello(w: MsgWriter, id: number, token?: string, name?: string): void {
  const body: Record<string, unknown> = { v: PROTOCOL_VERSION };
  if (token !== undefined) body.token = token;
  if (name !== undefined) body.name = name;
  w.array(3).uint(OP_HELLO).uint(id).value(body);
}

export function writeAcquire(w: MsgWriter, id: number, key: string, tokens: number, waitMs: number): void {
  w.array(5).uint(OP_ACQUIRE).uint(id).str(key).uint(tokens).uint(waitMs);
}

/** RELEASE always goes with id 0: no reply wanted. */
export function writeRelease(w: MsgWriter, lease: number, outcome: number, latencyUs: number): void {
  w.array(5).uint(OP_RELEASE).uint(0).uint(lease).uint(outcome).uint(latencyUs);
}

export function writeStatus(w: MsgWriter, id: number): void {
  w.array(2).uint(OP_STATUS).uint(id);
}

/** The TpsdError subclass for an error reply `[op, id, code, message]`. */
export function replyError(reply: readonly unknown[]): TpsdError {
  const code = Number(reply[2]);
  const message = typeof reply[3] === 'string' ? reply[3] : errorCodeName(code);
  return errorFromReply(code, message);
}

/** `[1, id, 0, lease, remaining]` or `[1, id, 1, 0, retry_after_ms]`; throws the error of an error reply. */
export function readAcquireReply(reply: readonly unknown[]): Permit {
  const status = reply[2];
  if (status === STATUS_OK) {
    const lease = reply[3];
    const remaining = reply[4];
    return { granted: true, lease: isUint(lease) ? lease : 0, remaining: isUint(remaining) ? remaining : 0, retryAfterMs: 0 };
  }
  if (status === STATUS_DENIED) {
    const retry = reply[4];
    return { granted: false, lease: 0, remaining: 0, retryAfterMs: isUint(retry) ? retry : 0 };
  }
  throw replyError(reply);
}

export function readHelloReply(reply: readonly unknown[]): ServerInfo {
  if (reply[2] !== STATUS_OK) throw replyError(reply);
  const body = (reply[3] ?? {}) as Partial<ServerInfo>;
  return {
    v: typeof body.v === 'number' ? body.v : PROTOCOL_VERSION,
    server: typeof body.server === 'string' ? body.server : '',
    tick_ms: typeof body.tick_ms === 'number' ? body.tick_ms : 0,
  };
}

export function readStatusReply(reply: readonly unknown[]): Record<string, unknown> {
  if (reply[2] !== STATUS_OK) throw replyError(reply);
  const snapshot = reply[3];
  return snapshot !== null && typeof snapshot === 'object' ? (snapshot as Record<string, unknown>) : {};
}

/** Validates acquire arguments the way the daemon would; returns waitMs as a uint. */
export function checkAcquire(key: string, tokens: number, waitMs: number): number {
  if (typeof key !== 'string' || key.length === 0) throw new BadRequestError('tpsd: key must be a non-empty string');
  if (utf8Length(key) > MAX_KEY_BYTES) throw new BadRequestError(`tpsd: key is longer than ${MAX_KEY_BYTES} bytes`);
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > MAX_UINT32) throw new BadRequestError(`tpsd: tokens must be an integer >= 1, got ${String(tokens)}`);
  if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0) throw new BadRequestError(`tpsd: waitMs must be a number >= 0, got ${String(waitMs)}`);
  return Math.min(MAX_UINT32, Math.ceil(waitMs));
}
