// A MessagePack writer for the fuzzer that can write anything: every format
// (including non-canonical widths, e.g. a 3-byte string in a str32), raw
// headers whose counts do not match what follows, ext values of any type, and
// raw bytes. src/protocol/codec.ts's MsgWriter only writes well-formed values,
// which is what the daemon should produce but not what a fuzzer should send.

export class FuzzWriter {
  private buf = new Uint8Array(1024);
  private dv = new DataView(this.buf.buffer);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  byte(b: number): this {
    this.ensure(1);
    this.buf[this.pos++] = b & 0xff;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  u16(v: number): this { this.ensure(2); this.dv.setUint16(this.pos, v); this.pos += 2; return this; }
  u32(v: number): this { this.ensure(4); this.dv.setUint32(this.pos, v >>> 0); this.pos += 4; return this; }
  u64(v: bigint): this { this.ensure(8); this.dv.setBigUint64(this.pos, BigInt.asUintN(64, v)); this.pos += 8; return this; }

  nil(): this { return this.byte(0xc0); }
  bool(v: boolean): this { return this.byte(v ? 0xc3 : 0xc2); }

  /** An integer in the smallest format (like a normal encoder). */
  int(v: number): this {
    if (v >= 0 && v < 0x80) return this.byte(v);
    if (v < 0 && v >= -32) return this.byte(v & 0xff);
    if (v >= 0 && v < 0x100) return this.byte(0xcc).byte(v);
    if (v >= 0 && v < 0x10000) return this.byte(0xcd).u16(v);
    if (v >= 0 && v <= 0xffffffff) return this.byte(0xce).u32(v);
    if (v >= 0) return this.byte(0xcf).u64(BigInt(v));
    if (v >= -0x80) return this.byte(0xd0).byte(v);
    if (v >= -0x8000) { this.byte(0xd1); this.ensure(2); this.dv.setInt16(this.pos, v); this.pos += 2; return this; }
    if (v >= -0x80000000) { this.byte(0xd2); this.ensure(4); this.dv.setInt32(this.pos, v); this.pos += 4; return this; }
    return this.byte(0xd3).u64(BigInt(v));
  }

  /** A 64-bit integer pattern as uint64 (0xcf) or int64 (0xd3). */
  int64(v: bigint, signed: boolean): this { return this.byte(signed ? 0xd3 : 0xcf).u64(v); }

  /** An unsigned integer in a chosen width (1, 2, 4 or 8 bytes), canonical or not. */
  uintWide(v: number, width: 1 | 2 | 4 | 8): this {
    if (width === 1) return this.byte(0xcc).byte(v);
    if (width === 2) return this.byte(0xcd).u16(v);
    if (width === 4) return this.byte(0xce).u32(v);
    return this.byte(0xcf).u64(BigInt(Math.floor(v)));
  }

  f32(v: number): this { this.byte(0xca); this.ensure(4); this.dv.setFloat32(this.pos, v); this.pos += 4; return this; }
  f64(v: number): this { this.byte(0xcb); this.ensure(8); this.dv.setFloat64(this.pos, v); this.pos += 8; return this; }

  /** String header for `byteLength` bytes in the given width (0 = fixstr). */
  strHeader(byteLength: number, width: 0 | 1 | 2 | 4): this {
    if (width === 0) return this.byte(0xa0 | (byteLength & 0x1f));
    if (width === 1) return this.byte(0xd9).byte(byteLength);
    if (width === 2) return this.byte(0xda).u16(byteLength);
    return this.byte(0xdb).u32(byteLength);
  }

  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const width = b.length < 32 ? 0 : b.length < 0x100 ? 1 : b.length < 0x10000 ? 2 : 4;
    return this.strHeader(b.length, width).bytes(b);
  }

  bin(b: Uint8Array): this {
    if (b.length < 0x100) this.byte(0xc4).byte(b.length);
    else if (b.length < 0x10000) this.byte(0xc5).u16(b.length);
    else this.byte(0xc6).u32(b.length);
    return this.bytes(b);
  }

  /** Array header for `n` elements (the caller writes them, or does not). */
  array(n: number, wide = false): this {
    if (n < 16 && !wide) return this.byte(0x90 | n);
    if (n < 0x10000 && !wide) return this.byte(0xdc).u16(n);
    return this.byte(0xdd).u32(n);
  }

  map(n: number, wide = false): this {
    if (n < 16 && !wide) return this.byte(0x80 | n);
    if (n < 0x10000 && !wide) return this.byte(0xde).u16(n);
    return this.byte(0xdf).u32(n);
  }

  /** An ext value of `type` (-128..127) with `data`; fixext when the size allows. */
  ext(type: number, data: Uint8Array): this {
    const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
    const n = data.length;
    if (fixed[n] !== undefined) this.byte(fixed[n]);
    else if (n < 0x100) this.byte(0xc7).byte(n);
    else if (n < 0x10000) this.byte(0xc8).u16(n);
    else this.byte(0xc9).u32(n);
    return this.byte(type).bytes(data);
  }
}
