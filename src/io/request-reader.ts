// Reads the requests of one message, in order, and hands each to a sink (the
// RequestHandler). Two ways of reading, one set of rules:
// - a flat ACQUIRE [1, id, key, tokens, wait_ms] or RELEASE
//   [2, id, lease, outcome, latency_us] (uints and a string, protocol/flat-reader.ts)
//   is read straight from the bytes: no decoding into objects, and the key is
//   looked up by its bytes (KeyIndex.lookupBytes) without making a string;
// - at the first value that is anything else (HELLO and its map, STATUS,
//   LIMITS, wrong arity, a negative/float/nil element, garbage, a value cut
//   short, an unknown key that is not ASCII), the rest of the message from that
//   value on goes through the general decoder (codec.ts decodeAll), exactly as
//   a whole message did before the flat path existed, so every odd input keeps
//   its error reply and close code.
// The sink does all validation (tokens >= 1, key length, auth, ...) for both
// ways; this module only decides which way a value is read. After each
// request the sink's checkpoint() may end the message (its replies passed
// the connection's budget, or the daemon is stopping).
//
// Threads: one RequestReader per RequestHandler (one per I/O thread), used only
// by that thread. It keeps no reference to a message after read() returns
// (under uWS the bytes are a view of an ArrayBuffer valid only during the
// message callback).

import { DecodeError, decodeAll, isUint, isUint32, utf8Length } from '../protocol/codec.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { FLAT_STR, FLAT_UINT, FlatReader } from '../protocol/flat-reader.ts';
import { CLOSE_PROTOCOL_ERROR, MAX_KEY_BYTES, MAX_UINT32, OP_ACQUIRE, OP_RELEASE } from '../protocol/opcodes.ts';
import { FNV_OFFSET_BASIS, FNV_PRIME, hashBytes, type KeyIndex } from '../shm/key-index.ts';

export interface RequestSink<C> {
  /** An ACQUIRE with a string key (read either way); validates the rest. */
  acquire(conn: C, id: number, key: RequestKey, tokens: unknown, waitMs: unknown): number;
  /** A RELEASE with five elements (read either way), or six (the hints map: read the general way); validates them. */
  release(conn: C, id: number, lease: unknown, outcome: unknown, latency: unknown, hints?: unknown): number;
  /** Any request decoded the general way whose head [op: uint, id: uint32] is well formed. */
  request(conn: C, req: unknown[]): number;
  /** Writes an error reply to the message's replies. */
  replyError(op: number, id: number, code: number, message: string): void;
  /**
   * Called after each request of a message is answered: 0 to go on, or the
   * close code that ends the message there (its other requests are not
   * handled). Must be a compare or two: it runs per request.
   */
  checkpoint(): number;
}

const textEncoder = new TextEncoder();
/** flatRequest's answer for a value it leaves to the general decoder. */
const NOT_FLAT = -1;
const EMPTY = new Uint8Array(0);
// Module-local copies (V8 folds a local const into the code; an imported binding is read from its cell on every use).
const FNV_BASIS = FNV_OFFSET_BASIS;
const PRIME = FNV_PRIME;

/**
 * The key of the ACQUIRE being handled: a string (general path) or a byte
 * range of the message (flat path), whose string is made only when asked for
 * (auth key patterns, error messages). A tenant key is looked up again by
 * its bytes (tenant-keys.ts): utf8() gives them, in place for a flat key and
 * with the FNV-1a hash the key table's lookup already made, so they are
 * neither copied nor hashed twice.
 */
export class RequestKey {
  private str: string | null = null;
  /** The key's UTF-8 bytes are src[at, at + bytes): the message's (flat), or `encoded` once utf8() encoded the string. */
  private src: Uint8Array = EMPTY;
  private at = 0;
  private reader: FlatReader | null = null;
  private elem = 0;
  /** The key's UTF-8 length, or -1 while a string key is not encoded (counted). */
  private bytes = 0;
  private index = -1;
  /** hashBytes() of the key's bytes, once they are known. */
  private fnv = 0;
  /** A string key's UTF-8 bytes (3 bytes per UTF-16 unit at most; utf8() is called only for a key within MAX_KEY_BYTES). */
  private readonly encoded = new Uint8Array(MAX_KEY_BYTES * 3);

  constructor(private readonly keys: KeyIndex) {}

  fromString(key: string): void {
    this.str = key;
    this.src = EMPTY;
    this.reader = null;
    this.bytes = -1; // not counted
    this.index = -2; // not looked up
  }

  /**
   * The string element `elem` of the flat array `r` last read from `src`.
   * False (and nothing kept) when the general path must take the request: an
   * unknown key that is not plain ASCII, whose string could depend on how a
   * decoder treats invalid UTF-8.
   */
  fromFlat(r: FlatReader, src: Uint8Array, elem: number): boolean {
    const start = r.strStart[elem];
    const end = r.strEnd[elem];
    // hashBytes() and an OR of the bytes (is it ASCII?) in one pass: a tenant key is looked up twice and checked.
    let h = FNV_BASIS;
    let high = 0;
    for (let i = start; i < end; i++) {
      const c = src[i];
      h = Math.imul(h ^ c, PRIME);
      high |= c;
    }
    const index = this.keys.lookupHashed(src, start, end, h);
    if (index < 0 && high >= 0x80) return false;
    this.str = null;
    this.src = src;
    this.at = start;
    this.reader = r;
    this.elem = elem;
    this.bytes = end - start;
    this.index = index;
    this.fnv = h;
    return true;
  }

