// An I/O worker thread: one uWS app serving protocol v1 on /v1 and the HTTP
// endpoints (the HTTP/JSON calls POST /v1/acquire and /v1/release in
// http-api.ts), on the port every I/O thread shares (SO_REUSEPORT; the kernel
// spreads connections over the threads).
//
// Threads: runs in its own worker thread, started by daemon.ts. Touches shared
// memory only through BucketTable and the header fields named in layout.ts.
// It stops at the main thread's 'stop' message, or as soon as a message it is
// answering sees the shared SHUTTING_DOWN flag (read every 16 requests), so
// a busy thread stops within a few requests. It is never terminate()d: a worker
// torn down while uWS holds a socket (listening or not) aborts the whole
// process. So stop() closes the listen socket, ends every connection (1001),
// says 'stopped' (its counters are final), and after a grace for the close
// handshakes closes every socket still open (app.close(): sockets of clients
// that do not answer the close frame, idle or half-sent HTTP requests), so
// the thread's loop empties and it exits by itself.
//
// uWS rules followed here:
// - the ArrayBuffer of a message is valid only inside the handler (uWS
//   neuters it on return): the handler reads it through a Uint8Array view, not
//   a copy, synchronously, and keeps no reference to it;
// - sends from timers are corked (one syscall per connection per flush);
// - uWS cuts a message above maxPayloadLength at its frame header, closing
//   the TCP connection without a close frame (the client sees 1006), and no
//   hook runs before it; so its limit is MAX_FRAME_BYTES, far above any
//   max_message_bytes, and the size is checked here to answer 1009. The cost:
//   uWS buffers a message up to that size before this handler sees it (as
//   fast as the client sends it: a frame header reserves address space, not
//   memory). Only a frame announcing more than MAX_FRAME_BYTES is still cut
//   with 1006;
// - the listen socket is kept and closed on stop;
// - replies are bounded per connection by max_backpressure_bytes: a message's
//   replies may take what the connection has not used of it (one
//   getBufferedAmount per message; per request the handler only compares); at
//   the reply that would pass it, the message ends: the replies before it are
//   sent, the connection is closed with 1008, the requests after it are not
//   handled. A later send that leaves more than that unread closes with 1008
//   too (send() returns 1 only when nothing is left buffered);
// - the writers shrink back after a big message (codec.ts MsgWriter.reset).

import { parentPort, workerData } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { createLogger } from '../config/log.ts';
import {
  CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA, WS_PATH,
} from '../protocol/opcodes.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import { createClock } from '../shm/clock.ts';
import { FailureTable } from '../shm/failure-table.ts';
import { KeyIndex } from '../shm/key-index.ts';
import { HintBoard } from '../shm/hint-board.ts';
import { CONNECTIONS_INDEX, SHUTTING_DOWN_INDEX, viewsOf } from '../shm/layout.ts';
import { Authenticator, keyVisible, type ScopedToken } from './auth.ts';
import { HttpApi } from './http-api.ts';
import { httpCaller, metricsCaller } from './http-auth.ts';
import { HttpExchange } from './http-exchange.ts';
import type { DaemonHealth, DaemonStats, IoWorkerData, MainToWorker, WorkerToMain } from './messages.ts';
import { renderMetrics } from './metrics.ts';
import type { Conn } from './conn.ts';
import { RelayLinks } from './relay-links.ts';
import { RequestHandler } from './request-handler.ts';
import { TenantKeys } from './tenant-keys.ts';
import { TenantTable } from '../shm/tenant-table.ts';
import { TenantCounters, tenantCounterViews } from '../shm/tenant-counters.ts';
import type { RlsServer } from './rls/rls-server.ts';
import { buildStatus } from './status.ts';

interface WsData { conn: Conn & { ws: uWS.WebSocket<WsData> | null } }
type WsConn = WsData['conn'];

const data = workerData as IoWorkerData;
let config = data.config;
const log = createLogger(config.log.level, `io-${data.thread}`);
const views = viewsOf(data.sab, data.bucketCount, data.threadCount, data.tenantSlots ?? 0);
const keys = data.keys === undefined ? KeyIndex.fromConfig(config) : KeyIndex.fromShared(data.keys);
const clock = createClock(data.epochHrMs);
const table = new BucketTable(views, clock, data.thread);
/** Tenant keys (services with `tenants`): their slots are shared, the tier assignments this thread's copy. */
const tenantCounters = data.tenantCounters == null ? null
  : new TenantCounters(tenantCounterViews(data.tenantCounters, data.tenantSlots ?? 0, data.threadCount), data.thread);
