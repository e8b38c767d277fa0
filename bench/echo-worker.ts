// Thread entry of the bare echo server (echo-server.ts): one uWS app that
// sends every binary WebSocket message on /v1 straight back. It is the
// transport floor of bench:compare: the same uWS build, socket options and
// framing as tpsd's I/O threads (src/io/io-worker.ts), and no work at all.
//
// Threads: one app per thread, all on the same port (SO_REUSEPORT, as tpsd).
// The message's ArrayBuffer is valid only inside the handler: send() copies
// it before returning. Stopped by a message from the main thread: the listen
// socket is closed and the connections ended, never terminate()d.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import uWS from 'uWebSockets.js';

export interface EchoWorkerData {
  readonly entry: string;
  readonly host: string;
  /** 0 for the first thread (any free port), then the port it got. */
  readonly port: number;
}

export type EchoWorkerMessage = { readonly type: 'listening'; readonly port: number } | { readonly type: 'failed' };

/** tpsd's defaults for the same options (config limits). */
const MAX_MESSAGE_BYTES = 65_536;
const MAX_BACKPRESSURE_BYTES = 4 * 1024 * 1024;
const IDLE_TIMEOUT_S = 120;

function main(data: EchoWorkerData): void {
  const open = new Set<uWS.WebSocket<unknown>>();
  const app = uWS.App();
  app.ws('/v1', {
    compression: uWS.DISABLED,
    maxPayloadLength: Math.max(16 * 1024 * 1024, MAX_MESSAGE_BYTES * 2),
    idleTimeout: IDLE_TIMEOUT_S,
    maxBackpressure: MAX_BACKPRESSURE_BYTES * 2,
    sendPingsAutomatically: true,
    open: (ws) => { open.add(ws); },
    message: (ws, message, isBinary) => { ws.send(message, isBinary, false); },
    close: (ws) => { open.delete(ws); },
  });
  app.get('/healthz', (res) => { res.end('ok\n'); });
  let listenSocket: uWS.us_listen_socket | null = null;
  app.listen(data.host, data.port, (token) => {
    if (!token) { parentPort!.postMessage({ type: 'failed' } satisfies EchoWorkerMessage); return; }
    listenSocket = token;
    parentPort!.postMessage({ type: 'listening', port: uWS.us_socket_local_port(token) } satisfies EchoWorkerMessage);
  });
  parentPort!.on('message', (m: { type: string }) => {
    if (m.type !== 'stop') return;
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    for (const ws of [...open]) ws.end(1001, 'echo server stopping');
    parentPort!.close();
  });
}

if (!isMainThread && parentPort) main(workerData as EchoWorkerData);
