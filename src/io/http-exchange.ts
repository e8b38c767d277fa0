// One HTTP/JSON call (POST /v1/acquire or /v1/release) as the RequestHandler
// sees it: a Conn like a WebSocket connection's, holding the one request the
// call became. Its replies come back either at once (in the handler's `out`)
// or later, for a waiting acquire, in its own `out`, with the exchange put on
// the handler's `dirty` set like any connection; the worker's flush hands it
// to HttpApi.deliver, which answers the HTTP request.
//
// Threads: made and used only by the I/O thread that received the call (or,
// for a RELEASE relayed from another thread, by the thread holding the lease;
// `res` is then null and the reply goes back by message).

import type uWS from 'uWebSockets.js';
import { CallerConn, type Caller } from './caller.ts';
import type { HttpCall } from './http-codec.ts';

export class HttpExchange extends CallerConn {
  /** The client aborted (uWS onAborted): `res` must not be touched again. */
  aborted = false;
  /** An answer was written (or the exchange was given up): later replies are dropped. */
  answered = false;
  /** Body bytes seen so far, kept up to the cap (chunks are copied: uWS reuses their memory). */
  bodyBytes = 0;
  chunks: Uint8Array[] | null = null;

  constructor(
    /** null: a RELEASE relayed from another I/O thread (answered by message, not by HTTP). */
    readonly res: uWS.HttpResponse | null,
    readonly call: HttpCall,
    caller: Caller,
    /** The bearer secret presented (a relayed RELEASE is checked again on the thread holding the lease). */
    readonly secret: string | null,
  ) {
    super(caller, 'http');
  }
}
