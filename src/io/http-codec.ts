// The HTTP/JSON front door's translation, both ways (PROTOCOL.md "HTTP/JSON
// on the same port"): a JSON body becomes the protocol's own MessagePack
// request, which the RequestHandler answers exactly as it answers a
// WebSocket client (no rule is checked twice: a wrong type, tokens 0 or a
// long key reach the handler as they came and get its BAD_REQUEST); the
// handler's reply array becomes the HTTP status, headers and JSON body.
//
// Only transport matters are decided here: a body that is not a JSON object
// is 400, defaults of absent fields, and (while the daemon's RELEASE takes
// five elements) the `hints` object, checked here and not forwarded.
//
// Threads: pure functions over the caller's MsgWriter (the I/O thread's).

import { decodeAll, type MsgWriter } from '../protocol/codec.ts';
import { FLAT_UINT, FlatReader } from '../protocol/flat-reader.ts';
import { ErrorCode, errorCodeName } from '../protocol/errors.ts';
import { OP_ACQUIRE, OP_RELEASE, STATUS_DENIED, STATUS_OK } from '../protocol/opcodes.ts';
import { HINT_FIELDS, readReleaseHints } from './release-hints.ts';

export type HttpCall = 'acquire' | 'release';

/** The request id of the one request an HTTP call becomes (never 0: RELEASE 0 wants no reply). */
export const HTTP_REQUEST_ID = 1;

/** An HTTP answer: the status line, the JSON body, and its extra headers. */
export interface HttpAnswer {
  readonly status: string;
  readonly body: string;
  /** Retry-After in whole seconds, or -1 for none. */
  readonly retryAfterS: number;
  /** 401: add `WWW-Authenticate: Bearer`. */
  readonly challenge: boolean;
}

