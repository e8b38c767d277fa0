// The key space in one SharedArrayBuffer, built once by the main thread and
// read by every thread: each key's UTF-8 bytes, an open-addressing hash
// table over them (linear probing, FNV-1a), and the per-key fields a bucket
// spec holds (parent, pool, depth, priority, limits), in typed arrays.
//
// Threads: written only by build(), on the main thread, before any other
// thread exists; read-only afterwards, so any thread reads it without
// atomics (a worker gets the buffer in its workerData, which is published
// after the writes). One copy for the whole process: at 100 000 keys a
// per-thread Map of key objects cost each I/O thread and the telemetry
// thread tens of MiB of heap; this costs about 80 bytes a key, once.
//
// What a key is (config order, tiers, what may be acquired) is key-index.ts;
// this file only stores it. Lookups create no string and allocate nothing.

import { assertConstants } from './layout.ts';

/** One key as build() takes it. */
export interface KeyRow {
  readonly key: string;
  readonly depth: 0 | 1 | 2;
  readonly parent: number;
  /** Bucket index of the pool this key belongs to. */
  readonly pool: number;
  /** 0 CRITICAL .. 3 LOW; PRIORITY_NONE for pools. */
  readonly priority: number;
  readonly burst: number;
  readonly concurrency: number;
  /** The rate the bucket starts with, tokens/s, before the first tick. */
  readonly initialTps: number;
  /** The config entry: a pool, service or endpoint. */
  readonly minTps: number;
  readonly maxTps: number;
  /** Pools: how the gate counts (GATE_WINDOW or GATE_TOKEN_BUCKET, from upstream.window); others GATE_TOKEN_BUCKET. */
  readonly gate: number;
  /** false: a dry run (acquires it would deny are granted and counted as would_deny). */
  readonly enforce: boolean;
  /** A tier bucket: found by find(), never by lookup(). */
  readonly isTier: boolean;
  readonly hasTenants: boolean;
}

// FLAGS bits (one Int32 per key).
const DEPTH_MASK = 0x3;
const PRIORITY_SHIFT = 2; // 4 bits: 0..3, or PRIORITY_NONE
const PRIORITY_MASK = 0xf;
const GATE_SHIFT = 6; // 2 bits
const ENFORCE_BIT = 1 << 8;
const TIER_BIT = 1 << 9;
const TENANTS_BIT = 1 << 10;
/** Header Int32s: key count, slot count, key byte count. */
const HEADER_WORDS = 4;

/** Int32 arrays per key, in buffer order after the header; then keyStart (n + 1), slots, slotHash; then Float64s; then bytes. */
const I32_PER_KEY = ['parent', 'pool', 'concurrency', 'flags'] as const;
const F64_PER_KEY = ['burst', 'initialTps', 'minTps', 'maxTps'] as const;
assertConstants(PRIORITY_MASK >= 8 && GATE_SHIFT >= PRIORITY_SHIFT + 4, 'a priority (or PRIORITY_NONE) fits its key-table bits');

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** FNV-1a's offset basis (as an int32) and prime: hashBytes() and the request path's loop that also checks for ASCII (request-reader.ts). */
export const FNV_OFFSET_BASIS = 0x811c9dc5 | 0;
export const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a of b[start, end), as an int32. */
export function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET_BASIS;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i], FNV_PRIME);
  return h;
}

function slotCountFor(n: number): number {
  let size = 8;
  while (size < n * 2) size *= 2; // at most half full: a miss ends at an empty slot after a short probe
  return size;
}

function align8(x: number): number { return (x + 7) & ~7; }

export class KeyTable {
  readonly sab: SharedArrayBuffer;
  readonly size: number;
  private readonly parent: Int32Array;
  private readonly pool: Int32Array;
  private readonly concurrency: Int32Array;
  private readonly flags: Int32Array;
  private readonly keyStart: Int32Array;
  /** Open-addressing slots: key index + 1, 0 when empty; slotHash holds the key's full hash. */
  private readonly slots: Int32Array;
  private readonly slotHash: Int32Array;
  private readonly slotMask: number;
  private readonly f64: Record<(typeof F64_PER_KEY)[number], Float64Array>;
  private readonly keyBytes: Uint8Array;
  /** Scratch for string lookups (grown to the longest key asked for). */
  private scratch = new Uint8Array(256);

