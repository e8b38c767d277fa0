// A minimal RFC 6455 WebSocket client over node:net, for the load
// generator's raw client only: the opening handshake (Sec-WebSocket-Accept
// checked), binary frames out, frames in parsed where they lie in the socket's
// chunks (no copy unless a frame spans two chunks), ping answered with pong,
// close handshake. No extensions, no text messages.
//
// Why not the `ws` package: it costs several microseconds of CPU per message
// (a new masked copy of every frame, one write per send, an event per
// message), and on a small machine the load generator shares the cores with
// the server it measures. Here a request frame is built once with its
// WebSocket header (frameHeader) and sent as is; writes of one tick are corked
// into one writev.
//
// Masking: every client frame is masked, as the RFC requires, with the masking
// key 0 (XOR with 0: the payload bytes are unchanged), so a pre-built frame
// needs no per-send masking. The server unmasks every frame the same way
// whatever the key, so its work is the same as with any client; a zero key
// only gives up the protection against proxy cache poisoning, which does not
// apply to a benchmark on loopback.
//
// Single-threaded: one load worker thread owns its sockets.

import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9;

/** Header of a masked (key 0), final, binary client frame carrying `length` bytes. */
export function frameHeader(length: number, opcode = OP_BINARY): Buffer {
  if (length < 126) return Buffer.from([0x80 | opcode, 0x80 | length, 0, 0, 0, 0]);
  if (length < 0x10000) return Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff, 0, 0, 0, 0]);
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode; h[1] = 0x80 | 127;
  h.writeUInt32BE(Math.floor(length / 0x100000000), 2);
  h.writeUInt32BE(length >>> 0, 6);
  return h; // bytes 10..13: the zero mask
}

/** A whole client frame: header + payload. */
export function clientFrame(payload: Uint8Array, opcode = OP_BINARY): Buffer {
  return Buffer.concat([frameHeader(payload.length, opcode), payload]);
}

export class WireSocket {
  /** A binary message: bytes [start, end) of `buf`, valid only during the call. */
  onMessage: (buf: Buffer, start: number, end: number) => void = () => {};
  /** The connection ended; code 1006 when it ended without a close frame. */
  onClose: (code: number, reason: string) => void = () => {};
  private pending: Buffer | null = null;
  private fragments: Buffer[] = [];
  private closed = false;
  private corked = false;
  private readonly uncork = (): void => { this.corked = false; this.socket.uncork(); };

  private constructor(private readonly socket: Socket, rest: Buffer) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.finish(1006, 'connection dropped'));
    socket.on('error', () => { /* 'close' follows */ });
    if (rest.length > 0) queueMicrotask(() => this.onData(rest));
  }

  /** Connects and completes the opening handshake on `url` (ws://host:port/path). */
  static open(url: string, timeoutMs: number): Promise<WireSocket> {
    const u = new URL(url);
    if (u.protocol !== 'ws:') return Promise.reject(new Error(`only ws:// urls, got ${url}`));
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    return new Promise((resolve, reject) => {
      const socket = connect({ host: u.hostname, port: Number(u.port || 80), noDelay: true });
      let head = Buffer.alloc(0);
      const fail = (why: string) => { clearTimeout(timer); socket.destroy(); reject(new Error(`${url}: ${why}`)); };
      const timer = setTimeout(() => fail(`no WebSocket handshake within ${timeoutMs} ms`), timeoutMs);
      socket.once('error', (err) => fail(err.message));
      socket.once('connect', () => {
        socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
          + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) { if (head.length > 16384) fail('response header too long'); return; }
        socket.off('data', onData);
        clearTimeout(timer);
        const text = head.subarray(0, end).toString('latin1');
        const status = text.slice(0, text.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101/.test(status)) { fail(`upgrade refused: ${status}`); return; }
        const got = /^sec-websocket-accept:\s*(\S+)/im.exec(text)?.[1];
        if (got !== accept) { fail('wrong Sec-WebSocket-Accept'); return; }
        socket.removeAllListeners('error');
        resolve(new WireSocket(socket, head.subarray(end + 4)));
      };
      socket.on('data', onData);
    });
  }

  get isOpen(): boolean { return !this.closed; }

  /** Sends a whole pre-built frame. Writes made in one tick leave in one writev. */
  send(frame: Buffer): void {
    if (this.closed) return;
    if (!this.corked) { this.corked = true; this.socket.cork(); process.nextTick(this.uncork); }
    this.socket.write(frame);
  }

  /** Starts the closing handshake; resolves when the socket is gone (at most timeoutMs). */
  close(code = 1000, timeoutMs = 1000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.socket.destroy(); resolve(); }, timeoutMs);
      this.socket.once('close', () => { clearTimeout(timer); resolve(); });
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code, 0);
      this.socket.write(clientFrame(body, OP_CLOSE));
    });
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(code, reason);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== null) { buf = Buffer.concat([this.pending, chunk]); this.pending = null; }
    let pos = 0;
    while (pos < buf.length) {
      if (buf.length - pos < 2) break;
      const b0 = buf[pos], b1 = buf[pos + 1];
      let len = b1 & 0x7f;
      let at = pos + 2;
      if (len === 126) { if (buf.length - at < 2) break; len = buf.readUInt16BE(at); at += 2; }
      else if (len === 127) { if (buf.length - at < 8) break; len = buf.readUInt32BE(at) * 0x100000000 + buf.readUInt32BE(at + 4); at += 8; }
      if (b1 & 0x80) { this.protocolError('masked frame from the server'); return; }
      if (buf.length - at < len) break;
      this.frame(b0, buf, at, at + len);
      if (this.closed) return;
      pos = at + len;
    }
    if (pos < buf.length) this.pending = buf.subarray(pos);
  }

  private frame(b0: number, buf: Buffer, start: number, end: number): void {
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    if (op === OP_BINARY && fin) { this.onMessage(buf, start, end); return; }
    if (op === OP_BINARY || (op === OP_CONT && this.fragments.length > 0)) {
      this.fragments.push(Buffer.from(buf.subarray(start, end)));
      if (fin) { const whole = Buffer.concat(this.fragments); this.fragments = []; this.onMessage(whole, 0, whole.length); }
      return;
    }
    if (op === OP_PING) { this.socket.write(clientFrame(buf.subarray(start, end), 0xa)); return; }
    if (op === OP_CLOSE) {
      const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
      const reason = buf.subarray(Math.min(end, start + 2), end).toString('utf8');
      this.socket.end(clientFrame(buf.subarray(start, Math.min(end, start + 2)), OP_CLOSE));
      this.finish(code, reason);
      return;
    }
    if (op === OP_TEXT) { this.protocolError('text message from the server'); return; }
    if (op !== 0xa) this.protocolError(`unexpected opcode ${op}`);
  }

  private protocolError(why: string): void {
    this.socket.destroy();
    this.finish(1002, why);
  }
}