const STATUS_LINES: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found',
  429: '429 Too Many Requests', 500: '500 Internal Server Error', 503: '503 Service Unavailable',
};
/** Retry-After of a 503 (OVERLOADED, SHUTTING_DOWN): the protocol gives no estimate; one second. */
const UNAVAILABLE_RETRY_S = 1;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body's text: ASCII (the usual case) without a decoder, anything else strictly as UTF-8 (throws if invalid). */
function textOf(bytes: Uint8Array): string {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0x80) return utf8.decode(bytes);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The body as a JSON object, or the message of a 400. */
export function parseBody(bytes: Uint8Array): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(textOf(bytes));
  } catch (err) {
    return `the body is not JSON: ${(err as Error).message}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the body must be a JSON object';
  return value as Record<string, unknown>;
}

/** A field's value, or its default when the body does not have it (own properties only). */
function field(body: Record<string, unknown>, name: string, fallback: unknown): unknown {
  return Object.hasOwn(body, name) ? body[name] : fallback;
}

/**
 * Writes a JSON field as a request element, unchanged for the handler to
 * judge; objects and arrays become nil (refused by the handler all the same,
 * and never packed at any depth).
 */
function element(w: MsgWriter, v: unknown): void {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) w.uint(v);
  else if (typeof v === 'string') w.str(v);
  else if (typeof v === 'number' || typeof v === 'boolean') w.value(v);
  else w.value(null);
}

/**
 * Writes the protocol request for a call's JSON body into `w`. Returns null,
 * or the message of a 400 for what only JSON can get wrong (the hints).
 */
export function encodeCall(w: MsgWriter, call: HttpCall, body: Record<string, unknown>): string | null {
  if (call === 'acquire') {
    w.array(5).uint(OP_ACQUIRE).uint(HTTP_REQUEST_ID);
    element(w, field(body, 'key', undefined));
    element(w, field(body, 'tokens', 1));
    element(w, field(body, 'wait_ms', 0));
    return null;
  }
  // The hints are checked by the RELEASE rules (release-hints.ts) and only their known
  // fields are passed on: a JSON object may nest deeper than the encoder should follow.
  const hints = field(body, 'hints', undefined);
  const problem = readReleaseHints(hints);
  if (problem !== null) return problem;
  const forward = hints !== undefined && hints !== null;
  w.array(forward ? 6 : 5).uint(OP_RELEASE).uint(HTTP_REQUEST_ID);
  element(w, field(body, 'lease', undefined));
  element(w, field(body, 'outcome', 0));
  element(w, field(body, 'latency_us', 0));
  if (forward) w.value(knownHints(hints as Record<string, unknown>));
  return null;
}

/** The known hint fields only (unknown ones are ignored), for the 6th element. */
function knownHints(hints: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const wire of Object.values(HINT_FIELDS)) if (Object.hasOwn(hints, wire)) out[wire] = hints[wire] as number;
  return out;
}

/** Code and name of a 500 (a reply the protocol does not define: a bug, never a client's doing). */
export const INTERNAL_CODE = 0;
const INTERNAL_NAME = 'INTERNAL';

/** An error answer with the protocol's code and name (INTERNAL_CODE: a 500). */
export function errorAnswer(code: number, message: string, hadToken: boolean): HttpAnswer {
  const http = httpStatusOf(code, hadToken);
  const internal = http === 500;
  return {
    status: STATUS_LINES[http],
    body: JSON.stringify({ code: internal ? INTERNAL_CODE : code, error: internal ? INTERNAL_NAME : errorCodeName(code), message }),
    retryAfterS: http === 503 ? UNAVAILABLE_RETRY_S : -1,
    challenge: http === 401,
  };
}

/** PROTOCOL.md's status of an error code; UNAUTHORIZED is 401 without a valid token, 403 with one. */
export function httpStatusOf(code: number, hadToken: boolean): number {
  switch (code) {
    case ErrorCode.BAD_REQUEST: case ErrorCode.TOKENS_EXCEED_BURST: return 400;
    case ErrorCode.UNAUTHORIZED: return hadToken ? 403 : 401;
    case ErrorCode.UNKNOWN_KEY: case ErrorCode.UNKNOWN_LEASE: return 404;
    case ErrorCode.OVERLOADED: case ErrorCode.SHUTTING_DOWN: return 503;
    default: return 500;
  }
}

const flat = new FlatReader();

/**
 * The first reply in `bytes` (the handler's output for one request) as an
 * array: read straight from the bytes when it is flat (every ACQUIRE and
 * RELEASE reply is), else by the general decoder.
 */
export function replyOf(bytes: Uint8Array): unknown[] {
  if (flat.read(bytes, 0) && flat.length >= 3) {
    const n = flat.length;
    const reply = new Array<unknown>(n);
    for (let i = 0; i < n; i++) reply[i] = flat.kinds[i] === FLAT_UINT ? flat.nums[i] : flat.str(bytes, i);
    return reply;
  }
  return decodeAll(bytes)[0] as unknown[];
}

/** The HTTP answer to the handler's reply `[op, id, status, ...]`. */
export function answerOf(reply: unknown, hadToken: boolean): HttpAnswer {
  if (!Array.isArray(reply) || typeof reply[2] !== 'number') return errorAnswer(INTERNAL_CODE, 'the request got no reply', hadToken);
  const [op, , status] = reply as [number, number, number, ...unknown[]];
  // Two uints: concatenated, not stringified (this answer is the hot one).
  if (status === STATUS_OK && op === OP_ACQUIRE) return ok(`{"lease":${Number(reply[3])},"remaining":${Number(reply[4])}}`);
  if (status === STATUS_OK) return ok('{}');
  if (status === STATUS_DENIED && op === OP_ACQUIRE) {
    const retryAfterMs = reply[4] as number;
    return {
      status: STATUS_LINES[429], body: `{"retry_after_ms":${Number(retryAfterMs)}}`,
      retryAfterS: Math.ceil(retryAfterMs / 1000), challenge: false,
    };
  }
  return errorAnswer(status, String(reply[3] ?? ''), hadToken);
}

function ok(body: string): HttpAnswer {
  return { status: STATUS_LINES[200], body, retryAfterS: -1, challenge: false };
}