  /** Views over a buffer build() made (in this thread or another). */
  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    const head = new Int32Array(sab, 0, HEADER_WORDS);
    const n = head[0], slotCount = head[1], byteCount = head[2];
    this.size = n;
    let at = HEADER_WORDS * 4;
    const i32 = (len: number): Int32Array => { const v = new Int32Array(sab, at, len); at += len * 4; return v; };
    [this.parent, this.pool, this.concurrency, this.flags] = I32_PER_KEY.map(() => i32(n));
    this.keyStart = i32(n + 1);
    this.slots = i32(slotCount);
    this.slotHash = i32(slotCount);
    this.slotMask = slotCount - 1;
    at = align8(at);
    const f64 = {} as Record<(typeof F64_PER_KEY)[number], Float64Array>;
    for (const name of F64_PER_KEY) { f64[name] = new Float64Array(sab, at, n); at += n * 8; }
    this.f64 = f64;
    this.keyBytes = new Uint8Array(sab, at, byteCount);
  }

  /** Lays out `rows` in a new shared buffer (main thread, at start or reload). */
  static build(rows: readonly KeyRow[]): KeyTable {
    const n = rows.length;
    // Each name encoded into one scratch buffer (no array per key: start-up garbage is heap the process keeps).
    let scratch = new Uint8Array(256);
    const encode = (key: string): number => {
      if (scratch.length < key.length * 3) scratch = new Uint8Array(key.length * 3);
      return textEncoder.encodeInto(key, scratch).written;
    };
    let byteCount = 0;
    for (const r of rows) byteCount += encode(r.key);
    const slotCount = slotCountFor(n);
    const i32Bytes = (HEADER_WORDS + I32_PER_KEY.length * n + n + 1 + 2 * slotCount) * 4;
    const sab = new SharedArrayBuffer(align8(i32Bytes) + F64_PER_KEY.length * n * 8 + byteCount);
    const head = new Int32Array(sab, 0, HEADER_WORDS);
    head[0] = n; head[1] = slotCount; head[2] = byteCount;
    const t = new KeyTable(sab);
    let from = 0;
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      t.parent[i] = r.parent; t.pool[i] = r.pool; t.concurrency[i] = r.concurrency;
      t.flags[i] = r.depth | ((r.priority & PRIORITY_MASK) << PRIORITY_SHIFT) | (r.gate << GATE_SHIFT)
        | (r.enforce ? ENFORCE_BIT : 0) | (r.isTier ? TIER_BIT : 0) | (r.hasTenants ? TENANTS_BIT : 0);
      t.f64.burst[i] = r.burst; t.f64.initialTps[i] = r.initialTps; t.f64.minTps[i] = r.minTps; t.f64.maxTps[i] = r.maxTps;
      t.keyStart[i] = from;
      const len = encode(r.key);
      for (let j = 0; j < len; j++) t.keyBytes[from + j] = scratch[j];
      from += len;
      const h = hashBytes(scratch, 0, len);
      let slot = h & t.slotMask;
      while (t.slots[slot] !== 0) slot = (slot + 1) & t.slotMask;
      t.slots[slot] = i + 1;
      t.slotHash[slot] = h;
    }
    t.keyStart[n] = from;
    return t;
  }

  depth(i: number): 0 | 1 | 2 { return (this.flags[i] & DEPTH_MASK) as 0 | 1 | 2; }
  parentOf(i: number): number { return this.parent[i]; }
  poolOf(i: number): number { return this.pool[i]; }
  priority(i: number): number { return (this.flags[i] >> PRIORITY_SHIFT) & PRIORITY_MASK; }
  gate(i: number): number { return (this.flags[i] >> GATE_SHIFT) & 0x3; }
  enforce(i: number): boolean { return (this.flags[i] & ENFORCE_BIT) !== 0; }
  isTier(i: number): boolean { return (this.flags[i] & TIER_BIT) !== 0; }
  hasTenants(i: number): boolean { return (this.flags[i] & TENANTS_BIT) !== 0; }
  concurrencyOf(i: number): number { return this.concurrency[i]; }
  burst(i: number): number { return this.f64.burst[i]; }
  initialTps(i: number): number { return this.f64.initialTps[i]; }
  minTps(i: number): number { return this.f64.minTps[i]; }
  maxTps(i: number): number { return this.f64.maxTps[i]; }

  /** Key i's name (a new string each call: callers that ask often keep it). */
  name(i: number): string {
    return textDecoder.decode(this.keyBytes.subarray(this.keyStart[i], this.keyStart[i + 1]));
  }

  /** Key i's UTF-8 bytes (a view into shared memory: read-only by contract). */
  bytes(i: number): Uint8Array { return this.keyBytes.subarray(this.keyStart[i], this.keyStart[i + 1]); }

  /** Index of the key whose UTF-8 bytes are b[start, end), tiers included, or -1. Creates no string. */
  findBytes(b: Uint8Array, start: number, end: number): number {
    return this.findHashed(b, start, end, hashBytes(b, start, end));
  }

  /** findBytes() when the caller has the bytes' hash already (hashBytes(b, start, end)): a request's key, hashed once for every lookup. */
  findHashed(b: Uint8Array, start: number, end: number, h: number): number {
    const len = end - start;
    const slots = this.slots, mask = this.slotMask, kb = this.keyBytes, ks = this.keyStart;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const v = slots[at];
      if (v === 0) return -1;
      if (this.slotHash[at] !== h) continue;
      const k = v - 1;
      const from = ks[k];
      if (ks[k + 1] - from !== len) continue;
      let i = 0;
      while (i < len && kb[from + i] === b[start + i]) i++;
      if (i === len) return k;
    }
  }

  /** Index of the key named `key`, tiers included, or -1. */
  find(key: string): number {
    if (this.scratch.length < key.length * 3) this.scratch = new Uint8Array(key.length * 3);
    const { written } = textEncoder.encodeInto(key, this.scratch);
    return this.findBytes(this.scratch, 0, written);
  }
}
