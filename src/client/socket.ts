// Opening a WebSocket in Node or a browser. The implementation is chosen at
// connect time: an explicit option, else globalThis.WebSocket (browsers, Node
// >= 22), else the `ws` package (Node 20 has no global WebSocket by default).
// Only the handful of members both implementations share are used.

/** The part of the WebSocket API the client uses (browser WebSocket and `ws` both have it). */
export interface WireSocket {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: { message?: string; error?: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the TCP connection without a closing handshake. */
  terminate?(): void;
}

export type WebSocketCtor = new (url: string) => WireSocket;

let wsPackage: Promise<WebSocketCtor> | undefined;

export async function resolveWebSocket(explicit?: WebSocketCtor): Promise<WebSocketCtor> {
  if (explicit) return explicit;
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global === 'function') return global as WebSocketCtor;
  wsPackage ??= import(/* webpackIgnore: true */ 'ws').then((m) => {
    const mod = m as unknown as { default?: unknown; WebSocket?: unknown };
    return (mod.WebSocket ?? mod.default) as WebSocketCtor;
  });
  return wsPackage;
}

/** Closes at once: `terminate()` where there is one, else a normal close. */
export function abortSocket(ws: WireSocket): void {
  try {
    if (typeof ws.terminate === 'function') ws.terminate();
    else ws.close();
  } catch {
    // already closed
  }
}

/**
 * Opens a socket to `url` with binaryType 'arraybuffer'. Rejects with a
 * readable reason on error, close, timeout or abort (`signal`).
 */
export function openSocket(Impl: WebSocketCtor, url: string, timeoutMs: number, signal?: AbortSignal): Promise<WireSocket> {
  return new Promise((resolve, reject) => {
    let ws: WireSocket;
    try {
      ws = new Impl(url);
      ws.binaryType = 'arraybuffer';
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.onopen = null;
      if (err) {
        ws.onerror = () => {};
        ws.onclose = null;
        abortSocket(ws);
        reject(err);
      } else {
        resolve(ws);
      }
    };
    const onAbort = (): void => finish(new Error('aborted'));
    const timer = setTimeout(() => finish(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted) onAbort();
    ws.onopen = () => finish(null);
    ws.onerror = (ev) => finish(new Error(ev?.message || 'WebSocket error'));
    ws.onclose = (ev) => finish(new Error(`closed by the server (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`));
  });
}
