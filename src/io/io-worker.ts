// An I/O worker thread: one uWS app serving protocol v1 on /v1 and the HTTP
// endpoints, on the port every I/O thread shares (SO_REUSEPORT; the kernel
// spreads connections over the threads).
//
// Threads: runs in its own worker thread, started by daemon.ts. Touches shared
// memory only through BucketTable and the header fields named in layout.ts.
// The main thread tells it to stop with a message; it is never terminate()d
// while listening (that aborts the process).
//
// uWS rules followed here:
// - the ArrayBuffer of a message is valid only inside the handler (uWS
//   neuters it on return): the handler reads it through a Uint8Array view, not
//   a copy, synchronously, and keeps no reference to it;
// - sends from timers are corked (one syscall per connection per flush);
// - uWS drops a message above maxPayloadLength without a close code, so its
//   limit is set well above max_message_bytes and the size is checked here to
//   answer 1009;
// - the listen socket is kept and closed on stop;
// - a connection that lets more than max_backpressure_bytes pile up unread is
//   closed rather than buffered without bound (checked when send() reports
//   backpressure: it returns 1 only when nothing is left buffered).

import { parentPort, workerData } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { createLogger } from '../config/log.ts';
import {
  CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA, WS_PATH,
} from '../protocol/opcodes.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import { createClock } from '../shm/clock.ts';
import { KeyIndex } from '../shm/key-index.ts';
import { CONNECTIONS_INDEX, SHUTTING_DOWN_INDEX, viewsOf } from '../shm/layout.ts';
import { Authenticator } from './auth.ts';
import type { DaemonStats, IoWorkerData, MainToWorker, WorkerToMain } from './messages.ts';
import { renderMetrics } from './metrics.ts';
import type { Conn } from './conn.ts';
import { RequestHandler } from './request-handler.ts';
import { buildStatus } from './status.ts';

interface WsData { conn: Conn & { ws: uWS.WebSocket<WsData> | null } }
type WsConn = WsData['conn'];

const data = workerData as IoWorkerData;
let config = data.config;
const log = createLogger(config.log.level, `io-${data.thread}`);
const views = viewsOf(data.sab, data.bucketCount, data.threadCount);
const keys = KeyIndex.fromConfig(config);
const table = new BucketTable(views, createClock(data.epochHrMs), data.thread);
const isShuttingDown = () => Atomics.load(views.header, SHUTTING_DOWN_INDEX) === 1;
const status = () => buildStatus(config, keys, table, views, data.startedAtMs, data.thread, daemonStats?.cluster ?? null);
const post = (m: WorkerToMain) => parentPort!.postMessage(m);
const handler = new RequestHandler({
  config, keys, table, thread: data.thread, auth: new Authenticator(config.auth), status,
  shuttingDown: isShuttingDown,
  admin: (reqId, request) => post({ type: 'admin', reqId, request }),
});
/** The main thread's figures after its last tick (for /metrics); null before the first. */
let daemonStats: DaemonStats | null = null;

const open = new Set<WsConn>();
let nextConnId = 1;
let listenSocket: uWS.us_listen_socket | null = null;
let drainTimer: NodeJS.Timeout | null = null;
let flushTimer: NodeJS.Timeout | null = null;
let maxMessage = config.max_message_bytes;
let maxBackpressure = config.limits.max_backpressure_bytes;

/** uWS send status: the bytes went out, or into the cork buffer, with nothing left in backpressure. */
const SEND_SUCCESS = 1;

function sendOrClose(ws: uWS.WebSocket<WsData>, bytes: Uint8Array): void {
  // 0 (backpressure built up) or 2 (dropped: over uWS's own maxBackpressure) is when the buffer is worth a look.
  if (ws.send(bytes, true, false) !== SEND_SUCCESS && ws.getBufferedAmount() > maxBackpressure) {
    ws.end(CLOSE_POLICY_VIOLATION, 'client does not read its replies');
  }
}

/** Sends the deferred replies of every connection that has some. */
function flushDirty(): void {
  for (const conn of handler.dirty as Set<WsConn>) {
    const ws = conn.ws;
    const out = conn.out!;
    if (!conn.closed && ws !== null && out.length > 0) ws.cork(() => sendOrClose(ws, out.view()));
    out.reset();
  }
  handler.dirty.clear();
}

function drainTick(): void {
  drainTimer = null;
  const left = handler.drainWaiters();
  flushDirty();
  if (left > 0) scheduleDrain();
}

function scheduleDrain(): void {
  if (drainTimer === null && handler.waiters.size > 0) drainTimer = setTimeout(drainTick, 1);
}

/**
 * Tokens this thread holds in allowances (bucket-table.ts) go back at its next
 * acquire in a later millisecond; when no acquire comes, this timer gives them
 * back about a millisecond later, so an idle thread never sits on them.
 */
function scheduleAllowanceFlush(): void {
  if (flushTimer === null && table.holdsAllowances()) {
    flushTimer = setTimeout(() => { flushTimer = null; table.flushAllowances(table.nowMs()); }, 1);
  }
}

const expiryTimer = setInterval(() => {
  table.flushAllowances(table.nowMs());
  handler.expireLeases();
  if (handler.admin !== null && handler.admin.size > 0) { handler.expireAdmin(performance.now()); flushDirty(); }
  if (handler.waiters.size > 0) scheduleDrain();
}, Math.max(10, Math.min(100, config.lease_ttl_ms / 10)));

/**
 * Answers an HTTP request and closes the connection: these endpoints are
 * scraped every few seconds at most, and a keep-alive socket left open would
 * keep this thread from exiting at stop (uWS has no call that closes idle
 * HTTP sockets), until the daemon had to terminate() it.
 */
