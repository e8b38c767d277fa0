// A reader for the protocol's flat arrays, straight from the bytes: one
// MessagePack array of at most FLAT_MAX elements, each an unsigned integer
// (positive fixint, uint 8/16/32/64 up to 2^53 - 1) or a string (fixstr,
// str 8/16/32). ACQUIRE and RELEASE requests and their replies have this
// shape, and reading them this way allocates nothing (strings are kept as
// byte ranges until someone asks for them).
//
// Anything else at `pos` (a map, a nested array, a negative or float number,
// nil, a value cut short) makes read() return false and touches nothing the
// caller relies on: the caller then decodes from `pos` the general way
// (codec.ts decodeAll), so every odd input gets the general decoder's answer.
// A FlatReader is reused for every value; it is not thread-safe (one per
// thread or connection).

export const FLAT_MAX = 8;
export const FLAT_UINT = 0;
export const FLAT_STR = 1;

const utf8 = new TextDecoder('utf-8', { fatal: false });

export class FlatReader {
  /** Elements in the last array read. */
  length = 0;
  /** Offset just past the last array read. */
  end = 0;
  /** FLAT_UINT or FLAT_STR per element. */
  readonly kinds = new Uint8Array(FLAT_MAX);
  /** The element's value when it is a uint. */
  readonly nums = new Float64Array(FLAT_MAX);
  /** The byte range [strStart, strEnd) of a string element. */
  readonly strStart = new Int32Array(FLAT_MAX);
  readonly strEnd = new Int32Array(FLAT_MAX);

  /** Reads the flat array at `pos`; false (and nothing to use) when the value there is not one. */
  read(b: Uint8Array, pos: number): boolean {
    const n = b.length;
    if (pos >= n) return false;
    const h = b[pos];
    let count: number;
    if (h >= 0x90 && h <= 0x9f) { count = h & 0x0f; pos += 1; }
    else if (h === 0xdc && pos + 3 <= n) { count = (b[pos + 1] << 8) | b[pos + 2]; pos += 3; }
    else return false;
    if (count > FLAT_MAX) return false;
    for (let i = 0; i < count; i++) {
      if (pos >= n) return false;
      const t = b[pos];
      if (t <= 0x7f) { this.setUint(i, t); pos += 1; continue; }
      let len = -1;
      let head = 0;
      switch (t) {
        case 0xcc: if (pos + 2 > n) return false; this.setUint(i, b[pos + 1]); pos += 2; continue;
        case 0xcd: if (pos + 3 > n) return false; this.setUint(i, (b[pos + 1] << 8) | b[pos + 2]); pos += 3; continue;
        case 0xce: if (pos + 5 > n) return false; this.setUint(i, be32(b, pos + 1)); pos += 5; continue;
        case 0xcf: {
          if (pos + 9 > n) return false;
          const hi = be32(b, pos + 1);
          if (hi >= 0x200000) return false; // not a safe integer
          this.setUint(i, hi * 0x100000000 + be32(b, pos + 5));
          pos += 9;
          continue;
        }
        case 0xd9: if (pos + 2 > n) return false; len = b[pos + 1]; head = 2; break;
        case 0xda: if (pos + 3 > n) return false; len = (b[pos + 1] << 8) | b[pos + 2]; head = 3; break;
        case 0xdb: if (pos + 5 > n) return false; len = be32(b, pos + 1); head = 5; break;
        default:
          if (t >= 0xa0 && t <= 0xbf) { len = t & 0x1f; head = 1; break; }
          return false;
      }
      const start = pos + head;
      if (start + len > n) return false;
      this.kinds[i] = FLAT_STR;
      this.strStart[i] = start;
      this.strEnd[i] = start + len;
      pos = start + len;
    }
    this.length = count;
    this.end = pos;
    return true;
  }

  private setUint(i: number, v: number): void {
    this.kinds[i] = FLAT_UINT;
    this.nums[i] = v;
  }

  /** Element i as a string (it must be a FLAT_STR of the last read, from the same bytes). */
  str(b: Uint8Array, i: number): string {
    const start = this.strStart[i];
    const end = this.strEnd[i];
    if (end - start <= 32) {
      let s = '';
      for (let p = start; p < end; p++) {
        const c = b[p];
        if (c >= 0x80) return utf8.decode(b.subarray(start, end));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return utf8.decode(b.subarray(start, end));
  }
}

function be32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}
