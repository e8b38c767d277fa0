// The HTTP/JSON connection of the load generator (client "http"): one
// keep-alive HTTP/1.1 connection over node:net per lane, sending
// `POST /v1/acquire` requests built once per key (only the bytes are
// written per send) and reading the answers without a full HTTP parser:
// status line, Content-Length, and the JSON body only for an error's code.
// 200 is a grant, 429 a denial, any other status an error under its
// protocol code (or "http NNN" when the body has none).
//
// A message of the load loop is `batch` requests written back to back;
// with `pipeline` > 1 several messages are in flight on the connection
// (HTTP/1.1 pipelining: tpsd answers an acquire with wait_ms 0 inside the
// request's own callback, so answers come back in order; a request that
// waited would not, and is never sent here). Answers arrive in request
// order, so a FIFO of messages matches them.
//
// Single-threaded: owned by one load worker thread.

import net from 'node:net';
import type { Lane, LaneSink } from './engine.ts';
import type { LoadSpec } from './spec.ts';

const OPEN_TIMEOUT_MS = 10_000;
const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)/i;
const ERROR_CODE = /"code":(\d+)/;

/** The request bytes for each key. */
function buildRequests(spec: LoadSpec, host: string): Buffer[] {
  const auth = spec.token === null ? '' : `Authorization: Bearer ${spec.token}\r\n`;
  return spec.keys.map((key) => {
    const body = JSON.stringify({ key, tokens: 1, wait_ms: 0 });
    return Buffer.from(`POST /v1/acquire HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n${auth}`
      + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

/** Decision status of an answer: 0 granted, 1 denied, else the protocol code (or -1000 - HTTP status). */
function statusOf(http: number, body: Buffer): number {
  if (http === 200) return 0;
  if (http === 429) return 1;
  const m = ERROR_CODE.exec(body.toString('latin1'));
  return m !== null ? Number(m[1]) : -1000 - http;
}

/** Reads answers out of the byte stream; calls `onAnswer(status)` for each whole one. */
class AnswerReader {
  private buf: Buffer | null = null;

  constructor(private readonly onAnswer: (status: number) => void) {}

  /** False when the stream is not HTTP this reader understands. */
  push(chunk: Buffer): boolean {
    let buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    for (;;) {
      const end = buf.indexOf(HEADER_END, pos);
      if (end < 0) break;
      const head = buf.toString('latin1', pos, end);
      const len = CONTENT_LENGTH.exec(head);
      if (!head.startsWith('HTTP/1.1 ') || len === null) return false;
      const bodyStart = end + HEADER_END.length;
      const bodyEnd = bodyStart + Number(len[1]);
      if (bodyEnd > buf.length) break;
      this.onAnswer(statusOf(Number(head.slice(9, 12)), buf.subarray(bodyStart, bodyEnd)));
      pos = bodyEnd;
    }
    buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
    this.buf = buf.length === 0 ? null : Buffer.from(buf);
    return true;
  }
}

function connect(url: URL): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 80), noDelay: true });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no connection to ${url.host} within ${OPEN_TIMEOUT_MS} ms`)); }, OPEN_TIMEOUT_MS);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

export async function openHttpLane(spec: LoadSpec, index: number, sink: LaneSink): Promise<Lane> {
  const url = new URL(spec.url);
  const socket = await connect(url);
  const requests = buildRequests(spec, url.host);
  // Messages in flight, oldest first (a ring: the engine keeps at most `pipeline` in flight).
  const ring = spec.pipeline;
  const intended = new Float64Array(ring);
  const due = new Int32Array(ring);
  let head = 0;
  let count = 0;
  let closing = false;
  let cursor = index * spec.batch;

  const reader = new AnswerReader((status) => {
    if (count === 0) { sink.failures(performance.now(), 'an answer to no request', 1); return; }
    sink.replies(intended[head], status, 1);
    if (--due[head] === 0) {
      head = (head + 1) % ring;
      count--;
      sink.complete();
    }
  });
  socket.on('data', (chunk: Buffer) => {
    if (reader.push(chunk)) return;
    sink.failures(performance.now(), 'malformed HTTP answer', 1);
    socket.destroy();
  });
  socket.on('error', () => { /* 'close' follows */ });
  socket.on('close', () => { if (!closing) sink.lost('connection closed'); });

  return {
    submit(_seq, intendedMs) {
      const tail = (head + count++) % ring;
      intended[tail] = intendedMs;
      due[tail] = spec.batch;
      socket.cork();
      for (let i = 0; i < spec.batch; i++) socket.write(requests[cursor++ % requests.length]);
      socket.uncork();
    },
    close() {
      closing = true;
      return new Promise<void>((resolve) => { socket.once('close', () => resolve()); socket.end(); setTimeout(() => { socket.destroy(); resolve(); }, 1000).unref(); });
    },
  };
}