const tenants = keys.hasTenants ? new TenantKeys(keys, new TenantTable(views), tenantCounters) : null;
for (const a of data.tenantTiers ?? []) tenants?.applyTier(a.service, a.name, a.tier, table.nowMs());
/** Failed authentications per client address, shared with every I/O thread. */
const failures = new FailureTable(views, clock);
/** The token check in force (replaced on reload). */
let auth = new Authenticator(config.auth, failures);
const isShuttingDown = () => Atomics.load(views.header, SHUTTING_DOWN_INDEX) === 1;
const status = (viewer: ScopedToken | null = null) =>
  buildStatus(config, keys, table, views, data.startedAtMs, data.thread, viewer, daemonHealth.policy, daemonStats?.cluster ?? null,
    daemonStats?.drift ?? null, daemonStats?.tenantGuard ?? null);
const post = (m: WorkerToMain) => parentPort!.postMessage(m);
const handler = new RequestHandler({
  config, keys, table, thread: data.thread, auth, status,
  shuttingDown: isShuttingDown,
  admin: (reqId, request) => post({ type: 'admin', reqId, request }),
  hints: new HintBoard(views),
  tenants,
});
const httpApi = new HttpApi({
  handler, config, thread: data.thread, threadCount: data.threadCount, shuttingDown: isShuttingDown, log,
  afterRequest: () => { if (handler.waiters.size > 0) scheduleDrain(); scheduleAllowanceFlush(); },
  relay: (to, relay) => relayLinks.send(to, relay),
});
const relayLinks = new RelayLinks(data.relayPorts, (relay) => httpApi.onRelay(relay));
/**
 * Envoy's rate limit service (gRPC): on thread 0 only, see rls/rls-server.ts.
 * Imported only then: gRPC and its proto loader are about 15 MiB of RSS in each thread that loads them.
 */
const rls: RlsServer | null = data.thread === 0 && config.rls !== null
  ? new (await import('./rls/rls-server.ts')).RlsServer({ handler, table, keys, afterRequest: () => scheduleAllowanceFlush() }, config, log) : null;
/** The main thread's figures after its last tick (for /metrics); null before the first. */
let daemonStats: DaemonStats | null = null;
/** The main thread's view of the daemon's health (/readyz, STATUS): the start's until the first tick. */
let daemonHealth: DaemonHealth = { telemetryProblem: null, policy: data.policy };

const open = new Set<WsConn>();
let nextConnId = 1;
let listenSocket: uWS.us_listen_socket | null = null;
let stopping = false;
let drainTimer: NodeJS.Timeout | null = null;
let flushTimer: NodeJS.Timeout | null = null;
let windowTimer: NodeJS.Timeout | null = null;
let maxMessage = config.max_message_bytes;
let maxBackpressure = config.limits.max_backpressure_bytes;

/** uWS send status: the bytes went out, or into the cork buffer, with nothing left in backpressure. */
const SEND_SUCCESS = 1;
/** At stop, how long clients have to answer the close frame before every socket left is closed. */
const CLOSE_GRACE_MS = 500;
/**
 * uWS's maxPayloadLength: every message up to this size reaches the handler
 * and is closed with 1009 when over max_message_bytes (at most 16 MiB). uWS
 * reserves a frame's announced size up front (address space only), so it
 * stays small enough for any host to reserve, and one connection can make
 * the daemon hold at most this much of a message it will refuse.
 */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;

function sendOrClose(ws: uWS.WebSocket<WsData>, bytes: Uint8Array): void {
  // 0 (backpressure built up) or 2 (dropped: over uWS's own maxBackpressure) is when the buffer is worth a look.
  if (ws.send(bytes, true, false) !== SEND_SUCCESS && ws.getBufferedAmount() > maxBackpressure) {
    ws.end(CLOSE_POLICY_VIOLATION, 'client does not read its replies');
  }
}

