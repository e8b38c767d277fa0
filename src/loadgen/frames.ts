// Wire framing of the load generator's raw WebSocket client, built on the
// project's codec (src/protocol/codec.ts) so the bytes are the daemon's own.
//
// Requests: every message is encoded once, up front, with MsgWriter; each
// request's id is written as a fixed-width uint32 (0xce + 4 bytes) whose
// offset is remembered, so sending a message is "patch the ids, send" with no
// encoding on the hot path. Ids carry the message's sequence number:
//   id = (seq mod seqWrap) * batch + i + 1
// so a reply's id tells which message (and ring slot) it answers.
//
// Replies: ReplyReader walks a message value by value and reads only
// [op, id, status] of each (and the lease of a granted ACQUIRE), skipping the rest; status codes are checked
// (0 granted, 1 denied, >= 16 error), never assumed. A bare echo server sends
// the request back, so a value whose third element is a string is an echoed
// ACQUIRE, not a decision. Anything malformed throws.
//
// Single-threaded: each load worker thread has its own frames and readers.

import { CodedError } from '../protocol/coded-error.ts';
import { MsgWriter } from '../protocol/codec.ts';
import { OP_ACQUIRE } from '../protocol/opcodes.ts';

/** The fixed-width id placeholder: MessagePack uint32. */
const ID_PLACEHOLDER = new Uint8Array([0xce, 0, 0, 0, 0]);
/** Id of the HELLO each connection sends first; acquire ids stay below it. */
export const HELLO_ID = 0xffffffff;
const MAX_ACQUIRE_ID = 0xfffffff0;

export interface IdScheme {
  readonly batch: number;
  /** Ring slots per connection (a power of two, at least the messages in flight). */
  readonly ring: number;
  /** Sequence numbers wrap here; a multiple of `ring`, so slot = seq mod ring either way. */
  readonly seqWrap: number;
}

export function idScheme(batch: number, maxInFlight: number): IdScheme {
  let ring = 1;
  while (ring < maxInFlight) ring *= 2;
  const seqWrap = Math.floor(MAX_ACQUIRE_ID / batch / ring) * ring;
  if (seqWrap < ring) throw new Error(`batch ${batch} x ${ring} messages in flight do not fit in uint32 ids`);
  return { batch, ring, seqWrap };
}

/** One pre-encoded request message (with its WebSocket frame header) and where its ids go. */
export interface Frame {
  readonly bytes: Buffer;
  readonly idOffsets: Int32Array;
}

const MAX_FRAMES = 4096;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * How many distinct frames a connection cycles through: a multiple of the
 * ring, so frame j is only ever sent from ring slot j mod ring and is patched
 * again only after its previous send was answered (hence fully written); and,
 * where it fits, a multiple of the key period, so keys cycle exactly.
 */
export function frameCount(keys: number, batch: number, ring: number): number {
  const period = keys / gcd(keys, batch);
  const lcm = (ring / gcd(ring, period)) * period;
  return lcm <= MAX_FRAMES ? lcm : ring * Math.max(1, Math.floor(MAX_FRAMES / ring));
}

/**
 * The frames of one connection: frame j holds the keys
 * keys[(start + j * batch + i) mod keys.length] for i < batch, so every
 * connection walks all keys in turn. `header(length)` gives the bytes to put
 * before the payload (the WebSocket frame header).
 */
export function buildFrames(keys: readonly string[], batch: number, start: number, count: number,
  header: (payloadBytes: number) => Uint8Array, tokens = 1): Frame[] {
  const frames: Frame[] = [];
  const w = new MsgWriter(batch * 64);
  for (let f = 0; f < count; f++) {
    const offs = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      w.array(5).uint(OP_ACQUIRE);
      offs[i] = w.length + 1;
      w.raw(ID_PLACEHOLDER).str(keys[(start + f * batch + i) % keys.length]).uint(tokens).uint(0);
    }
    const payload = w.take();
    const h = header(payload.length);
    const bytes = Buffer.allocUnsafe(h.length + payload.length);
    bytes.set(h, 0);
    bytes.set(payload, h.length);
    frames.push({ bytes, idOffsets: offs.map((o) => o + h.length) });
  }
  return frames;
}

/** Writes the ids of message `seq` into the frame. */
export function patchIds(frame: Frame, scheme: IdScheme, seq: number): void {
  const first = (seq % scheme.seqWrap) * scheme.batch + 1;
  const offs = frame.idOffsets;
  for (let i = 0; i < offs.length; i++) frame.bytes.writeUInt32BE(first + i, offs[i]);
}

