// The HTTP/JSON front door on the daemon's port (PROTOCOL.md "HTTP/JSON on
// the same port"): POST /v1/acquire and POST /v1/release, for services in any
// language. Served by the I/O threads' uWS apps and by the SAME
// RequestHandler as the WebSocket path: each call becomes the protocol's own
// MessagePack request (http-codec.ts), fed to handler.handleMessage with an
// HttpExchange as its Conn; the reply, at once or later when a waiter is
// granted or times out, becomes the HTTP answer. Auth, scope, limits, waits,
// leases and counters are the handler's, so the two doors cannot disagree.
//
// Threads: one HttpApi per I/O thread, used only by it. A lease lives in the
// lease table of the thread that granted it, but keep-alive connections land
// on any thread (SO_REUSEPORT), so a RELEASE of another thread's lease is
// relayed to that thread over a direct channel (relay-links.ts; the owner is
// checked there, from the same token) and its reply comes back the same
// way; a relay unanswered in RELAY_TIMEOUT_MS is answered 503.
//
// uWS rules followed here:
// - onAborted is attached first, before any work: an aborted call's waiter is
//   dropped at once (handler.dropConnection), so it can never be granted
//   later and no permit leaks; its response is never touched again;
// - the body is read with onData, chunks copied (uWS reuses their memory),
//   kept up to max_message_bytes; a larger body is read to its end and
//   discarded (answered 400; a client still sending past MAX_DISCARD_BYTES is
//   answered and disconnected), so an early answer never meets a reset;
// - deferred answers (waits) are corked; keep-alive stays on until the daemon
//   stops, then every answer carries Connection: close.

import type uWS from 'uWebSockets.js';
import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { MsgWriter, isUint } from '../protocol/codec.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { Authenticator } from './auth.ts';
import { bearerToken, callerOf } from './caller.ts';
import { INTERNAL_CODE, answerOf, encodeCall, errorAnswer, parseBody, replyOf, type HttpAnswer, type HttpCall } from './http-codec.ts';
import { HttpExchange } from './http-exchange.ts';
import { LeaseTable } from './lease-table.ts';
import type { HttpRelay } from './relay-links.ts';
import type { RequestHandler } from './request-handler.ts';

/** Past this many body bytes a client still sending is answered 400 and disconnected. */
const MAX_DISCARD_BYTES = 1024 * 1024;
const RELAY_TIMEOUT_MS = 2000;
const INTERNAL_ERROR = [0, 0, INTERNAL_CODE, 'internal error'];
const NO_REPLY = [0, 0, INTERNAL_CODE, 'the request got no reply'];

export interface HttpApiOptions {
  readonly handler: RequestHandler;
  readonly config: TpsdConfig;
  readonly thread: number;
  readonly threadCount: number;
  readonly shuttingDown: () => boolean;
  /** After the handler took a request: schedule the waiter drain and the allowance flush. */
  readonly afterRequest: () => void;
  /** Sends a relay to I/O thread `to` (relay-links.ts); false when there is no channel to it. */
  readonly relay: (to: number, relay: HttpRelay) => boolean;
  readonly log: Logger;
}

export class HttpApi {
  private auth: Authenticator;
  private maxBodyBytes: number;
  private maxOpen: number;
  /** Calls not answered yet (reading their body, waiting, or relayed). */
  private readonly open = new Set<HttpExchange>();
  private readonly relays = new Map<number, { x: HttpExchange; deadline: number }>();
  private relayTimer: NodeJS.Timeout | null = null;
  private nextRelayId = 1;
  private readonly w = new MsgWriter(1024);
  private stopped = false;

  constructor(private readonly o: HttpApiOptions) {
    this.auth = new Authenticator(o.config.auth);
    this.maxBodyBytes = o.config.max_message_bytes;
    this.maxOpen = o.config.limits.max_connections;
  }