/** Sends the deferred replies of every connection that has some. */
function flushDirty(): void {
  for (const conn of handler.dirty as Set<WsConn>) {
    if (conn instanceof HttpExchange) { httpApi.deliver(conn); continue; }
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
  scheduleAllowanceFlush();
}

function scheduleDrain(): void {
  if (drainTimer === null && handler.waiters.size > 0) drainTimer = setTimeout(drainTick, 1);
}

/**
 * Tokens this thread holds in allowances (bucket-table.ts) go back at its next
 * acquire in a later millisecond; when no acquire comes, this timer gives them
 * back about a millisecond later, so an idle thread never sits on them. Its
 * takes on a pool's window gate come back a second after they were made, at
 * its next acquire or here (window-rings.ts): the timer is set for the first
 * that is due, at least 10 ms on, and set again after each flush.
 */
function scheduleAllowanceFlush(): void {
  if (flushTimer === null && table.holdsAllowances()) flushTimer = setTimeout(flushAllowances, 1);
  if (windowTimer === null) {
    const inMs = table.windowReturnInMs(table.nowMs());
    if (inMs >= 0) windowTimer = setTimeout(returnWindowTakes, Math.max(10, inMs + 1));
  }
}

function flushAllowances(): void {
  flushTimer = null;
  table.flushAllowances(table.nowMs());
}

function returnWindowTakes(): void {
  windowTimer = null;
  table.flushAllowances(table.nowMs());
  scheduleAllowanceFlush();
}

const expiryTimer = setInterval(() => {
  table.flushAllowances(table.nowMs());
  handler.expireLeases();
  if (handler.admin !== null && handler.admin.size > 0) { handler.expireAdmin(performance.now()); flushDirty(); }
  if (handler.waiters.size > 0) scheduleDrain();
}, Math.max(10, Math.min(100, config.lease_ttl_ms / 10)));

/**
 * Answers an HTTP request and closes the connection: these endpoints are
 * scraped every few seconds at most. Idle keep-alive sockets (the HTTP/JSON
 * API keeps them) are closed at stop by closeAllSockets() (uWS closes idle
 * HTTP sockets only with the whole app).
 */
function httpJson(res: uWS.HttpResponse, code: string, type: string, body: string): void {
  res.cork(() => res.writeStatus(code).writeHeader('content-type', type).end(body, true));
}

const app = uWS.App();
app.ws<WsData>(WS_PATH, {
  compression: uWS.DISABLED,
  maxPayloadLength: Math.max(MAX_FRAME_BYTES, maxMessage + 1),
  idleTimeout: config.limits.idle_timeout_s,
  maxBackpressure: maxBackpressure * 2,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    if (isShuttingDown()) { res.writeStatus('503 Service Unavailable').end('shutting down'); return; }
    if (Atomics.load(views.header, CONNECTIONS_INDEX) >= config.limits.max_connections) {
      res.writeStatus('503 Service Unavailable').end('too many connections');
      return;
    }
    const conn: WsConn = {
      connId: nextConnId++, token: null, authFailures: 0, peer: auth.peerOf(res.getRemoteAddressAsText()),
      outstanding: 0, closed: false, out: null, name: null, ws: null,
    };
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
      close = handler.handleMessage(conn, new Uint8Array(message), maxBackpressure - ws.getBufferedAmount());
    } catch (err) {
      // A bug must cost one connection, never the thread (and with it every connection).
      log.error({ err, conn: conn.connId }, 'request handling failed; closing the connection');
      handler.out.reset();
      ws.end(CLOSE_INTERNAL_ERROR, 'internal error');
      return;
    }
    const out = handler.out;
    if (handler.overBudget) {
      // The replies that fit go out (their grants can be released); the one that passed the budget does not.
      if (handler.fitBytes > 0) ws.send(out.view().subarray(0, handler.fitBytes), true, false);
      out.reset();
      ws.end(CLOSE_POLICY_VIOLATION, 'replies over limits.max_backpressure_bytes');
      return;
    }
    if (out.length > 0) { sendOrClose(ws, out.view()); out.reset(); }
    if (close === CLOSE_GOING_AWAY) { stop(); return; } // the daemon is stopping: stop() ends this connection too
    if (close !== 0 && !conn.closed) { ws.end(close, 'protocol error'); return; }
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
httpApi.register(app);
app.get('/healthz', (res) => {
  if (isShuttingDown()) httpJson(res, '503 Service Unavailable', 'text/plain', 'shutting down\n');
  else httpJson(res, '200 OK', 'text/plain', 'ok\n');
});
// Readiness: 503 while stopping or while telemetry cannot be written (the reason in the body); a policy that is
// not the one the mode asks for is said in the body, still 200 (the daemon limits as it should, with fair).
app.get('/readyz', (res) => {
  if (isShuttingDown()) { httpJson(res, '503 Service Unavailable', 'text/plain', 'shutting down\n'); return; }
  const { telemetryProblem, policy } = daemonHealth;
  const policyLine = policy.fallbackReason === null ? '' : `policy mode ${policy.mode} configured, ${policy.running} applies: ${policy.fallbackReason}\n`;
  if (telemetryProblem !== null) httpJson(res, '503 Service Unavailable', 'text/plain', `not ready: ${telemetryProblem}\n${policyLine}`);
  else httpJson(res, '200 OK', 'text/plain', `ready\n${policyLine}`);
});
// With auth on: /v1/* and /metrics need a bearer token (not /metrics with metrics_open); a scoped token sees its keys (http-auth.ts).
app.get('/v1/status', (res, req) => {
  const caller = httpCaller(res, req, auth);
  if (caller !== null) httpJson(res, '200 OK', 'application/json', JSON.stringify(status(caller)));
});
app.get('/metrics', (res, req) => {
  const caller = metricsCaller(res, req, auth);
  if (caller === null) return;
  const body = renderMetrics(status(), keys, views, daemonStats, (key) => keyVisible(caller, key));
  httpJson(res, '200 OK', 'text/plain; version=0.0.4; charset=utf-8', body);
});
app.any('/*', (res, req) => {
  const path = req.getUrl();
  if (path.startsWith('/v1/') && httpCaller(res, req, auth) === null) return;
  httpJson(res, '404 Not Found', 'text/plain', `no route ${path}; try /v1 (WebSocket), /healthz, /readyz, /metrics, /v1/status\n`);
});

app.listen(config.listen.host, data.port, (token) => {
  if (!token) {
    post({ type: 'listen-failed', message: `cannot listen on ${config.listen.host}:${data.port}` });
    return;
  }
  listenSocket = token;
  const port = uWS.us_socket_local_port(token);
  if (rls === null) { post({ type: 'listening', port }); return; }
  rls.start().then(() => post({ type: 'listening', port }), (err: Error) => post({
    type: 'listen-failed', message: err.message, host: config.rls!.host, port: config.rls!.port, reason: `rls: ${err.message}`,
  }));
});

/**
 * Stops serving (see the header): at the main thread's 'stop', or when a
 * message being answered sees the SHUTTING_DOWN flag. May run inside a uWS
 * handler; the sockets left are closed from a timer, outside any handler.
 */
function stop(): void {
  if (stopping) return;
  stopping = true;
  if (listenSocket) { uWS.us_listen_socket_close(listenSocket); listenSocket = null; }
  if (drainTimer) { clearTimeout(drainTimer); drainTimer = null; }
  if (flushTimer) { clearTimeout(flushTimer); flushTimer = null; }
  if (windowTimer) { clearTimeout(windowTimer); windowTimer = null; }
  clearInterval(expiryTimer);
  table.flushAllowances(table.nowMs());
  httpApi.stop();
  relayLinks.close();
  rls?.stop();
  handler.shutdownWaiters();
  flushDirty();
  const n = open.size;
  for (const conn of [...open]) conn.ws?.end(CLOSE_GOING_AWAY, 'server shutting down');
  log.debug({ connections: n }, 'I/O thread stopped');
  // Nothing more is counted here: the main thread may write its last tick now.
  post({ type: 'stopped', connectionsClosed: n });
  setTimeout(closeAllSockets, n > 0 ? CLOSE_GRACE_MS : 0);
}

/** Closes every socket uWS still holds, so the thread's loop is empty and it exits (never terminate()d). */
function closeAllSockets(): void {
  // app.close() (closes every socket of the app, listening or not) is in this uWS build but not in its types.
  const closable = app as unknown as { close?: () => void };
  if (typeof closable.close === 'function') closable.close();
  else log.warn('this uWebSockets.js has no app.close(); sockets still closing keep this thread alive until they end');
  parentPort!.close();
}

/**
 * A reloaded config (SIGHUP). The key set is the same (the main thread checks);
 * limits, auth, TTL and log level apply to new requests at once. uWS's own
 * socket options (idle timeout, payload cap) keep their start values.
 */
function reconfigure(next: typeof config, dryRun: Uint8Array | null): void {
  config = next;
  maxMessage = next.max_message_bytes;
  maxBackpressure = next.limits.max_backpressure_bytes;
  log.level = next.log.level;
  auth = new Authenticator(next.auth, failures);
  handler.reconfigure(next, auth, dryRun);
  httpApi.reconfigure(next);
  rls?.reconfigure(next);
  // A token removed or re-scoped by the reload takes effect on open connections too.
  for (const conn of open) if (conn.token !== null) conn.token = auth.check(conn.token.token);
}

parentPort!.on('message', (m: MainToWorker) => {
  if (m.type === 'stop') stop();
  else if (m.type === 'config') reconfigure(m.config, m.dryRun);
  else if (m.type === 'admin-reply') { handler.answerAdmin(m.reqId, m.status, m.body); flushDirty(); }
  else if (m.type === 'daemon-stats') { daemonStats = m.stats; daemonHealth = m.health; }
  else if (m.type === 'tenant-tier') tenants?.applyTier(m.service, m.name, m.tier, table.nowMs());
  else if (m.type === 'tier-rates') tenants?.setTierRates(m.tiers, table.nowMs());
});
