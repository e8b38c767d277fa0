// Seeded generator of protocol v1 messages for fuzzing: valid requests of
// every op, several per message, the same with wrong types and arities,
// invalid envelopes, truncated and byte-mutated messages, huge array/map/str
// headers, deep nesting, ext values (msgpackr's own types included), very
// long strings, and edge numbers (negative, float, NaN, 64-bit). The same
// seed gives the same messages, so any failure is reproduced from its seed.
//
// Lease values in RELEASE come from `lease()` when the caller tracks live
// leases (the harness hands out its own connection's and other connections'
// leases); otherwise they are made up: below 2^24 (nonce 0: never issued),
// or near 2^52 and 2^53 - 1 (a random nonce; matching a live lease of the
// sending connection is a 2^-29 chance, and the daemon refuses any other
// connection's, see src/io/lease-table.ts).
//
// KNOWN_BUGS (known-bugs.ts) lists inputs that crash, hang or stall the
// daemon today (reported, not yet fixed); messages that match one are replaced
// by another message and counted in `skipped`, unless `includeKnownBugs`.

import { KNOWN_BUGS, decode, type Decoded } from './known-bugs.ts';
import { FuzzWriter } from './msgpack-writer.ts';

export { decode, nestingDepth, type Decoded } from './known-bugs.ts';

/** Pools used by every fuzz target: `acct` for exact slot accounting, `junk` for anything. */
export const FUZZ_POOLS = [
  { name: 'acct', capacity_tps: 100_000, burst: 10_000,
    services: [{ name: 'held', priority: 'HIGH', max_tps: 100_000, burst: 10_000, concurrency: 6 }] },
  // The junk leases are never released (they expire); rates high enough that
  // the fuzzer's frame rate, not the pool, bounds them (see LIVE_CONFIG in live-fuzz.ts).
  { name: 'junk', capacity_tps: 6000, burst: 600, services: [
    { name: 'a', priority: 'CRITICAL', max_tps: 200, burst: 20, concurrency: 4,
      endpoints: [{ name: 'e', max_tps: 50, burst: 5, concurrency: 2 }] },
    { name: 'b', priority: 'LOW', max_tps: 5000, burst: 500 },
    { name: 'slow', priority: 'MEDIUM', max_tps: 20, burst: 2 },
    // Tenants: keys made on first use (a few names, a tier that may not be acquired, `max` small enough to be reached).
    { name: 'ten', priority: 'LOW', max_tps: 2000, burst: 200, tenants: {
      tiers: [{ name: 'std', priority: 'LOW', tps: 500, burst: 50 }, { name: 'dry', priority: 'LOW', tps: 1, burst: 1, enforce: false }],
      max: 8, idle_s: 1 } },
  ] },
];
export const JUNK_KEYS = ['junk', 'junk/a', 'junk/a/e', 'junk/b', 'junk/slow', 'junk/ten/t1', 'junk/ten/t2', 'junk/ten/a@b.c',
  'junk/ten/~std', 'junk/ten/t1/x'];

/** mulberry32: small, fast, good enough for fuzzing. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  float(): number { return this.u32() / 0x100000000; }
  int(n: number): number { return Math.floor(this.float() * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  chance(p: number): boolean { return this.float() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  bytes(n: number): Uint8Array { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff; return b; }
}

export type FrameKind =
  | 'valid' | 'mixed' | 'bad-envelope' | 'truncated' | 'mutated' | 'huge-header' | 'deep' | 'ext' | 'long-string' | 'junk' | 'empty';

export interface Frame {
  bytes: Uint8Array;
  kind: FrameKind;
  /** decodeAll's outcome, when the known-bug filter ran (it needs it); else null. */
  decoded: Decoded | null;
}

export interface FuzzerOptions {
  /** Keys valid requests use (unknown and malformed keys are added). */
  keys: readonly string[];
  /** The daemon's max_message_bytes: messages stay under it except a few on purpose. */
  maxMessageBytes: number;
  /** A live lease to release, if the caller tracks them. */
  lease?: () => number | undefined;
  includeKnownBugs?: boolean;
}

const OPS = [0, 1, 1, 1, 1, 2, 2, 2, 3] as const;
const ARITY = [3, 5, 5, 2];
const UNKNOWN_OPS = [4, 5, 127, 128, 255, 65535, 2 ** 32, 2 ** 53 - 1];
const EDGE_NUMBERS = [0, 1, -1, -32, -33, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32,
  2 ** 53 - 1, 2 ** 53, -(2 ** 31), 0.5, 1.5, -0, 1e300, -1e-300];
