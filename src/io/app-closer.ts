// Closes an I/O thread's uWS app at stop, so that idle keep-alive HTTP
// sockets (the HTTP/JSON API keeps them open, http-api.ts) cannot keep the
// thread alive until the main thread has to terminate() it. uWS has no call
// that closes idle HTTP sockets one by one, and this build's typings do not
// list TemplatedApp.close(), but the native app has it: it closes the listen
// socket and every socket of the app at once, calling onAborted on the
// responses still open. It is called only after the WebSockets ended
// gracefully (their close frames flushed and answered) or after a grace
// period, so the WebSocket clients still see 1001 GOING_AWAY.
//
// Threads: one per I/O thread, used only by it (io-worker.ts stop() and its
// WebSocket close handler).

import type uWS from 'uWebSockets.js';

/** How long WebSockets told to close may take before the app closes them hard. */
const WS_CLOSE_GRACE_MS = 1000;

export class AppCloser {
  private armed = false;
  private closed = false;

  constructor(private readonly app: uWS.TemplatedApp) {}

  /** At stop, after the WebSockets were told to close: closes the app once `openWebSockets` is 0, or after the grace period. */
  arm(openWebSockets: number): void {
    this.armed = true;
    if (openWebSockets === 0) { this.close(); return; }
    // Unref'd: when every socket is gone before it fires, the thread exits without waiting.
    setTimeout(() => this.close(), WS_CLOSE_GRACE_MS).unref();
  }

  /** A WebSocket closed; `openWebSockets` are left. */
  wsClosed(openWebSockets: number): void {
    if (this.armed && openWebSockets === 0) this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    (this.app as unknown as { close?: () => void }).close?.();
  }
}