/** The ring slot a reply id belongs to, or -1 for an id no request of this scheme carries. */
export function slotOfId(id: number, scheme: IdScheme): number {
  if (id < 1 || id > scheme.seqWrap * scheme.batch) return -1;
  return Math.floor((id - 1) / scheme.batch) % scheme.ring;
}

/** The sequence number (mod seqWrap) a reply id belongs to. */
export function seqOfId(id: number, scheme: IdScheme): number {
  return Math.floor((id - 1) / scheme.batch);
}

export class MalformedReply extends CodedError {
  override readonly code = 'TPSD_LOADGEN_MALFORMED_REPLY';
}

/** Status of an echoed request (the third element was not an integer). */
export const ECHOED = -1;

/**
 * Reads replies [op, id, status, ...] one at a time from a message.
 * Usage: reader.reset(bytes); while (reader.next()) use reader.op/id/status.
 */
export class ReplyReader {
  op = 0;
  id = 0;
  /** 0 granted, 1 denied, >= 16 an error code, ECHOED for an echoed request. */
  status = 0;
  /** The lease of a granted ACQUIRE (status 0), else 0. */
  lease = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;

  reset(bytes: Uint8Array): void {
    this.buf = bytes;
    this.pos = 0;
  }

  next(): boolean {
    if (this.pos >= this.buf.length) return false;
    const h = this.buf[this.pos++];
    let n: number;
    if (h >= 0x90 && h <= 0x9f) n = h & 0x0f;
    else if (h === 0xdc) { n = this.u16(); } else throw new MalformedReply(`reply is not an array (byte 0x${h.toString(16)})`);
    if (n < 3) throw new MalformedReply(`reply array of ${n} elements`);
    this.op = this.uint();
    this.id = this.uint();
    const s = this.buf[this.pos];
    if (s <= 0x7f || (s >= 0xcc && s <= 0xcf)) this.status = this.uint();
    else { this.skip(); this.status = ECHOED; }
    let i = 3;
    this.lease = 0;
    if (n > 3 && this.status === 0 && this.op === OP_ACQUIRE) { this.lease = this.uint(); i++; }
    for (; i < n; i++) this.skip();
    if (this.pos > this.buf.length) throw new MalformedReply('reply ends inside a value');
    return true;
  }

  private u16(): number {
    const b = this.buf;
    const v = (b[this.pos] << 8) | b[this.pos + 1];
    this.pos += 2;
    return v;
  }

  private u32(): number {
    const b = this.buf;
    const v = ((b[this.pos] << 24) >>> 0) + ((b[this.pos + 1] << 16) | (b[this.pos + 2] << 8) | b[this.pos + 3]);
    this.pos += 4;
    return v;
  }

  private uint(): number {
    const b = this.buf;
    const h = b[this.pos++];
    if (h <= 0x7f) return h;
    if (h === 0xcc) return b[this.pos++];
    if (h === 0xcd) return this.u16();
    if (h === 0xce) return this.u32();
    if (h === 0xcf) { const hi = this.u32(); return hi * 4294967296 + this.u32(); }
    throw new MalformedReply(`expected an unsigned integer, found byte 0x${h.toString(16)}`);
  }

  /** Skips one value of any type. */
  private skip(): void {
    const b = this.buf;
    const h = b[this.pos++];
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) return;
    if (h >= 0xa0 && h <= 0xbf) { this.pos += h & 0x1f; return; }
    if (h >= 0x90 && h <= 0x9f) { for (let i = h & 0x0f; i > 0; i--) this.skip(); return; }
    if (h >= 0x80 && h <= 0x8f) { for (let i = (h & 0x0f) * 2; i > 0; i--) this.skip(); return; }
    switch (h) {
      case 0xcc: case 0xd0: this.pos += 1; return;
      case 0xcd: case 0xd1: this.pos += 2; return;
      case 0xce: case 0xd2: case 0xca: this.pos += 4; return;
      case 0xcf: case 0xd3: case 0xcb: this.pos += 8; return;
      case 0xd9: case 0xc4: this.pos += 1 + b[this.pos]; return;
      case 0xda: case 0xc5: this.pos += 2 + this.peek16(); return;
      case 0xdb: case 0xc6: { const n = this.u32(); this.pos += n; return; }
      case 0xdc: { const n = this.u16(); for (let i = 0; i < n; i++) this.skip(); return; }
      case 0xdd: { const n = this.u32(); for (let i = 0; i < n; i++) this.skip(); return; }
      case 0xde: { const n = this.u16() * 2; for (let i = 0; i < n; i++) this.skip(); return; }
      case 0xdf: { const n = this.u32() * 2; for (let i = 0; i < n; i++) this.skip(); return; }
      default: throw new MalformedReply(`unsupported MessagePack byte 0x${h.toString(16)}`);
    }
  }

  private peek16(): number {
    return (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
  }
}