  /** Adds the routes to the thread's app. */
  register(app: uWS.TemplatedApp): void {
    app.post('/v1/acquire', (res, req) => this.begin(res, req, 'acquire'));
    app.post('/v1/release', (res, req) => this.begin(res, req, 'release'));
    const wrongMethod = (res: uWS.HttpResponse) => {
      res.writeStatus('405 Method Not Allowed').writeHeader('allow', 'POST').writeHeader('content-type', 'application/json')
        .end(JSON.stringify({ code: ErrorCode.BAD_REQUEST, error: 'BAD_REQUEST', message: 'use POST' }), true);
    };
    app.any('/v1/acquire', wrongMethod);
    app.any('/v1/release', wrongMethod);
  }

  /** Calls not answered yet. */
  get openCalls(): number { return this.open.size; }

  /** A reloaded config: tokens, body cap and call cap apply to new calls. */
  reconfigure(config: TpsdConfig): void {
    this.auth = new Authenticator(config.auth);
    this.maxBodyBytes = config.max_message_bytes;
    this.maxOpen = config.limits.max_connections;
  }

  private begin(res: uWS.HttpResponse, req: uWS.HttpRequest, call: HttpCall): void {
    // The request object lives only in this callback: read the header now.
    const secret = bearerToken(req.getHeader('authorization'));
    const x = new HttpExchange(res, call, callerOf(this.auth, secret), secret);
    res.onAborted(() => this.aborted(x));
    if (this.open.size >= this.maxOpen) {
      x.answered = true;
      this.write(res, errorAnswer(ErrorCode.OVERLOADED, 'too many HTTP calls open on this thread', x.token !== null), true);
      return;
    }
    this.open.add(x);
    res.onData((chunk, isLast) => this.onChunk(x, chunk, isLast));
  }

  private onChunk(x: HttpExchange, chunk: ArrayBuffer, isLast: boolean): void {
    if (x.answered) return;
    const n = chunk.byteLength;
    x.bodyBytes += n;
    if (x.bodyBytes > Math.max(MAX_DISCARD_BYTES, this.maxBodyBytes)) { this.refuse(x, `the body is over ${this.maxBodyBytes} bytes`, true); return; }
    const fits = x.bodyBytes <= this.maxBodyBytes;
    if (isLast && x.chunks === null && fits) { this.dispatch(x, new Uint8Array(chunk)); return; }
    if (fits && n > 0) (x.chunks ??= []).push(new Uint8Array(chunk.slice(0)));
    if (!fits) x.chunks = null;
    if (!isLast) return;
    if (!fits) { this.refuse(x, `the body is over ${this.maxBodyBytes} bytes`, false); return; }
    this.dispatch(x, Buffer.concat(x.chunks ?? []));
  }

  /** A whole body: parse it, make the request, hand it to the handler (or to the thread holding the lease). */
  private dispatch(x: HttpExchange, bytes: Uint8Array): void {
    x.chunks = null;
    const body = parseBody(bytes);
    if (typeof body === 'string') { this.refuse(x, body, false); return; }
    const w = this.w;
    w.reset();
    const problem = encodeCall(w, x.call, body);
    if (problem !== null) { this.refuse(x, problem, false); return; }
    const owner = x.call === 'release' && isUint(body.lease) ? LeaseTable.threadOf(body.lease) : this.o.thread;
    if (owner !== this.o.thread && owner < this.o.threadCount && !this.stopped && this.sendRelay(x, owner, w.view())) {
      w.reset();
      return;
    }
    const reply = this.handle(x, w.view());
    w.reset();
    if (reply !== null) this.answer(x, reply);
    this.o.afterRequest();
  }

  /** Runs one request through the handler; its reply, or null when it waits (answered by deliver()). */
  private handle(x: HttpExchange, bytes: Uint8Array): unknown {
    const h = this.o.handler;
    try {
      h.handleMessage(x, bytes);
    } catch (err) {
      // A bug must cost one call, never the thread.
      this.o.log.error({ err, call: x.call }, 'HTTP call handling failed');
      h.out.reset();
      return INTERNAL_ERROR;
    }
    const out = h.out;
    if (out.length === 0) return x.outstanding > 0 ? null : NO_REPLY;
    const reply = replyOf(out.view());
    out.reset();
    return reply;
  }

