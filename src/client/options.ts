// connect() options: defaults applied and checked once, then frozen.

import { WS_PATH } from '../protocol/opcodes.ts';
import { DEFAULT_RECONNECT, type ReconnectOptions } from './backoff.ts';
import type { LocalRate } from './local-bucket.ts';
import type { WebSocketCtor } from './socket.ts';
import type { ConnectionState, FailureMode } from './types.ts';

export interface ConnectOptions {
  /** Auth token sent in HELLO. */
  token?: string;
  /** Client name sent in HELLO (shows up in the daemon's logs). */
  name?: string;
  /** Default per-call timeout, and the connect + HELLO timeout (default 5000). */
  timeoutMs?: number;
  /** What acquire answers while the daemon is unreachable, from connect() on (default 'closed': connect() rejects then). */
  failureMode?: FailureMode;
  /** Safe rate per key for failureMode 'local'. */
  localRate?: LocalRate;
  /** Reconnect backoff. */
  reconnect?: Partial<ReconnectOptions>;
  /** Calls waiting for a reply at once; more are rejected with OverloadedError (default 4096). */
  maxOutstanding?: number;
  /** The daemon's max message size; batches are flushed well below it (default 65536). */
  maxMessageBytes?: number;
  /** Resolve connect() at once, without waiting for the first attempt, and connect in the background (the failure mode applies until then). */
  lazy?: boolean;
  /** Called on every change of connection state. */
  onStateChange?: (state: ConnectionState) => void;
  /** Called when a (re)connect attempt fails, from the first one on (same as client.on('error')). */
  onError?: (err: Error) => void;
  /** WebSocket implementation; default globalThis.WebSocket, else the `ws` package. */
  WebSocket?: WebSocketCtor;
}

export interface ResolvedOptions {
  readonly token: string | undefined;
  readonly name: string | undefined;
  readonly timeoutMs: number;
  readonly failureMode: FailureMode;
  readonly localRate: LocalRate | undefined;
  readonly reconnect: Readonly<ReconnectOptions>;
  readonly maxOutstanding: number;
  readonly maxMessageBytes: number;
  readonly lazy: boolean;
  readonly onStateChange: ((state: ConnectionState) => void) | undefined;
  readonly onError: ((err: Error) => void) | undefined;
  readonly WebSocket: WebSocketCtor | undefined;
}

const KNOWN = new Set([
  'token', 'name', 'timeoutMs', 'failureMode', 'localRate', 'reconnect',
  'maxOutstanding', 'maxMessageBytes', 'lazy', 'onStateChange', 'onError', 'WebSocket',
]);
const RECONNECT_KNOWN = new Set(Object.keys(DEFAULT_RECONNECT));

function positive(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new TypeError(`tpsd: option ${name} must be a number >= ${min}, got ${String(v)}`);
  return v;
}

export function resolveOptions(opts: ConnectOptions = {}): ResolvedOptions {
  for (const k of Object.keys(opts)) if (!KNOWN.has(k)) throw new TypeError(`tpsd: unknown option "${k}"`);
  const failureMode = opts.failureMode ?? 'closed';
  if (failureMode !== 'open' && failureMode !== 'closed' && failureMode !== 'local') {
    throw new TypeError(`tpsd: option failureMode must be 'open', 'closed' or 'local', got ${String(failureMode)}`);
  }
  if (failureMode === 'local' && !opts.localRate) throw new TypeError("tpsd: failureMode 'local' needs option localRate: {tps, burst?}");
  const r = opts.reconnect ?? {};
  for (const k of Object.keys(r)) if (!RECONNECT_KNOWN.has(k)) throw new TypeError(`tpsd: unknown option "reconnect.${k}"`);
  const reconnect = Object.freeze({
    initialDelayMs: positive('reconnect.initialDelayMs', r.initialDelayMs, DEFAULT_RECONNECT.initialDelayMs, 0),
    maxDelayMs: positive('reconnect.maxDelayMs', r.maxDelayMs, DEFAULT_RECONNECT.maxDelayMs, 0),
    factor: positive('reconnect.factor', r.factor, DEFAULT_RECONNECT.factor),
    jitter: positive('reconnect.jitter', r.jitter, DEFAULT_RECONNECT.jitter, 0),
  });
  if (reconnect.jitter > 1) throw new TypeError('tpsd: option reconnect.jitter must be between 0 and 1');
  return Object.freeze({
    token: opts.token,
    name: opts.name,
    timeoutMs: positive('timeoutMs', opts.timeoutMs, 5000),
    failureMode,
    localRate: opts.localRate ? Object.freeze({ ...opts.localRate }) : undefined,
    reconnect,
    maxOutstanding: Math.floor(positive('maxOutstanding', opts.maxOutstanding, 4096)),
    maxMessageBytes: positive('maxMessageBytes', opts.maxMessageBytes, 64 * 1024, 1024),
    lazy: opts.lazy ?? false,
    onStateChange: opts.onStateChange,
    onError: opts.onError,
    WebSocket: opts.WebSocket,
  });
}

/** `ws://host:port` -> `ws://host:port/v1`; http(s) becomes ws(s); an explicit path is kept. */
export function normalizeUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`tpsd: invalid daemon url ${JSON.stringify(url)}`);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`tpsd: daemon url must be ws:// or wss://, got ${JSON.stringify(url)}`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = WS_PATH;
  return u.toString();
}
