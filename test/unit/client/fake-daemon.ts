// A stand-in for the daemon's WebSocket endpoint (a `ws` server on port 0),
// for unit tests of the client's transport: it records every raw message,
// decodes requests, and answers through a replaceable handler. Replies to one
// message are sent together in one message, in the order the handler returns.

import { WebSocketServer, type WebSocket } from 'ws';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';

export type Request = unknown[];
/** Returns the replies to a request (none, one or several), or a Promise of them. */
export type Handler = (req: Request, ws: WebSocket) => unknown[][] | Promise<unknown[][]>;

export interface FakeDaemon {
  port: number;
  url: string;
  /** Every binary message received, as decoded requests (one array per message). */
  messages: Request[][];
  handler: Handler;
  /** Reverses the reply order within each message (to test out-of-order matching). */
  reverse: boolean;
  sockets: Set<WebSocket>;
  /** Drops every connection without a closing handshake. */
  dropAll(): void;
  close(): Promise<void>;
}

let nextLease = 1;

export const defaultHandler: Handler = (req) => {
  const [op, id] = req as [number, number];
  switch (op) {
    case 0: return [[0, id, 0, { v: 1, server: 'fake', tick_ms: 100 }]];
    case 1: return [[1, id, 0, nextLease++, 7]];
    case 2: return id === 0 ? [] : [[2, id, 0]];
    case 3: return [[3, id, 0, { keys: [], mode: 'static' }]];
    default: return [[op, id, 16, 'unknown op']];
  }
};

export function encodeReplies(replies: unknown[][]): Uint8Array {
  const w = new MsgWriter();
  for (const r of replies) w.value(r);
  return w.take();
}

export async function startFakeDaemon(port = 0): Promise<FakeDaemon> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/v1' });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const address = wss.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const fake: FakeDaemon = {
    port: actualPort,
    url: `ws://127.0.0.1:${actualPort}`,
    messages: [],
    handler: defaultHandler,
    reverse: false,
    sockets: new Set(),
    dropAll() {
      for (const ws of fake.sockets) ws.terminate();
    },
    close() {
      fake.dropAll();
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
  wss.on('connection', (ws) => {
    fake.sockets.add(ws);
    ws.on('close', () => fake.sockets.delete(ws));
    ws.on('message', async (data: Buffer) => {
      const requests = decodeAll(new Uint8Array(data)) as Request[];
      fake.messages.push(requests);
      const replies: unknown[][] = [];
      for (const req of requests) replies.push(...(await fake.handler(req, ws)));
      if (fake.reverse) replies.reverse();
      if (replies.length > 0 && ws.readyState === ws.OPEN) ws.send(encodeReplies(replies));
    });
  });
  return fake;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms until true or `timeoutMs` passes. */
export async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('waitFor: condition not met in time');
    await sleep(5);
  }
}
