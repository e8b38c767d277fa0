// Bearer tokens on the HTTP side of the port (PROTOCOL.md, HTTP/JSON): with
// auth on, every /v1/* call needs `Authorization: Bearer TOKEN`, and so does
// /metrics unless auth.metrics_open; /healthz and /readyz never do. A
// request that fails is answered here, in the protocol's JSON error shape,
// and a wrong token counts against the client's address like a failed HELLO
// (an address over its limit is refused without looking at the token).
//
// Threads: called by the I/O thread serving the request, synchronously
// inside the uWS handler (uWS's HttpRequest is valid only there).
//
// /metrics and scoped tokens: any valid token may scrape it; a scoped
// token's exposition leaves out the keys it may not use, as its STATUS does
// (give Prometheus an admin token, or a token without a key list, or set
// metrics_open, to scrape every key). See docs/security.md.

import type uWS from 'uWebSockets.js';
import { ErrorCode } from '../protocol/errors.ts';
import type { Authenticator, ScopedToken } from './auth.ts';
import { BLOCKED_MESSAGE } from './hello.ts';

/** Who may see everything when auth is off. */
export const AUTH_OFF: ScopedToken = Object.freeze({ token: '', keys: [], admin: true, everyKey: true, segments: [] });

const BEARER = /^bearer[ \t]+([^\s]+)[ \t]*$/i;

/** An error in the protocol's JSON shape: `{code, error, message}`; closes the connection like every HTTP answer here. */
export function httpError(res: uWS.HttpResponse, status: string, code: number, error: string, message: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    if (status.startsWith('401')) res.writeHeader('www-authenticate', 'Bearer realm="tpsd"');
    res.end(JSON.stringify({ code, error, message }), true);
  });
}

function unauthorized(res: uWS.HttpResponse, status: string, message: string): null {
  httpError(res, status, ErrorCode.UNAUTHORIZED, 'UNAUTHORIZED', message);
  return null;
}

/**
 * The caller of an HTTP request: AUTH_OFF when auth is off, else the token
 * of its `Authorization: Bearer` header; null when it has none that is valid
 * (a 401 is then written). A token that was presented and is wrong counts as
 * a failed authentication of the client's address; no header at all does
 * not (it is how an HTTP client learns it must authenticate).
 */
export function httpCaller(res: uWS.HttpResponse, req: uWS.HttpRequest, auth: Authenticator): ScopedToken | null {
  if (!auth.enabled) return AUTH_OFF;
  const header = req.getHeader('authorization');
  const peer = auth.peerOf(res.getRemoteAddressAsText());
  if (auth.blocked(peer)) return unauthorized(res, '401 Unauthorized', BLOCKED_MESSAGE);
  if (header === '') return unauthorized(res, '401 Unauthorized', 'this server needs an Authorization: Bearer TOKEN header');
  const m = BEARER.exec(header);
  const token = m === null ? null : auth.check(m[1]);
  if (token === null) {
    auth.countFailure(peer);
    return unauthorized(res, '401 Unauthorized', m === null ? 'the Authorization header must be "Bearer TOKEN"' : 'invalid token');
  }
  return token;
}

/** Who GET /metrics is served to (AUTH_OFF with auth off or metrics_open); null when its 401 is written. */
export function metricsCaller(res: uWS.HttpResponse, req: uWS.HttpRequest, auth: Authenticator): ScopedToken | null {
  if (!auth.enabled || auth.metricsOpen) return AUTH_OFF;
  return httpCaller(res, req, auth);
}