/** msgpackr's extension types, the timestamp, undefined (0) and some unassigned ones. */
const EDGE_INTEGERS = EDGE_NUMBERS.filter((n) => Number.isInteger(n));
const EDGE_FLOATS = [...EDGE_NUMBERS, NaN, Infinity, -Infinity];
const EXT_TYPES = [0x00, 0x42, 0x62, 0x65, 0x69, 0x70, 0x73, 0x74, 0x78, 0xff, 0x01, 0x40, 0x52, 0x7f, 0x80];
const KINDS: [FrameKind, number][] = [
  ['valid', 25], ['mixed', 25], ['bad-envelope', 8], ['truncated', 10], ['mutated', 12], ['huge-header', 4],
  ['deep', 4], ['ext', 5], ['long-string', 3], ['junk', 3], ['empty', 1],
];
const KIND_TOTAL = KINDS.reduce((s, [, w]) => s + w, 0);

export class FrameFuzzer {
  readonly rng: Rng;
  /** Messages replaced because they matched a known bug, by bug id. */
  readonly skipped: Record<string, number> = {};
  private readonly o: FuzzerOptions;
  private readonly w = new FuzzWriter();
  private readonly keys: string[];
  /** Request ids used in the current message: kept distinct so replies match requests unambiguously. */
  private readonly ids = new Set<number>();

  constructor(seed: number, options: FuzzerOptions) {
    this.rng = new Rng(seed);
    this.o = options;
    this.keys = [...options.keys];
  }

  next(): Frame {
    for (;;) {
      const f = this.generate();
      if (this.o.includeKnownBugs) return f;
      const decoded = decode(f.bytes);
      const bug = KNOWN_BUGS.find((k) => k.matches(f.bytes, decoded));
      if (bug === undefined) return { ...f, decoded };
      this.skipped[bug.id] = (this.skipped[bug.id] ?? 0) + 1;
    }
  }

  private generate(): Frame {
    this.ids.clear();
    let r = this.rng.int(KIND_TOTAL);
    let kind: FrameKind = 'valid';
    for (const [k, weight] of KINDS) { if (r < weight) { kind = k; break; } r -= weight; }
    const w = this.w, rng = this.rng;
    switch (kind) {
      case 'valid': for (let i = rng.range(1, 8); i > 0; i--) this.request(false); break;
      case 'mixed': for (let i = rng.range(1, 12); i > 0; i--) this.request(rng.chance(0.5)); break;
      case 'bad-envelope':
        for (let i = rng.int(4); i > 0; i--) this.request(false);
        this.badEnvelope();
        for (let i = rng.int(3); i > 0; i--) this.request(false);
        break;
      case 'truncated': {
        for (let i = rng.range(1, 6); i > 0; i--) this.request(rng.chance(0.3));
        const b = w.take();
        return { bytes: b.subarray(0, 1 + rng.int(Math.max(1, b.length - 1))), kind, decoded: null };
      }
      case 'mutated': {
        for (let i = rng.range(1, 6); i > 0; i--) this.request(rng.chance(0.3));
        return { bytes: this.mutate(w.take()), kind, decoded: null };
      }
      case 'huge-header': this.hugeHeader(); break;
      case 'deep': this.deep(); break;
      case 'ext':
        for (let i = rng.range(1, 4); i > 0; i--) {
          if (rng.chance(0.3)) this.extValue();
          else { w.array(5).int(rng.int(4)).int(rng.u32()); for (let j = 0; j < 3; j++) { if (rng.chance(0.5)) this.extValue(); else this.junk(1); } }
        }
        break;
      case 'long-string': this.longString(); break;
      case 'junk': w.bytes(rng.bytes(rng.range(1, 200))); break;
      case 'empty': break;
    }
    return { bytes: w.take(), kind, decoded: null };
  }

  private id(): number {
    const rng = this.rng;
    for (;;) {
      const id = rng.chance(0.9) ? rng.u32() : rng.pick([0, 1, 0xffffffff, 0x7fffffff]);
      if (!this.ids.has(id)) { this.ids.add(id); return id; }
    }
  }

  private key(): string {
    const rng = this.rng;
    if (rng.chance(0.8)) return rng.pick(this.keys);
    switch (rng.int(13)) {
      case 0: return '';
      case 1: return 'nope';
      case 2: return `${rng.pick(this.keys)}/`;
      case 3: return `/${rng.pick(this.keys)}`;
      case 4: return '__proto__';
      case 5: return 'constructor';
      case 6: return 'k'.repeat(256);
      case 7: return 'k'.repeat(257);
      case 8: return '€'.repeat(85); // 255 bytes
      case 9: return '€'.repeat(86); // 258 bytes
      case 10: return '\ud800x'; // a lone surrogate
      case 11: return '\u0000';
      default: {
        let out = '';
        for (let i = rng.range(1, 40); i > 0; i--) out += String.fromCharCode(rng.int(0x10000));
        return out;
      }
    }
  }

