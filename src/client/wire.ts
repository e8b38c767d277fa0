// Requests written into the batch writer and replies read back into SDK
// values. Functions over src/protocol/, pure but for a cache of encoded keys;
// no I/O.

import { MsgWriter, isUint, utf8Length } from '../protocol/codec.ts';
import { FLAT_UINT, type FlatReader } from '../protocol/flat-reader.ts';
import { MAX_KEY_BYTES, MAX_UINT32, MAX_WAIT_MS, OP_ACQUIRE, OP_HELLO, OP_RELEASE, OP_STATUS, PROTOCOL_VERSION, STATUS_DENIED, STATUS_OK } from '../protocol/opcodes.ts';
import { BadRequestError, errorCodeName, errorFromReply, type TpsdError } from '../protocol/errors.ts';
import type { Permit, ReleaseHints, ServerInfo } from './types.ts';

export function writeHello(w: MsgWriter, id: number, token?: string, name?: string): void {
  const body: Record<string, unknown> = { v: PROTOCOL_VERSION };
  if (token !== undefined) body.token = token;
  if (name !== undefined) body.name = name;
  w.array(3).uint(OP_HELLO).uint(id).value(body);
}

export function writeAcquire(w: MsgWriter, id: number, key: string, tokens: number, waitMs: number): void {
  w.array(5).uint(OP_ACQUIRE).uint(id).raw(keyBytes(key)).uint(tokens).uint(waitMs);
}

/** Keys whose MessagePack encoding is remembered; the cache is emptied when it is full. */
const MAX_CACHED_KEYS = 4096;
const keyCache = new Map<string, Uint8Array>();
const keyWriter = new MsgWriter(64);

/**
 * The MessagePack string of `key`. A service uses few distinct keys over and
 * over, and copying their bytes is several times cheaper than encoding the
 * string each time. Module state, but each thread has its own modules.
 */
export function keyBytes(key: string): Uint8Array {
  let bytes = keyCache.get(key);
  if (bytes === undefined) {
    if (keyCache.size >= MAX_CACHED_KEYS) keyCache.clear();
    bytes = keyWriter.str(key).take();
    keyCache.set(key, bytes);
  }
  return bytes;
}

/** RELEASE always goes with id 0: no reply wanted. `hints` (from hintsToWire) is the sixth element when given. */
export function writeRelease(w: MsgWriter, lease: number, outcome: number, latencyUs: number, hints?: WireHints): void {
  if (hints === undefined) w.array(5).uint(OP_RELEASE).uint(0).uint(lease).uint(outcome).uint(latencyUs);
  else w.array(6).uint(OP_RELEASE).uint(0).uint(lease).uint(outcome).uint(latencyUs).value(hints);
}

/** RELEASE hints as the wire names them. */
export type WireHints = Partial<Record<'limit' | 'remaining' | 'reset_ms' | 'window_ms' | 'retry_after_ms', number>>;

const HINT_NAMES: readonly [keyof ReleaseHints, keyof WireHints][] = [
  ['limit', 'limit'], ['remaining', 'remaining'], ['resetMs', 'reset_ms'], ['windowMs', 'window_ms'], ['retryAfterMs', 'retry_after_ms'],
];

/**
 * Release hints in wire form, whole numbers; undefined when none is set.
 * Throws TypeError for a field that is not a number >= 0 (the daemon would
 * refuse the whole RELEASE).
 */
export function hintsToWire(hints: ReleaseHints | undefined): WireHints | undefined {
  if (hints === undefined || hints === null) return undefined;
  if (typeof hints !== 'object') throw new TypeError(`tpsd: release hints must be an object, got ${typeof hints}`);
  let out: WireHints | undefined;
  for (const [name, wire] of HINT_NAMES) {
    const v = hints[name];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`tpsd: release hint ${name} must be a number >= 0, got ${String(v)}`);
    (out ??= {})[wire] = Math.min(Number.MAX_SAFE_INTEGER, Math.round(v));
  }
  return out;
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

/**
 * readAcquireReply for a reply the FlatReader has just read, without building
 * the array: the permit of a granted or denied reply, or null for anything
 * else (an error reply, a status that is not a uint): read those with
 * readAcquireReply(flatToArray(...)), which gives every odd reply the same
 * answer as a reply decoded the general way.
 */
export function readAcquireFlat(r: FlatReader): Permit | null {
  if (r.length < 3 || r.kinds[2] !== FLAT_UINT) return null;
  const status = r.nums[2];
  if (status === STATUS_OK) return { granted: true, lease: flatUint(r, 3), remaining: flatUint(r, 4), retryAfterMs: 0 };
  if (status === STATUS_DENIED) return { granted: false, lease: 0, remaining: 0, retryAfterMs: flatUint(r, 4) };
  return null;
}

/** Element i of the flat array just read when it is a uint, else 0 (what readAcquireReply makes of a missing or odd field). */
function flatUint(r: FlatReader, i: number): number {
  return i < r.length && r.kinds[i] === FLAT_UINT ? r.nums[i] : 0;
}

/** The flat array just read by `r` from `bytes`, as the values the general decoder gives. */
export function flatToArray(r: FlatReader, bytes: Uint8Array): unknown[] {
  const out: unknown[] = new Array(r.length);
  for (let i = 0; i < r.length; i++) out[i] = r.kinds[i] === FLAT_UINT ? r.nums[i] : r.str(bytes, i);
  return out;
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

/** Validates acquire arguments the way the daemon would; returns waitMs as a uint, cut to MAX_WAIT_MS as the daemon cuts it. */
export function checkAcquire(key: string, tokens: number, waitMs: number): number {
  if (typeof key !== 'string' || key.length === 0) throw new BadRequestError('tpsd: key must be a non-empty string');
  if (utf8Length(key) > MAX_KEY_BYTES) throw new BadRequestError(`tpsd: key is longer than ${MAX_KEY_BYTES} bytes`);
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > MAX_UINT32) throw new BadRequestError(`tpsd: tokens must be an integer >= 1, got ${String(tokens)}`);
  if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0) throw new BadRequestError(`tpsd: waitMs must be a number >= 0, got ${String(waitMs)}`);
  return Math.min(MAX_WAIT_MS, Math.ceil(waitMs));
}
