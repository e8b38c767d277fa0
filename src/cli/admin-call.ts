// One admin request to a running daemon, for CLI verbs: opens a WebSocket,
// sends HELLO (with the token, if any) and the request in one message (the
// protocol allows pipelining), waits for the request's reply, closes.

import WebSocket from 'ws';
import { normalizeUrl } from '../client/options.ts';
import { CodedError } from '../protocol/coded-error.ts';
import { errorCodeName } from '../protocol/errors.ts';
import { MsgWriter, decodeAll } from '../protocol/codec.ts';
import { OP_HELLO, PROTOCOL_VERSION } from '../protocol/opcodes.ts';
import type { FlagSpec } from './args.ts';
import { DEFAULT_URL } from './status.ts';

/** The daemon answered with an error status; `code` is the protocol's number. */
/** The flags of every admin verb (limits, tenants, approvals): which daemon, the admin token, JSON output. */
export const ADMIN_FLAGS = {
  url: { type: 'string', value: 'URL', help: `the daemon (default ${DEFAULT_URL})` },
  token: { type: 'string', value: 'TOKEN', help: 'an admin token when auth is on (default: $TPSD_TOKEN)' },
  json: { type: 'boolean', help: 'print the daemon\'s answer as JSON' },
} satisfies Record<string, FlagSpec>;

export class DaemonError extends CodedError {
  constructor(override readonly code: number, message: string) {
    super(`${errorCodeName(code)} (${code}): ${message}`);
    this.name = 'DaemonError';
  }
}

/** The daemon could not be reached, or closed the connection before answering. */
export class UnreachableError extends CodedError {
  override readonly code = 'TPSD_CLI_UNREACHABLE';
  constructor(message: string) { super(message); this.name = 'UnreachableError'; }
}

const HELLO_ID = 1;
const REQUEST_ID = 2;

/** Sends `[op, id, ...args]` after HELLO; resolves with the reply's values after the status. */
export function adminCall(url: string, op: number, args: unknown[], options: { token?: string; name: string; timeoutMs: number }): Promise<unknown[]> {
  let target: string;
  try { target = normalizeUrl(url); } catch (err) { return Promise.reject(new UnreachableError((err as Error).message)); }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, { handshakeTimeout: options.timeoutMs });
    ws.binaryType = 'nodebuffer';
    let settled = false;
    const finish = (err: Error | null, value?: unknown[]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.close();
      if (err) reject(err); else resolve(value!);
    };
    const timer = setTimeout(() => finish(new UnreachableError(`no answer from ${target} within ${options.timeoutMs} ms`)), options.timeoutMs);
    ws.on('open', () => {
      const hello: Record<string, unknown> = { v: PROTOCOL_VERSION, name: options.name };
      if (options.token !== undefined) hello.token = options.token;
      const w = new MsgWriter();
      w.value([OP_HELLO, HELLO_ID, hello]);
      w.value([op, REQUEST_ID, ...args]);
      ws.send(w.take(), { binary: true });
    });
    ws.on('message', (data: Buffer) => {
      let values: unknown[];
      try { values = decodeAll(new Uint8Array(data)); } catch (err) { finish(err as Error); return; }
      for (const v of values) {
        if (!Array.isArray(v)) continue;
        const [, id, status] = v as [number, number, number];
        if (id === HELLO_ID && status !== 0) { finish(new DaemonError(status, String(v[3]))); return; }
        if (id !== REQUEST_ID) continue;
        if (status !== 0) finish(new DaemonError(status, String(v[3])));
        else finish(null, v.slice(3));
        return;
      }
    });
    ws.on('error', (err) => finish(new UnreachableError(`${target}: ${err.message}`)));
    ws.on('close', (code, reason) => finish(new UnreachableError(`${target} closed the connection (${code}${reason.length ? ` ${reason}` : ''})`)));
  });
}