  private lease(): number {
    const live = this.rng.chance(0.7) ? this.o.lease?.() : undefined;
    if (live !== undefined) return live;
    const rng = this.rng;
    // Nonce 0 (below 2^24, never issued), or random nonces around 2^28 and the largest id.
    switch (rng.int(4)) {
      case 0: return 0;
      case 1: return rng.int(1 << 24);
      case 2: return 2 ** 52 + rng.int(1 << 30);
      default: return 2 ** 53 - 1;
    }
  }

  /** One request; `wrong` replaces a field with junk, changes the arity or the op. */
  private request(wrong: boolean): void {
    const rng = this.rng, w = this.w;
    let op: number = rng.pick(OPS);
    if (op === 3 && rng.chance(0.7)) op = 1; // STATUS replies are large: keep them rare
    const arity = ARITY[op];
    let n = arity, junkAt = -1, shownOp = op;
    if (wrong) {
      const mode = rng.int(4);
      if (mode === 0 && arity > 2) n = arity - 1;
      else if (mode === 1) n = arity + 1;
      else if (mode === 2) shownOp = rng.pick(UNKNOWN_OPS);
      else { junkAt = 2 + rng.int(Math.max(1, arity - 2)); n = Math.max(n, junkAt + 1); }
    }
    w.array(n);
    for (let i = 0; i < n; i++) {
      if (i === junkAt) this.junk(2);
      else if (i >= arity) this.junk(1);
      else if (i === 0) w.int(shownOp);
      else if (i === 1) w.int(this.id());
      else this.field(op, i);
    }
  }

  /** Field i (>= 2) of a well-formed request of `op`. */
  private field(op: number, i: number): void {
    const rng = this.rng, w = this.w;
    if (op === 0) return this.helloBody();
    if (op === 1) {
      if (i === 2) w.str(this.key());
      else if (i === 3) w.int(rng.chance(0.9) ? rng.range(1, 3) : rng.pick([1, 10, 100, 1000, 2_000_000, 2_000_001]));
      else w.int(rng.chance(0.6) ? 0 : rng.chance(0.8) ? rng.range(1, 60) : rng.pick([200, 1000, 600_001, 2 ** 32]));
      return;
    }
    if (i === 2) w.int(this.lease());
    else if (i === 3) w.int(rng.chance(0.9) ? rng.int(3) : rng.pick([3, 255]));
    else w.int(rng.int(1_000_000));
  }

  private helloBody(): void {
    const rng = this.rng, w = this.w;
    const name = rng.chance(0.3), token = rng.chance(0.2), odd = rng.chance(0.1);
    w.map(1 + Number(name) + Number(token) + Number(odd));
    w.str('v');
    if (rng.chance(0.85)) w.int(1); else this.junk(2);
    if (name) w.str('name').str(`fuzz-${rng.int(1000)}`);
    if (token) { w.str('token'); if (rng.chance(0.7)) w.str('x'.repeat(rng.int(50))); else this.junk(1); }
    if (odd) { w.str(rng.pick(['__proto__', 'constructor', 'toString', ''])); this.junk(1); }
  }

  /** A value that is not a request (or a request whose head is wrong). */
  private badEnvelope(): void {
    const rng = this.rng, w = this.w;
    switch (rng.int(6)) {
      case 0: this.junk(2); break;
      case 1: w.array(0); break;
      case 2: w.array(1).int(1); break;
      case 3: w.array(3); this.junk(0); w.int(this.id()); w.str('junk/b'); break; // op not a uint
      case 4: {
        w.array(2).int(rng.int(4)); // then an id that is not a uint32
        const k = rng.int(5);
        if (k === 0) w.int(-1); else if (k === 1) w.f64(1.5); else if (k === 2) w.int(2 ** 32); else if (k === 3) w.str('1'); else w.nil();
        break;
      }
      default: w.map(2).int(0).int(1).int(1).int(7); break;
    }
  }

