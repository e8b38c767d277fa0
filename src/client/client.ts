// TpsdClient: the SDK's public face. Owns at most one Connection at a time,
// reconnects with backoff in the background, and answers acquire() through
// the failure mode while no connection is up (see failure-mode.ts), from
// connect() on in modes 'open' and 'local'.
//
// Single-threaded. State: `conn` is set only after a HELLO was answered with
// success; calls made while it is null never wait for a connection, they are
// decided at once by the failure mode (acquire) or rejected (status).

import {
  MAX_UINT32, OP_HELLO, OP_STATUS, OUTCOME_FAILED, OUTCOME_OK, OUTCOME_THROTTLED, OUTCOME_TIMED_OUT,
} from '../protocol/opcodes.ts';
import { ShuttingDownError, TpsdError } from '../protocol/errors.ts';
import { Backoff } from './backoff.ts';
import { Connection } from './connection.ts';
import { hintsOfError, hintsOfResult, outcomeOfError, outcomeOfResult } from './call-outcome.ts';
import { ClientClosedError, ConnectError, DisconnectedError, PermitDeniedError } from './errors.ts';
import { decideWhileUnreachable } from './failure-mode.ts';
import { LocalLimiter } from './local-bucket.ts';
import { normalizeUrl, resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.ts';
import { openSocket, resolveWebSocket } from './socket.ts';
import type { AcquireOptions, ConnectionState, Outcome, Permit, ReleaseHints, ServerInfo, WithPermitOptions } from './types.ts';
import { checkAcquire, hintsToWire, readHelloReply, readStatusReply, writeHello, writeStatus } from './wire.ts';

const now = (): number => performance.now();
const NO_OPTIONS: AcquireOptions = Object.freeze({});

type StateListener = (state: ConnectionState, reason: string) => void;
type ErrorListener = (err: Error) => void;

/**
 * Connects to the daemon at `url` (`ws://host:port`, path `/v1` by default),
 * or to the first of a list of daemons that answers (a shared fleet: the
 * client moves to the next one whenever it reconnects, docs/cluster.md), and
 * resolves once its HELLO is answered. When no daemon can be reached:
 * failureMode 'closed' (the default) rejects with ConnectError; 'open' and
 * 'local' resolve anyway (the failure is reported to `onError`), answer
 * acquires by the failure mode and connect in the background, so a service
 * can start while the daemon is down. A HELLO the daemon refuses
 * (UnauthorizedError, ...) rejects in every mode. `lazy` resolves at once.
 */
export async function connect(url: string | readonly string[], options?: ConnectOptions): Promise<TpsdClient> {
  const client = new TpsdClient(url, options);
  if (client.options.lazy) {
    client.startInBackground();
    return client;
  }
  try {
    await client.connectOnce();
  } catch (err) {
    // The daemon refused the HELLO: a mistake to fix (token, version), not an outage.
    const refused = err instanceof TpsdError && !(err instanceof ShuttingDownError);
    const failure = refused ? (err as Error) : new ConnectError(client.urls.join(', '), (err as Error)?.message ?? String(err), err);
    if (!refused && client.options.failureMode !== 'closed' && !client.closed) {
      client.retryInBackground(failure);
      return client;
    }
    await client.close();
    throw failure;
  }
  return client;
}

export class TpsdClient {
  /** The daemons, in the order they are tried; `url` is the one in use (or tried next). */
  readonly urls: readonly string[];
  private urlIndex = 0;
  readonly options: ResolvedOptions;
  private conn: Connection | null = null;
  private opening: AbortController | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private nextAttemptAt = 0;
  private readonly backoff: Backoff;
  private readonly limiter: LocalLimiter | undefined;
  private isClosed = false;
  private info: ServerInfo | null = null;
  private readonly stateListeners = new Set<StateListener>();
  private readonly errorListeners = new Set<ErrorListener>();

  /** Use connect(); the constructor does not open anything. */
  constructor(url: string | readonly string[], options?: ConnectOptions, random: () => number = Math.random) {
    const list: readonly string[] = typeof url === 'string' ? [url] : url;
    if (!Array.isArray(list) || list.length === 0) throw new TypeError('tpsd: connect needs a daemon url or a non-empty list of them');
    this.urls = Object.freeze(list.map(normalizeUrl));
    this.options = resolveOptions(options);
    this.backoff = new Backoff(this.options.reconnect, random);
    this.limiter = this.options.localRate ? new LocalLimiter(this.options.localRate) : undefined;
    if (this.options.onStateChange) this.stateListeners.add(this.options.onStateChange);
    if (this.options.onError) this.errorListeners.add(this.options.onError);
  }

  /** The daemon in use, or the one the next attempt goes to. */
  get url(): string {
    return this.urls[this.urlIndex];
  }

  /** True while a connection is up and its HELLO was accepted. */
  get connected(): boolean {
    return this.conn !== null && this.conn.isOpen;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The last HELLO reply, or null before the first connection. */
  get server(): ServerInfo | null {
    return this.info;
  }

  /** Calls waiting for a reply on the current connection. */
  get outstanding(): number {
    return this.conn?.outstanding ?? 0;
  }

  /** 'state': connected/disconnected (with a reason); 'error': a (re)connect attempt failed (a ConnectError, or the daemon's refusal). Returns an unsubscribe function. */
  on(event: 'state', fn: StateListener): () => void;
  on(event: 'error', fn: ErrorListener): () => void;
  on(event: 'state' | 'error', fn: StateListener | ErrorListener): () => void {
    const set = (event === 'state' ? this.stateListeners : this.errorListeners) as Set<typeof fn>;
    set.add(fn);
    return () => { set.delete(fn); };
  }

  /**
   * Takes `tokens` from `key`. Resolves with granted=false when denied;
   * rejects with the TpsdError subclass of an error reply. While the daemon
   * is unreachable (or shutting down) the failure mode answers.
   */
  acquire(key: string, tokens = 1, options: AcquireOptions = NO_OPTIONS): Promise<Permit> {
    // Not an async function: the hot path makes one promise per call (the
    // connection's), and errors still come back as rejections.
    let waitMs: number;
    try {
      waitMs = checkAcquire(key, tokens, options.waitMs ?? 0);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.isClosed) return Promise.reject(new ClientClosedError());
    const conn = this.conn;
    if (conn === null) return Promise.resolve(this.unreachable(key, tokens, waitMs));
    return conn.acquire(key, tokens, waitMs, waitMs + (options.timeoutMs ?? this.options.timeoutMs));
  }

  /**
   * Reports how the guarded call went (an OUTCOME_* constant, the call's
   * latency, and optionally what the upstream's rate-limit headers said) and
   * frees the lease (fire and forget). A no-op for lease 0 (denied or local
   * permits) and for leases granted on an earlier connection (the daemon's
   * lease TTL frees those).
   */
  release(lease: number, outcome: Outcome, latencyUs: number, hints?: ReleaseHints): void {
    if (outcome !== OUTCOME_OK && outcome !== OUTCOME_FAILED && outcome !== OUTCOME_THROTTLED && outcome !== OUTCOME_TIMED_OUT) {
      throw new TypeError(`tpsd: outcome must be OUTCOME_OK, OUTCOME_FAILED, OUTCOME_THROTTLED or OUTCOME_TIMED_OUT (0 to 3), got ${String(outcome)}`);
    }
    const wire = hintsToWire(hints);
    if (lease === 0) return;
    const conn = this.conn;
    if (conn === null) return;
    const us = Number.isFinite(latencyUs) ? Math.min(MAX_UINT32, Math.max(0, Math.round(latencyUs))) : 0;
    conn.release(lease, outcome, us, wire);
  }

  /**
   * Runs `fn` under a permit for `key` and releases it with how the call
   * went (call-outcome.ts): a returned response with status 429 is
   * OUTCOME_THROTTLED and 5xx OUTCOME_FAILED; a thrown upstream 429 is
   * OUTCOME_THROTTLED, a thrown timeout OUTCOME_TIMED_OUT, anything else
   * thrown OUTCOME_FAILED; otherwise OUTCOME_OK. The response's rate-limit
   * headers go with the release as hints. Returns what fn returns (a 429
   * response too) and rethrows what it throws. Throws PermitDeniedError
   * when no permit is granted.
   */
  async withPermit<T>(key: string, fn: (permit: Permit) => T | Promise<T>, options: WithPermitOptions = {}): Promise<T> {
    const permit = await this.acquire(key, options.tokens ?? 1, options);
    if (!permit.granted) throw new PermitDeniedError(key, permit.retryAfterMs, permit.local === true);
    const t0 = now();
    let result: T;
    try {
      result = await fn(permit);
    } catch (err) {
      // Local permits (lease 0) release nothing: no need to read the error.
      if (permit.lease !== 0) this.release(permit.lease, outcomeOfError(err), (now() - t0) * 1000, hintsOfError(err));
      throw err;
    }
    if (permit.lease !== 0) this.release(permit.lease, outcomeOfResult(result), (now() - t0) * 1000, hintsOfResult(result));
    return result;
  }

  /** The daemon's STATUS snapshot. Rejects with DisconnectedError while not connected. */
  async status(): Promise<Record<string, unknown>> {
    if (this.isClosed) throw new ClientClosedError();
    const conn = this.conn;
    if (conn === null) throw new DisconnectedError(`tpsd: not connected to ${this.url}`);
    const reply = await conn.call(OP_STATUS, this.options.timeoutMs, writeStatus);
    return readStatusReply(reply);
  }

  /** Stops reconnecting and closes the connection; outstanding calls reject with ClientClosedError. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.opening?.abort();
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      const done = conn.close(new ClientClosedError());
      this.emitState('disconnected', 'client closed');
      await done;
    }
  }

  /** connect() without `lazy`: one attempt per daemon, in order; throws what went wrong with the last (or a HELLO refusal at once). */
  async connectOnce(): Promise<void> {
    for (let tried = 1; ; tried++) {
      try {
        this.adopt(await this.open());
        return;
      } catch (err) {
        if (err instanceof TpsdError || this.isClosed || tried >= this.urls.length) throw err;
        this.nextUrl();
      }
    }
  }

  /** connect() with `lazy`: the first attempt happens now, in the background. */
  startInBackground(): void {
    void this.attempt();
  }

  /** connect() in failure mode 'open' or 'local' after a failed first attempt: report it, try again later. */
  retryInBackground(err: Error): void {
    this.emitError(err);
    this.scheduleReconnect();
  }

  private async attempt(): Promise<void> {
    try {
      this.adopt(await this.open());
    } catch (err) {
      if (this.isClosed) return;
      const reason = (err as Error)?.message ?? String(err);
      this.emitError(err instanceof TpsdError ? err : new ConnectError(this.url, reason, err));
      this.scheduleReconnect();
    }
  }

  /** Opens a socket and exchanges HELLO; the connection is not adopted yet. */
  private async open(): Promise<Connection> {
    const ctl = new AbortController();
    this.opening = ctl;
    try {
      const Impl = await resolveWebSocket(this.options.WebSocket);
      const socket = await openSocket(Impl, this.url, this.options.timeoutMs, ctl.signal);
      const conn = new Connection(socket, {
        maxOutstanding: this.options.maxOutstanding,
        maxMessageBytes: this.options.maxMessageBytes,
        onClose: (c, reason) => this.onConnectionClosed(c, reason),
        onUnreachable: (key, tokens, waitMs) => (this.isClosed ? null : this.unreachable(key, tokens, waitMs)),
      });
      const onAbort = (): void => { void conn.close(new ClientClosedError()); };
      ctl.signal.addEventListener('abort', onAbort);
      if (ctl.signal.aborted) onAbort();
      try {
        const { token, name, timeoutMs } = this.options;
        const reply = await conn.call(OP_HELLO, timeoutMs, (w, id) => writeHello(w, id, token, name));
        this.info = readHelloReply(reply);
      } catch (err) {
        void conn.close(err instanceof Error ? err : new Error(String(err)));
        throw err;
      } finally {
        ctl.signal.removeEventListener('abort', onAbort);
      }
      return conn;
    } finally {
      if (this.opening === ctl) this.opening = null;
    }
  }

  private adopt(conn: Connection): void {
    if (this.isClosed) {
      void conn.close(new ClientClosedError());
      throw new ClientClosedError();
    }
    if (!conn.isOpen) {
      this.scheduleReconnect();
      return;
    }
    this.conn = conn;
    this.backoff.reset();
    this.emitState('connected', 'HELLO accepted');
  }

  private onConnectionClosed(conn: Connection, reason: string): void {
    if (conn !== this.conn) return;
    this.conn = null;
    this.emitState('disconnected', reason);
    this.scheduleReconnect();
  }

  /** Fail-over: the next attempt goes to the next daemon of the list (the only place the daemon in use changes). */
  private nextUrl(): void {
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
  }

  private scheduleReconnect(): void {
    if (this.isClosed || this.reconnectTimer !== null || this.opening !== null) return;
    this.nextUrl();
    const delay = this.backoff.next();
    this.nextAttemptAt = now() + delay;
    const timer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.attempt();
    }, delay);
    // Reconnecting alone should not keep a Node process alive.
    (timer as { unref?: () => void }).unref?.();
    this.reconnectTimer = timer;
  }

  /** Milliseconds until the daemon might answer again. */
  private untilReconnectMs(): number {
    if (this.reconnectTimer !== null) return Math.max(1, this.nextAttemptAt - now());
    return Math.max(1, this.options.reconnect.initialDelayMs); // an attempt is under way
  }

  private unreachable(key: string, tokens: number, waitMs: number): Permit | Promise<Permit> {
    const d = decideWhileUnreachable({
      mode: this.options.failureMode,
      key,
      tokens,
      waitMs,
      now: now(),
      untilReconnectMs: this.untilReconnectMs(),
      limiter: this.limiter,
    });
    if (d.delayMs <= 0) return d.permit;
    return new Promise((resolve) => setTimeout(() => resolve(d.permit), Math.min(d.delayMs, 0x7fffffff)));
  }

  private emitState(state: ConnectionState, reason: string): void {
    for (const fn of this.stateListeners) callSafely(() => fn(state, reason));
  }

  private emitError(err: Error): void {
    for (const fn of this.errorListeners) callSafely(() => fn(err));
  }
}

/** A listener that throws must not break the client; its error surfaces asynchronously. */
function callSafely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    queueMicrotask(() => { throw err; });
  }
}
