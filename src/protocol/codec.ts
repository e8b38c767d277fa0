// Pure MessagePack codec for protocol v1, shared by the daemon and the SDK
// (no Node-only imports: it runs in browsers too).
//
// Decoding goes through msgpackr, after a structural check of the bytes
// (msgpack-scan.ts) that refuses what could make it misbehave; a message is a
// stream of values. Encoding of
// the fixed-shape arrays (replies and requests made of uints and strings) is
// done by hand into one reusable buffer, which is several times faster than a
// generic packer and allocates nothing per value; maps go through msgpackr.

import { Packr, Unpackr } from 'msgpackr';
import { CodedError } from './coded-error.ts';
import { scanMessagePack } from './msgpack-scan.ts';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Why a message could not be decoded. */
export class DecodeError extends CodedError {
  override readonly code = 'TPSD_PROTOCOL_UNDECODABLE';
  /** 'incomplete': the data ends inside a value; 'corrupt': bytes that are not MessagePack. */
  readonly kind: 'incomplete' | 'corrupt';
  /** The values decoded before the bad one. */
  readonly values: unknown[];
  constructor(kind: 'incomplete' | 'corrupt', message: string, values: unknown[]) {
    super(message);
    this.kind = kind;
    this.values = values;
    this.name = 'DecodeError';
  }
}

/**
 * Decodes every MessagePack value in `bytes`. Throws DecodeError, which carries
 * the values that came before the bad one.
 */
export function decodeAll(bytes: Uint8Array): unknown[] {
  const values: unknown[] = [];
  const scan = scanMessagePack(bytes);
  const end = scan.problem === null ? bytes.length : scan.goodEnd;
  try {
    if (end > 0) unpackr.unpackMultiple(end === bytes.length ? bytes : bytes.subarray(0, end), (v: unknown) => { values.push(v); });
    if (scan.problem !== null) throw new DecodeError(scan.problem.kind, scan.problem.message, values);
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    const e = err as { incomplete?: boolean; message?: string };
    if (e && e.incomplete) throw new DecodeError('incomplete', 'message ends inside a MessagePack value', values);
    throw new DecodeError('corrupt', `not valid MessagePack: ${e?.message ?? String(err)}`, values);
  }
  return values;
}

const textEncoder = new TextEncoder();
const VIEW_CACHE_BYTES = 512;
/**
 * A writer whose buffer grew past this goes back to its first size when it is
 * reset: one message of big replies (a STATUS storm) must not keep its
 * buffer for the life of the thread. Below it, a buffer that grew stays, so
 * a steady load of ordinary batches allocates nothing.
 */
export const WRITER_SHRINK_ABOVE_BYTES = 256 * 1024;
/** msgpackr's own buffer (shared by every Packr of this module) after it held a value over WRITER_SHRINK_ABOVE_BYTES. */
const PACKR_BUFFER_BYTES = 8192;

/** A buffer msgpackr can write into: a Node Buffer where there is one (it writes strings with Buffer#utf8Write). */
function packrBuffer(bytes: number): Uint8Array {
  return typeof Buffer === 'undefined' ? new Uint8Array(bytes) : Buffer.allocUnsafeSlow(bytes);
}

/**
 * Appends MessagePack values to a growable buffer. `take()` returns a copy of
 * what was written and resets the writer; `view()` returns the bytes without
 * copying (valid until the next write). A buffer that grew past
 * WRITER_SHRINK_ABOVE_BYTES is given back at reset() and take().
 */
export class MsgWriter {
  private buf: Uint8Array;
  private dv: DataView;
  pos = 0;
  private readonly initialBytes: number;
  private readonly shrinkAboveBytes: number;
  /** view() results by length, reused while the buffer stays the same (null: no cache). */
  private views: (Uint8Array | undefined)[] | null;

