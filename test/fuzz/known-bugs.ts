// Inputs that trigger bugs in src/ which are reported and not yet fixed
// (reproductions: known-bugs.repro.ts). The fuzzers skip messages matching
// one, so that the suite stays green and finds new bugs; remove an entry when
// its bug is fixed. Matching is conservative: a few innocent messages are
// skipped too, never a guilty one.
//
// Also the message scanner they need: MessagePack is prefix notation, so the
// places where headers start follow from reading the bytes in order (arrays
// and maps only announce what follows), whatever the nesting.

import { DecodeError, decodeAll } from '../../src/protocol/codec.ts';

export interface KnownBug { id: string; summary: string; matches(bytes: Uint8Array, decoded: Decoded): boolean }

/** decodeAll's outcome for a message (computed once per message, see decode()). */
export interface Decoded { values: unknown[]; error: unknown; ms: number }

/** Runs decodeAll, keeping what it returned or threw. Do not call on a message matching msgpackr-bundle-loop. */
export function decode(bytes: Uint8Array): Decoded {
  const t0 = performance.now();
  try { return { values: decodeAll(bytes), error: null, ms: performance.now() - t0 }; } catch (err) {
    return { values: (err as DecodeError).values ?? [], error: err, ms: performance.now() - t0 };
  }
}

/**
 * None open. The seven bugs fuzzing found (a decoder loop on msgpackr's
 * bundled-strings extension, HELLO error text, array preallocation, decoder
 * state between calls, error kind of deep nesting, lease schedule compaction,
 * keep-alive sockets at stop) are fixed; regressions.test.ts keeps them so.
 */
export const KNOWN_BUGS: readonly KnownBug[] = [];

/** How deeply arrays and maps nest in a message (read without decoding it). */
export function nestingDepth(b: Uint8Array): number {
  return scan(b).maxDepth;
}

function scan(b: Uint8Array): { headers: [number, number][]; maxDepth: number } {
  const out: [number, number][] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const open: number[] = []; // values still to come in each open array/map
  let p = 0, maxDepth = 0;
  while (p < b.length) {
    const h = b[p];
    let next: number;
    let children = 0; // values an array or map header announces
    if (h < 0x80 || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) next = p + 1;
    else if (h <= 0x9f) { children = h < 0x90 ? 2 * (h & 0x0f) : h & 0x0f; out.push([h, h & 0x0f]); next = p + 1; }
    else if (h <= 0xbf) next = p + 1 + (h & 0x1f);
    else if (h === 0xdc || h === 0xde) { const n = uintAt(b, dv, p + 1, 2); children = h === 0xde ? 2 * n : n; out.push([h, n]); next = p + 3; }
    else if (h === 0xdd || h === 0xdf) { const n = uintAt(b, dv, p + 1, 4); children = h === 0xdf ? 2 * n : n; out.push([h, n]); next = p + 5; }
    else if (h === 0xc4 || h === 0xd9) next = p + 2 + uintAt(b, dv, p + 1, 1);
    else if (h === 0xc5 || h === 0xda) next = p + 3 + uintAt(b, dv, p + 1, 2);
    else if (h === 0xc6 || h === 0xdb) next = p + 5 + uintAt(b, dv, p + 1, 4);
    else if (h === 0xc7) next = p + 3 + uintAt(b, dv, p + 1, 1);
    else if (h === 0xc8) next = p + 4 + uintAt(b, dv, p + 1, 2);
    else if (h === 0xc9) next = p + 6 + uintAt(b, dv, p + 1, 4);
    else if (h >= 0xca && h <= 0xd3) next = p + 1 + [4, 8, 1, 2, 4, 8, 1, 2, 4, 8][h - 0xca];
    else if (h >= 0xd4 && h <= 0xd8) next = p + 2 + [1, 2, 4, 8, 16][h - 0xd4];
    else break; // 0xc1: never used
    if (next <= p) break; // a length that could not be read
    if (children > 0) { open.push(children); maxDepth = Math.max(maxDepth, open.length); }
    else while (open.length > 0 && --open[open.length - 1] === 0) open.pop();
    p = next;
  }
  return { headers: out, maxDepth };
}

function uintAt(b: Uint8Array, dv: DataView, at: number, n: 1 | 2 | 4): number {
  if (at + n > b.length) return -1;
  return n === 1 ? b[at] : n === 2 ? dv.getUint16(at) : dv.getUint32(at);
}