  /** A random value; `depth` bounds nesting. */
  junk(depth: number): void {
    const rng = this.rng, w = this.w;
    const k = rng.int(depth > 0 ? 14 : 11);
    switch (k) {
      case 0: w.nil(); break;
      case 1: w.bool(rng.chance(0.5)); break;
      case 2: w.int(rng.pick(EDGE_INTEGERS)); break;
      case 3: w.f64(rng.pick(EDGE_FLOATS)); break;
      case 4: w.f32(rng.pick([0.5, -1, NaN, Infinity, 3.4e38])); break;
      case 5: w.int64(rng.pick([2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, -(2n ** 63n), -1n]), rng.chance(0.5)); break;
      case 6: w.uintWide(rng.int(300), rng.pick([1, 2, 4, 8] as const)); break;
      case 7: w.str(rng.chance(0.5) ? rng.pick(this.keys) : 'x'.repeat(rng.int(40))); break;
      case 8: w.bin(rng.bytes(rng.int(20))); break;
      case 9: this.extValue(); break;
      case 10: { const n = rng.int(6); w.strHeader(n, rng.pick([0, 1, 2, 4] as const)).bytes(rng.bytes(n)); break; } // maybe invalid UTF-8
      case 11: { const n = rng.int(5); w.array(n, rng.chance(0.2)); for (let i = 0; i < n; i++) this.junk(depth - 1); break; }
      case 12: { const n = rng.int(4); w.map(n, rng.chance(0.2)); for (let i = 0; i < n; i++) { this.junk(0); this.junk(depth - 1); } break; }
      default: w.int(rng.u32() - 0x80000000); break;
    }
  }

  private extValue(): void {
    const rng = this.rng, w = this.w;
    const type = rng.pick(EXT_TYPES);
    const size = rng.pick([1, 2, 4, 8, 16, 0, 3, 20, 300]);
    const data = rng.bytes(size);
    if (type === 0x42 && rng.chance(0.5)) data[0] &= 0x7f; // a plausible BigInt
    w.ext(type > 127 ? type - 256 : type, data);
    if (type === 0x65 || type === 0x78 || type === 0x73 || type === 0x69) this.junk(1); // these read the next value
  }

  private hugeHeader(): void {
    const rng = this.rng, w = this.w;
    const n = rng.pick([0xffffffff, 0x7fffffff, 0x10000, rng.u32()]);
    const head = rng.int(6);
    if (rng.chance(0.5)) w.array(5).int(1).int(this.id()); // inside an ACQUIRE: key position
    if (head === 0) w.array(n, true);
    else if (head === 1) w.map(n, true);
    else if (head === 2) w.strHeader(n, 4);
    else if (head === 3) w.byte(0xc6).u32(n);
    else if (head === 4) w.byte(0xc9).u32(n).byte(rng.pick(EXT_TYPES));
    else w.byte(0xdc).u16(0xffff);
    w.bytes(rng.bytes(rng.int(64)));
  }

  private deep(): void {
    const rng = this.rng, w = this.w;
    // msgpackr recurses per level: the deepest ones overflow its stack (a DecodeError).
    const depth = rng.chance(0.9) ? rng.pick([16, 100, 1000]) : rng.pick([5000, Math.floor(this.o.maxMessageBytes / 3)]);
    const where = rng.int(3);
    if (where === 1) w.array(5).int(1).int(this.id()); // as the key of an ACQUIRE
    if (where === 2) w.array(3).int(0).int(this.id()).map(1).str('v'); // as HELLO's v
    const mapEvery = rng.pick([0, 2, 7]);
    for (let i = 0; i < depth; i++) { if (mapEvery === 0 || i % mapEvery !== 0) w.byte(0x91); else w.byte(0x81).byte(i & 0x7f); }
    w.nil();
    if (where === 1) w.int(1).int(0);
  }

  private longString(): void {
    const rng = this.rng, w = this.w;
    const max = this.o.maxMessageBytes;
    const n = rng.pick([300, 4096, max - 64, max + 10]);
    const s = rng.chance(0.8) ? 'k'.repeat(n) : '€'.repeat(Math.floor(n / 3));
    if (rng.chance(0.6)) w.array(5).int(1).int(this.id()).str(s).int(1).int(0);
    else w.array(3).int(0).int(this.id()).map(2).str('v').int(1).str('name').str(s);
  }

  private mutate(b: Uint8Array): Uint8Array {
    const rng = this.rng;
    let out = b;
    for (let m = rng.range(1, 4); m > 0; m--) {
      const at = rng.int(out.length + 1);
      switch (rng.int(5)) {
        case 0: if (at < out.length) { out = out.slice(); out[at] ^= 1 << rng.int(8); } break;
        case 1: if (at < out.length) { out = out.slice(); out[at] = rng.pick([0xc1, 0xc0, 0xdd, 0xdf, 0xff, 0x00, 0x7f, rng.u32() & 0xff]); } break;
        case 2: out = concat(out.subarray(0, at), rng.bytes(rng.range(1, 8)), out.subarray(at)); break;
        case 3: out = concat(out.subarray(0, at), out.subarray(Math.min(out.length, at + rng.range(1, 8)))); break;
        default: out = concat(out.subarray(0, at), out.subarray(at, at + rng.range(1, 16)), out.subarray(at)); break;
      }
    }
    return out;
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