  /** Forgets the message bytes (they must not outlive the message). */
  clear(): void {
    this.src = EMPTY;
    this.reader = null;
  }

  /** True when the key's UTF-8 form is longer than MAX_KEY_BYTES. */
  tooLong(): boolean {
    if (this.str === null || this.bytes >= 0) return this.bytes > MAX_KEY_BYTES;
    // UTF-8 takes 1 to 3 bytes per UTF-16 unit: count only when it matters.
    const n = this.str.length;
    return n > MAX_KEY_BYTES || (n * 3 > MAX_KEY_BYTES && utf8Length(this.str) > MAX_KEY_BYTES);
  }

  /** Bucket index of the key, or -1. */
  leaf(): number {
    if (this.index === -2) this.index = this.keys.lookup(this.str!);
    return this.index;
  }

  /**
   * The buffer holding the key's UTF-8 bytes, at utf8Start() for
   * utf8Length() bytes, hashed as utf8Hash(); a string key is encoded on the
   * first call (the caller checked tooLong()). No allocation.
   */
  utf8(): Uint8Array {
    if (this.bytes < 0) {
      const n = textEncoder.encodeInto(this.str!, this.encoded).written;
      this.src = this.encoded;
      this.at = 0;
      this.bytes = n;
      this.fnv = hashBytes(this.encoded, 0, n);
    }
    return this.src;
  }

  utf8Start(): number { return this.at; }
  utf8Length(): number { return this.bytes; }
  /** hashBytes() of the key's bytes (after utf8()). */
  utf8Hash(): number { return this.fnv; }

  text(): string {
    if (this.str === null) this.str = this.reader!.str(this.src, this.elem);
    return this.str;
  }
}

export class RequestReader<C> {
  readonly key: RequestKey;
  private readonly flat = new FlatReader();

  constructor(keys: KeyIndex, private readonly sink: RequestSink<C>) {
    this.key = new RequestKey(keys);
  }

  /** Handles every request of a message; 0, or the close code that ends the connection. */
  read(conn: C, bytes: Uint8Array): number {
    const r = this.flat;
    const n = bytes.length;
    let pos = 0;
    let close = 0;
    while (pos < n && r.read(bytes, pos)) {
      close = this.flatRequest(conn, bytes);
      if (close !== 0) break;
      pos = r.end;
      close = this.sink.checkpoint();
      if (close !== 0) break;
    }
    this.key.clear();
    if (close > 0) return close;
    return pos === n ? 0 : this.general(conn, pos === 0 ? bytes : bytes.subarray(pos));
  }

  /** Handles the flat array just read if it is an ACQUIRE or RELEASE; NOT_FLAT (nothing done) if not. */
  private flatRequest(conn: C, bytes: Uint8Array): number {
    const r = this.flat;
    const k = r.kinds;
    if (r.length !== 5 || k[0] !== FLAT_UINT || k[1] !== FLAT_UINT || k[3] !== FLAT_UINT || k[4] !== FLAT_UINT) return NOT_FLAT;
    const op = r.nums[0];
    const id = r.nums[1];
    if (id > MAX_UINT32) return NOT_FLAT;
    if (op === OP_ACQUIRE && k[2] === FLAT_STR) {
      if (!this.key.fromFlat(r, bytes, 2)) return NOT_FLAT;
      return this.sink.acquire(conn, id, this.key, r.nums[3], r.nums[4]);
    }
    if (op === OP_RELEASE && k[2] === FLAT_UINT) return this.sink.release(conn, id, r.nums[2], r.nums[3], r.nums[4]);
    return NOT_FLAT;
  }

  /** The general way: decode every value left, then answer them in order. */
  private general(conn: C, bytes: Uint8Array): number {
    let values: unknown[];
    let closeCode = 0;
    try {
      values = decodeAll(bytes);
    } catch (err) {
      values = (err as DecodeError).values;
      closeCode = CLOSE_PROTOCOL_ERROR;
    }
    for (let i = 0; i < values.length; i++) {
      const req = values[i];
      if (!Array.isArray(req) || req.length < 2 || !isUint(req[0]) || !isUint32(req[1])) {
        // Answer when the id can be read, then close: the stream is not ours to guess at.
        if (Array.isArray(req) && isUint32(req[1])) {
          this.sink.replyError(isUint32(req[0]) ? req[0] : 0, req[1], ErrorCode.BAD_REQUEST, 'a request is an array [op: uint, id: uint32, ...]');
        }
        return CLOSE_PROTOCOL_ERROR;
      }
      const close = this.sink.request(conn, req) || this.sink.checkpoint();
      if (close) return close;
    }
    return closeCode;
  }
}