  /**
   * `cacheViews`: keep the view() of each length up to VIEW_CACHE_BYTES, so a
   * writer that sends a reply per message (the I/O thread's) allocates no view
   * per send. Only for one long-lived writer: the cache holds up to that many views.
   */
  constructor(initialBytes = 4096, cacheViews = false) {
    this.initialBytes = initialBytes;
    this.shrinkAboveBytes = Math.max(initialBytes, WRITER_SHRINK_ABOVE_BYTES);
    this.buf = new Uint8Array(initialBytes);
    this.dv = new DataView(this.buf.buffer);
    this.views = cacheViews ? [] : null;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
    if (this.views !== null) this.views = [];
  }

  get length(): number { return this.pos; }

  /** Bytes the buffer holds now (written or not). */
  get capacity(): number { return this.buf.length; }

  /** Forgets what was written; a buffer grown past the shrink threshold goes back to its first size. */
  reset(): void {
    this.pos = 0;
    if (this.buf.length > this.shrinkAboveBytes) this.shrink();
  }

  private shrink(): void {
    this.buf = new Uint8Array(this.initialBytes);
    this.dv = new DataView(this.buf.buffer);
    if (this.views !== null) this.views = [];
  }

  /** Bytes written so far, without copying (valid until the next write). */
  view(): Uint8Array {
    const n = this.pos;
    if (this.views === null || n > VIEW_CACHE_BYTES) return this.buf.subarray(0, n);
    return this.views[n] ??= this.buf.subarray(0, n);
  }

  /** A copy of the bytes written so far; the writer is reset. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.reset();
    return out;
  }

  array(n: number): this {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) { this.buf[this.pos] = 0xdc; this.dv.setUint16(this.pos + 1, n); this.pos += 3; }
    else { this.buf[this.pos] = 0xdd; this.dv.setUint32(this.pos + 1, n); this.pos += 5; }
    return this;
  }

  /** A non-negative integer up to 2^53 - 1. */
  uint(v: number): this {
    this.ensure(9);
    const b = this.buf;
    if (v < 0x80) b[this.pos++] = v;
    else if (v < 0x100) { b[this.pos] = 0xcc; b[this.pos + 1] = v; this.pos += 2; }
    else if (v < 0x10000) { b[this.pos] = 0xcd; this.dv.setUint16(this.pos + 1, v); this.pos += 3; }
    else if (v <= 0xffffffff) { b[this.pos] = 0xce; this.dv.setUint32(this.pos + 1, v); this.pos += 5; }
    else {
      b[this.pos] = 0xcf;
      this.dv.setUint32(this.pos + 1, Math.floor(v / 0x100000000));
      this.dv.setUint32(this.pos + 5, v >>> 0);
      this.pos += 9;
    }
    return this;
  }

  str(s: string): this {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const max = s.length * 3;
    this.ensure(max + 5);
    const headerBytes = max < 32 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    const start = this.pos + headerBytes;
    const { written } = textEncoder.encodeInto(s, this.buf.subarray(start));
    const b = this.buf;
    if (headerBytes === 1) b[this.pos] = 0xa0 | written;
    else if (headerBytes === 2) { b[this.pos] = 0xd9; b[this.pos + 1] = written; }
    else if (headerBytes === 3) { b[this.pos] = 0xda; this.dv.setUint16(this.pos + 1, written); }
    else { b[this.pos] = 0xdb; this.dv.setUint32(this.pos + 1, written); }
    this.pos = start + written;
    return this;
  }

  /** Already-encoded MessagePack bytes. */
  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** Any value through msgpackr (whose buffer, like this one, is given back after a big value). */
  value(v: unknown): this {
    const bytes = packr.pack(v);
    this.raw(bytes);
    // The bytes are copied: msgpackr may start over in a small buffer (it keeps its largest otherwise).
    if (bytes.length > WRITER_SHRINK_ABOVE_BYTES) packr.useBuffer(packrBuffer(PACKR_BUFFER_BYTES));
    return this;
  }
}

/** True when v can be a protocol uint (integer in [0, 2^53)). */
export function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** True when v is a uint32. */
export function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** UTF-8 length of a string, without encoding it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { n += 4; i++; }
    else n += 3;
  }
  return n;
}
