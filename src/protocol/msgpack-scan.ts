// A structural check of untrusted MessagePack, run before msgpackr decodes it.
// One pass over the bytes, no recursion, no allocation per value. It refuses
// what the protocol never uses and what would make a decoder misbehave:
// extension types (msgpackr gives some of them meanings, one of which can
// rewind its read position and loop forever), the reserved byte 0xc1,
// nesting deeper than MAX_DEPTH, and array, map, string and binary headers
// that declare more than the bytes left could hold (a decoder would allocate
// the declared size before finding out). Synchronous, with one
// scratch stack per thread (each thread has its own copy of this module).

export const MAX_DEPTH = 32;

export interface ScanResult {
  /** null when every value is well formed. */
  readonly problem: null | { readonly kind: 'incomplete' | 'corrupt'; readonly message: string };
  /** Byte offset where the last complete, well-formed top-level value ends. */
  readonly goodEnd: number;
}

const OK_AT = (goodEnd: number): ScanResult => ({ problem: null, goodEnd });

function fail(kind: 'incomplete' | 'corrupt', message: string, goodEnd: number): ScanResult {
  return { problem: { kind, message }, goodEnd };
}

/** Big-endian unsigned integer of `bytes` bytes at `at`. */
function be(b: Uint8Array, at: number, bytes: number): number {
  let v = 0;
  for (let i = 0; i < bytes; i++) v = v * 256 + b[at + i];
  return v;
}

/** One scratch stack for every scan (pending[d]: values still expected in the container open at depth d). */
const pending = new Float64Array(MAX_DEPTH + 1);

export function scanMessagePack(b: Uint8Array): ScanResult {
  const n = b.length;
  let depth = 0;
  let pos = 0;
  let goodEnd = 0;
  while (pos < n) {
    const h = b[pos];
    let size = 1; // header bytes
    let payload = 0; // bytes after the header
    let children = 0; // values that follow as elements
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) { /* one byte */ }
    else if (h >= 0x80 && h <= 0x8f) children = (h & 0x0f) * 2;
    else if (h >= 0x90 && h <= 0x9f) children = h & 0x0f;
    else if (h >= 0xa0 && h <= 0xbf) payload = h & 0x1f;
    else if (h === 0xcc || h === 0xd0) payload = 1;
    else if (h === 0xcd || h === 0xd1) payload = 2;
    else if (h === 0xce || h === 0xd2 || h === 0xca) payload = 4;
    else if (h === 0xcf || h === 0xd3 || h === 0xcb) payload = 8;
    else if (h === 0xd9 || h === 0xc4) size = 2;
    else if (h === 0xda || h === 0xc5 || h === 0xdc || h === 0xde) size = 3;
    else if (h === 0xdb || h === 0xc6 || h === 0xdd || h === 0xdf) size = 5;
    else if ((h >= 0xc7 && h <= 0xc9) || (h >= 0xd4 && h <= 0xd8)) {
      return fail('corrupt', `extension type at byte ${pos}: the protocol uses none`, goodEnd);
    } else return fail('corrupt', `byte 0x${h.toString(16)} at ${pos} starts no MessagePack value`, goodEnd);
    if (pos + size > n) return fail('incomplete', 'message ends inside a MessagePack header', goodEnd);
    if (size > 1) {
      const len = be(b, pos + 1, size - 1);
      if (h === 0xdc || h === 0xdd) children = len;
      else if (h === 0xde || h === 0xdf) children = len * 2;
      else payload = len;
    }
    if (pos + size + payload > n) return fail('incomplete', 'message ends inside a MessagePack value', goodEnd);
    // Every element takes at least one byte.
    if (children > n - pos - size) return fail('incomplete', `a container at byte ${pos} declares ${children} elements, more than the bytes left`, goodEnd);
    pos += size + payload;
    if (depth > 0) pending[depth]--;
    if (children > 0) {
      if (depth === MAX_DEPTH) return fail('corrupt', `values nested deeper than ${MAX_DEPTH}`, goodEnd);
      pending[++depth] = children;
    }
    while (depth > 0 && pending[depth] === 0) depth--;
    if (depth === 0) goodEnd = pos;
  }
  return depth === 0 ? OK_AT(goodEnd) : fail('incomplete', 'message ends inside an array or map', goodEnd);
}