  /** A deferred reply of a waiting call (the worker's flush of `handler.dirty`). */
  deliver(x: HttpExchange): void {
    const out = x.out;
    if (out === null || out.length === 0) return;
    const reply = replyOf(out.view());
    out.reset();
    this.answer(x, reply);
  }

  private answer(x: HttpExchange, reply: unknown): void {
    if (x.answered) return;
    x.answered = true;
    this.open.delete(x);
    // Aborted: the handler already dropped its waiter, so `reply` cannot be a grant.
    if (x.aborted || x.res === null) return;
    this.write(x.res, answerOf(reply, x.token !== null), this.closing());
  }

  /** A 400 for a body the handler never sees; `disconnect`: the client is still sending more than we read. */
  private refuse(x: HttpExchange, message: string, disconnect: boolean): void {
    x.answered = true;
    x.chunks = null;
    this.open.delete(x);
    if (x.res !== null && !x.aborted) this.write(x.res, errorAnswer(ErrorCode.BAD_REQUEST, message, x.token !== null), disconnect || this.closing());
  }

  private write(res: uWS.HttpResponse, a: HttpAnswer, close: boolean): void {
    res.cork(() => {
      res.writeStatus(a.status).writeHeader('content-type', 'application/json');
      if (a.retryAfterS >= 0) res.writeHeader('retry-after', String(a.retryAfterS));
      if (a.challenge) res.writeHeader('www-authenticate', 'Bearer');
      res.end(a.body, close);
    });
  }

  private closing(): boolean { return this.stopped || this.o.shuttingDown(); }

  private aborted(x: HttpExchange): void {
    x.aborted = true;
    x.answered = true;
    x.chunks = null;
    this.open.delete(x);
    // Ends its waiter now: a closed Conn is never granted (waiter-drain.ts).
    this.o.handler.dropConnection(x);
  }

  /** Sends the request to thread `to` (postMessage copies `request`); false when there is no channel to it. */
  private sendRelay(x: HttpExchange, to: number, request: Uint8Array): boolean {
    const relayId = this.nextRelayId++;
    if (!this.o.relay(to, { kind: 'request', from: this.o.thread, relayId, secret: x.secret, request })) return false;
    this.relays.set(relayId, { x, deadline: performance.now() + RELAY_TIMEOUT_MS });
    this.relayTimer ??= setInterval(() => this.expireRelays(performance.now()), RELAY_TIMEOUT_MS / 4);
    return true;
  }

  private expireRelays(now: number): void {
    for (const [id, r] of this.relays) {
      if (r.deadline > now) continue;
      this.relays.delete(id);
      this.answer(r.x, [0, 0, ErrorCode.OVERLOADED, 'the I/O thread holding the lease did not answer in time']);
    }
    if (this.relays.size === 0 && this.relayTimer !== null) { clearInterval(this.relayTimer); this.relayTimer = null; }
  }

  /** A relay from another I/O thread: a RELEASE of a lease this thread holds, or the answer to one we sent. */
  onRelay(m: HttpRelay): void {
    if (m.kind === 'reply') {
      const r = this.relays.get(m.relayId);
      if (r === undefined) return;
      this.relays.delete(m.relayId);
      this.answer(r.x, replyOf(m.reply));
      return;
    }
    const x = new HttpExchange(null, 'release', callerOf(this.auth, m.secret), m.secret);
    const reply = this.handle(x, m.request);
    this.o.afterRequest();
    const w = this.w;
    w.reset();
    this.o.relay(m.from, { kind: 'reply', relayId: m.relayId, reply: w.value(reply).take() });
  }

  /** The daemon stops: relayed calls are answered SHUTTING_DOWN; every later answer closes its connection. */
  stop(): void {
    this.stopped = true;
    for (const r of this.relays.values()) this.answer(r.x, [0, 0, ErrorCode.SHUTTING_DOWN, 'the server is shutting down']);
    this.relays.clear();
    if (this.relayTimer !== null) { clearInterval(this.relayTimer); this.relayTimer = null; }
  }
}