function httpJson(res: uWS.HttpResponse, code: string, type: string, body: string): void {
  res.cork(() => res.writeStatus(code).writeHeader('content-type', type).end(body, true));
}

const app = uWS.App();
app.ws<WsData>(WS_PATH, {
  compression: uWS.DISABLED,
  maxPayloadLength: Math.max(16 * 1024 * 1024, maxMessage * 2),
  idleTimeout: config.limits.idle_timeout_s,
  maxBackpressure: maxBackpressure * 2,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    if (isShuttingDown()) { res.writeStatus('503 Service Unavailable').end('shutting down'); return; }
    if (Atomics.load(views.header, CONNECTIONS_INDEX) >= config.limits.max_connections) {
      res.writeStatus('503 Service Unavailable').end('too many connections');
      return;
    }
    const conn: WsConn = { connId: nextConnId++, token: null, authFailures: 0, outstanding: 0, closed: false, out: null, name: null, ws: null };
    res.upgrade<WsData>({ conn }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => {
    const conn = ws.getUserData().conn;
    conn.ws = ws;
    open.add(conn);
    Atomics.add(views.header, CONNECTIONS_INDEX, 1);
  },
  message: (ws, message, isBinary) => {
    if (!isBinary) { ws.end(CLOSE_UNSUPPORTED_DATA, 'binary messages only'); return; }
    if (message.byteLength > maxMessage) { ws.end(CLOSE_MESSAGE_TOO_BIG, `message over ${maxMessage} bytes`); return; }
    const conn = ws.getUserData().conn;
    let close: number;
    try {
      // A view, not a copy: handleMessage is synchronous and keeps nothing of it (see the uWS rules above).
      close = handler.handleMessage(conn, new Uint8Array(message));
    } catch (err) {
      // A bug must cost one connection, never the thread (and with it every connection).
      log.error({ err, conn: conn.connId }, 'request handling failed; closing the connection');
      handler.out.reset();
      ws.end(CLOSE_INTERNAL_ERROR, 'internal error');
      return;
    }
    const out = handler.out;
    if (out.length > 0) { sendOrClose(ws, out.view()); out.reset(); }
    if (close !== 0) { ws.end(close, 'protocol error'); return; }
    if (handler.waiters.size > 0) scheduleDrain();
    scheduleAllowanceFlush();
  },
  close: (ws) => {
    const conn = ws.getUserData().conn;
    conn.ws = null;
    open.delete(conn);
    Atomics.sub(views.header, CONNECTIONS_INDEX, 1);
    handler.dropConnection(conn);
  },
});
app.get('/healthz', (res) => {
  if (isShuttingDown()) httpJson(res, '503 Service Unavailable', 'text/plain', 'shutting down\n');
  else httpJson(res, '200 OK', 'text/plain', 'ok\n');
});
app.get('/readyz', (res) => {
  if (isShuttingDown()) httpJson(res, '503 Service Unavailable', 'text/plain', 'shutting down\n');
  else httpJson(res, '200 OK', 'text/plain', 'ready\n');
});
app.get('/v1/status', (res) => httpJson(res, '200 OK', 'application/json', JSON.stringify(status())));
app.get('/metrics', (res) => {
  httpJson(res, '200 OK', 'text/plain; version=0.0.4; charset=utf-8', renderMetrics(status(), keys, views, daemonStats));
});
app.any('/*', (res, req) => {
  const path = req.getUrl();
  httpJson(res, '404 Not Found', 'text/plain', `no route ${path}; try /v1 (WebSocket), /healthz, /readyz, /metrics, /v1/status\n`);
});

app.listen(config.listen.host, data.port, (token) => {
  if (!token) {
    post({ type: 'listen-failed', message: `cannot listen on ${config.listen.host}:${data.port}` });
    return;
  }
  listenSocket = token;
  post({ type: 'listening', port: uWS.us_socket_local_port(token) });
});

function stop(): void {
  if (listenSocket) { uWS.us_listen_socket_close(listenSocket); listenSocket = null; }
  if (drainTimer) { clearTimeout(drainTimer); drainTimer = null; }
  if (flushTimer) { clearTimeout(flushTimer); flushTimer = null; }
  clearInterval(expiryTimer);
  table.flushAllowances(table.nowMs());
  handler.shutdownWaiters();
  flushDirty();
  const n = open.size;
  for (const conn of [...open]) conn.ws?.end(CLOSE_GOING_AWAY, 'server shutting down');
  log.debug({ connections: n }, 'I/O thread stopped');
  post({ type: 'stopped', connectionsClosed: n });
  parentPort!.close();
}

/**
 * A reloaded config (SIGHUP). The key set is the same (the main thread checks);
 * limits, auth, TTL and log level apply to new requests at once. uWS's own
 * socket options (idle timeout, payload cap) keep their start values.
 */
function reconfigure(next: typeof config): void {
  config = next;
  maxMessage = next.max_message_bytes;
  maxBackpressure = next.limits.max_backpressure_bytes;
  log.level = next.log.level;
  const auth = new Authenticator(next.auth);
  handler.reconfigure(next, auth);
  // A token removed or re-scoped by the reload takes effect on open connections too.
  for (const conn of open) if (conn.token !== null) conn.token = auth.check(conn.token.token);
}

parentPort!.on('message', (m: MainToWorker) => {
  if (m.type === 'stop') stop();
  else if (m.type === 'config') reconfigure(m.config);
  else if (m.type === 'admin-reply') { handler.answerAdmin(m.reqId, m.status, m.body); flushDirty(); }
  else if (m.type === 'daemon-stats') daemonStats = m.stats;
});
