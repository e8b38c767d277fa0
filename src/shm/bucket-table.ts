// Hierarchical token buckets in shared memory, with per-thread allowances.
//
// Threads: every I/O thread and the controller (main thread) hold a
// BucketTable over the same SharedArrayBuffer. Any thread may take, refund and
// refill any bucket; only the controller changes rates and bursts. All
// multi-step updates of one field are CAS loops (Atomics.compareExchange), so
// no thread ever blocks another; nothing here waits. A BucketTable instance
// belongs to one thread: its allowances (below) are plain fields, never shared.
//
// Refill is lazy: a thread that finds time has passed claims the interval by
// CAS on LAST_REFILL_MS (so each millisecond is credited once) and then adds
// elapsed x rate, clamped to the burst, with a CAS loop on TOKENS_MILLI. A take
// is a CAS loop that subtracts only if enough tokens are there, so a bucket's
// tokens never go negative and no more than rate x t + burst is ever taken
// over any interval t.
//
// Reads that only decide whether to try (a field's current value before a
// CAS, limits, rates, waiter counts) are plain typed-array reads: Atomics.load
// is not inlined by V8 and costs several times more, and every decision that
// matters is made by the CAS itself, which fails on a stale value.
//
// ACQUIRE on a key takes from the key and every ancestor (endpoint, service,
// pool), all or nothing: concurrency slots first, then tokens from the leaf up;
// the first level that fails undoes what was taken below it.
//
// Cross-thread priority rule: a waiting request that fails registers itself in
// WAITERS[p] of the bucket that stopped it. A request of priority p may take
// only if no bucket on its chain holds a waiter of a stronger priority (for a
// new arrival: of the same or a stronger one, so it queues behind them). LOW
// traffic on one thread therefore cannot take the tokens a CRITICAL waiter on
// another thread is waiting for.
//
// Allowances: when this thread acquires the same leaf again within one clock
// millisecond, the take grabs a chunk from every level and keeps the surplus
// as this thread's allowance for the leaf; further takes in that millisecond
// are served from it with no atomic operation (the fast path of acquire()),
// as long as no bucket on the chain has a waiter or a concurrency limit. The
// bookkeeping (chunk sizes, give-back, flush) and why it keeps the bounds
// above are in allowances.ts; it is thread-local, like the whole instance.

import { Allowances } from './allowances.ts';
import type { Clock } from './clock.ts';
import type { BucketSpec, KeyIndex } from './key-index.ts';
import {
  BUCKET_FIELDS, BURST_MILLI_INDEX, CONCURRENCY_INDEX, COUNTER_FIELDS, DEPTH_INDEX, IN_FLIGHT_INDEX,
  LAST_REFILL_MS_INDEX, MAX_BURST_MILLI_INDEX, MILLI, PARENT_INDEX, PRIORITY_COUNT, PRIORITY_INDEX, QUEUE_INDEX,
  RATE_MILLI_INDEX, TOKENS_MILLI_INDEX, WAITERS_ANY_INDEX, WAITERS_BASE_INDEX, counterBase, stateBase,
  type ShmViews,
} from './layout.ts';

/** Why an acquire failed (low 2 bits of a failure result). */
export const FAIL_TOKENS = 0;
export const FAIL_CONCURRENCY = 1;
export const FAIL_PRIORITY = 2;

/** acquire() result for success; anything else encodes (bucket, reason). */
export const GRANTED = 0;

export function failBucket(result: number): number { return (result - 1) >> 2; }
export function failReason(result: number): number { return (result - 1) & 3; }
function fail(bucket: number, reason: number): number { return ((bucket << 2) | reason) + 1; }

const MAX_DEPTH = 3;
/** Fields read per take served from an allowance: WAITERS_ANY and CONCURRENCY of each level. */
const GUARDS = 2 * MAX_DEPTH;

export class BucketTable {
  // Fields set in the constructor are `declare`d, so no class field is emitted
  // for them: a field first defined as undefined and then set to an Int32Array
  // loses its exact type in V8, and the inlined acquire() would check the kind
  // of every array it reads.
  declare readonly state: Int32Array;
  declare readonly size: number;
  /** This thread's counter block (Float64), or null for the controller. */
  declare private readonly counters: Float64Array | null;
  declare private readonly counterOffset: number;
  /** chains[b * MAX_DEPTH + i]: i-th bucket from b up to its pool; -1 pads. */
  declare private readonly chains: Int32Array;
  /**
   * guards[b * GUARDS + 2i], [.. + 2i + 1]: the state indices of WAITERS_ANY and
   * CONCURRENCY of the i-th bucket of b's chain (a short chain repeats its
   * pool): what a take served from an allowance reads, branch-free.
   */
  declare private readonly guards: Int32Array;
  /** hasChildren[b] = 1 when some bucket's chain runs through b (b is a service with endpoints, or a pool). */
  declare private readonly hasChildren: Uint8Array;
  declare private readonly clock: Clock;
  /** Which chain levels the last successful acquire took a concurrency slot on (bit i = level i). */
  lastSlotMask = 0;
  /** This thread's allowances (thread-local bookkeeping, allowances.ts). */
  declare private readonly allowances: Allowances;

  constructor(views: ShmViews, clock: Clock, thread: number | null) {
    this.state = views.state;
    this.size = views.layout.bucketCount;
    this.clock = clock;
    this.counters = thread === null ? null : views.counters;
    this.counterOffset = thread === null ? 0 : counterBase(thread, 0, this.size);
    this.chains = new Int32Array(this.size * MAX_DEPTH).fill(-1);
    for (let b = 0; b < this.size; b++) {
      let cur = b;
      for (let i = 0; i < MAX_DEPTH && cur >= 0; i++) {
        this.chains[b * MAX_DEPTH + i] = cur;
        cur = this.state[stateBase(cur) + PARENT_INDEX];
      }
    }
    this.hasChildren = new Uint8Array(this.size);
    for (let i = 0; i < this.size * MAX_DEPTH; i++) if (i % MAX_DEPTH > 0 && this.chains[i] >= 0) this.hasChildren[this.chains[i]] = 1;
    this.guards = new Int32Array(this.size * GUARDS);
    for (let b = 0; b < this.size; b++) {
      let base = 0;
      for (let i = 0; i < MAX_DEPTH; i++) {
        const level = this.chains[b * MAX_DEPTH + i];
        if (level >= 0) base = level * BUCKET_FIELDS;
        this.guards[b * GUARDS + 2 * i] = base + WAITERS_ANY_INDEX;
        this.guards[b * GUARDS + 2 * i + 1] = base + CONCURRENCY_INDEX;
      }
    }
    this.allowances = new Allowances(this, this.chains, MAX_DEPTH, views.layout.threadCount);
  }

  /** Writes the initial state of every bucket (controller, before threads start). */
  static initialize(views: ShmViews, keys: KeyIndex, nowMs: number): void {
    for (const spec of keys.specs) writeSpec(views.state, spec, nowMs);
  }

  nowMs(): number { return this.clock.nowMs(); }
  /** nowMs() at a performance.now() reading (see Clock.msAt). */
  msAt(perfMs: number): number { return this.clock.msAt(perfMs); }

  /** Credits the bucket with the tokens earned since its last refill. */
  refill(b: number, now: number): void {
    const s = this.state;
    const base = b * BUCKET_FIELDS;
    const last = s[base + LAST_REFILL_MS_INDEX];
    const elapsed = (now - last) | 0;
    if (elapsed <= 0) return;
    const add = Math.floor((elapsed * s[base + RATE_MILLI_INDEX]) / 1000);
    if (add <= 0) return;
    if (Atomics.compareExchange(s, base + LAST_REFILL_MS_INDEX, last, now) !== last) return;
    const burst = s[base + BURST_MILLI_INDEX];
    let cur = s[base + TOKENS_MILLI_INDEX];
    for (;;) {
      const next = Math.min(burst, cur + add);
      if (next === cur) return;
      const seen = Atomics.compareExchange(s, base + TOKENS_MILLI_INDEX, cur, next);
      if (seen === cur) return;
      cur = seen;
    }
  }

  private take(base: number, milli: number): boolean {
    const s = this.state;
    let cur = s[base + TOKENS_MILLI_INDEX];
    for (;;) {
      if (cur < milli) return false;
      const seen = Atomics.compareExchange(s, base + TOKENS_MILLI_INDEX, cur, cur - milli);
      if (seen === cur) return true;
      cur = seen;
    }
  }

  /** Gives tokens back (never above the burst). */
  refund(b: number, milli: number): void {
    const s = this.state;
    const base = b * BUCKET_FIELDS;
    const burst = s[base + BURST_MILLI_INDEX];
    let cur = s[base + TOKENS_MILLI_INDEX];
    for (;;) {
      const next = Math.min(burst, cur + milli);
      if (next <= cur) return;
      const seen = Atomics.compareExchange(s, base + TOKENS_MILLI_INDEX, cur, next);
      if (seen === cur) return;
      cur = seen;
    }
  }

  /** True when `tokens` can never fit in some bucket on the chain of `leaf`. */
  exceedsBurst(leaf: number, milli: number): boolean {
    const c = leaf * MAX_DEPTH;
    for (let i = 0; i < MAX_DEPTH; i++) {
      const b = this.chains[c + i];
      if (b < 0) break;
      if (milli > this.state[b * BUCKET_FIELDS + MAX_BURST_MILLI_INDEX]) return true;
    }
    return false;
  }

  /**
   * Takes `milli` milli-tokens and a concurrency slot (where limited) from
   * `leaf` and all its ancestors, or nothing. `priority` is the request's class;
   * `queued` is true for a waiter's retry (it then yields only to stronger
   * classes, not to its own). Returns GRANTED or a failure code.
   */
  acquire(leaf: number, milli: number, priority: number, queued: boolean, now: number): number {
    const a = this.allowances;
    if (now !== a.ms) a.startMillisecond(now);
    const held = a.held[leaf];
    if (held !== 0) {
      if (held >= milli) {
        // Served from the allowance if no bucket on the chain has a waiter or a concurrency limit.
        const s = this.state;
        const g = this.guards;
        const k = leaf * GUARDS;
        const busy = s[g[k]] | s[g[k + 1]] | s[g[k + 2]] | s[g[k + 3]] | s[g[k + 4]] | s[g[k + 5]];
        if (busy === 0) {
          a.held[leaf] = held - milli;
          this.lastSlotMask = 0;
          return GRANTED;
        }
        a.giveBackAll();
      } else {
        a.giveBack(leaf);
      }
    }
    return this.acquireShared(leaf, milli, priority, queued, now);
  }

  /** acquire() on the shared buckets: the priority gate, slots, then a single take or a chunk. */
  private acquireShared(leaf: number, milli: number, priority: number, queued: boolean, now: number): number {
    const s = this.state;
    const chains = this.chains;
    const a = this.allowances;
    const c = leaf * MAX_DEPTH;
    const gate = queued ? priority : priority + 1;
    let minBurst = 0x7fffffff;
    let plain = false; // a waiter or a concurrency limit on the chain: no chunk
    let depth = 0;
    for (; depth < MAX_DEPTH; depth++) {
      const b = chains[c + depth];
      if (b < 0) break;
      const base = b * BUCKET_FIELDS;
      const burst = s[base + BURST_MILLI_INDEX];
      if (burst < minBurst) minBurst = burst;
      if (s[base + WAITERS_ANY_INDEX] === 0) continue;
      plain = true;
      if (a.heldCount > 0) a.giveBackAll(); // the waiter may need tokens held for other leaves
      for (let q = 0; q < gate; q++) if (s[base + WAITERS_BASE_INDEX + q] > 0) return fail(b, FAIL_PRIORITY);
    }
    // Concurrency slots.
    let mask = 0;
    for (let i = 0; i < depth; i++) {
      const base = chains[c + i] * BUCKET_FIELDS;
      const limit = s[base + CONCURRENCY_INDEX];
      if (limit <= 0) continue;
      plain = true;
      let ok = false;
      let cur = s[base + IN_FLIGHT_INDEX];
      while (cur < limit) {
        const seen = Atomics.compareExchange(s, base + IN_FLIGHT_INDEX, cur, cur + 1);
        if (seen === cur) { ok = true; break; }
        cur = seen;
      }
      if (!ok) {
        this.releaseSlots(leaf, mask);
        return fail(chains[c + i], FAIL_CONCURRENCY);
      }
      mask |= 1 << i;
    }
    // Tokens: one take, or (a repeat in this millisecond) a chunk whose surplus is kept.
    const amount = a.chunkFor(leaf, milli, minBurst, plain);
    let at = this.takeChain(c, depth, amount, now);
    if (at < 0) {
      if (amount !== milli) a.keep(leaf, amount - milli);
      this.lastSlotMask = mask;
      return GRANTED;
    }
    if (amount !== milli) { // the chunk did not fit: a single take, as without allowances
      a.chunkFailed(leaf);
      at = this.takeChain(c, depth, milli, now);
    }
    if (at >= 0 && a.heldCount > 0) { // never fail for tokens this thread holds
      a.giveBackAll();
      at = this.takeChain(c, depth, milli, now);
    }
    if (at >= 0) {
      this.releaseSlots(leaf, mask);
      return fail(chains[c + at], FAIL_TOKENS);
    }
    this.lastSlotMask = mask;
    return GRANTED;
  }

  /** Takes `milli` from the first `depth` levels of chain `c`, leaf first: -1, or the level that failed (nothing taken). */
  private takeChain(c: number, depth: number, milli: number, now: number): number {
    const chains = this.chains;
    for (let i = 0; i < depth; i++) {
      const b = chains[c + i];
      this.refill(b, now);
      if (!this.take(b * BUCKET_FIELDS, milli)) {
        for (let j = 0; j < i; j++) this.refund(chains[c + j], milli);
        return i;
      }
    }
    return -1;
  }

  /**
   * Gives back every allowance this thread holds and starts millisecond `now`
   * afresh. An I/O thread calls it when idle (from a timer), so tokens it took
   * for a burst of takes do not wait for its next acquire.
   */
  flushAllowances(now: number): void {
    this.allowances.startMillisecond(now);
  }

  /** True while this thread holds tokens in an allowance (flushAllowances would give some back). */
  holdsAllowances(): boolean { return this.allowances.holdsAny(); }

  /** Undoes a successful acquire: tokens back to every level, slots freed. */
  undoAcquire(leaf: number, milli: number, mask: number): void {
    const c = leaf * MAX_DEPTH;
    for (let i = 0; i < MAX_DEPTH; i++) {
      const b = this.chains[c + i];
      if (b < 0) break;
      this.refund(b, milli);
    }
    this.releaseSlots(leaf, mask);
  }

  /** Frees the concurrency slots a lease took (mask from lastSlotMask). */
  releaseSlots(leaf: number, mask: number): void {
    if (mask === 0) return;
    const c = leaf * MAX_DEPTH;
    for (let i = 0; i < MAX_DEPTH; i++) {
      if (mask & (1 << i)) Atomics.sub(this.state, this.chains[c + i] * BUCKET_FIELDS + IN_FLIGHT_INDEX, 1);
    }
  }

  /** The server's estimate of when `milli` could be granted after a failure. */
  retryAfterMs(result: number, milli: number, now: number): number {
    const b = failBucket(result);
    const base = b * BUCKET_FIELDS;
    if (failReason(result) === FAIL_CONCURRENCY) return 10;
    this.refill(b, now);
    const rate = Atomics.load(this.state, base + RATE_MILLI_INDEX);
    const deficit = milli - Atomics.load(this.state, base + TOKENS_MILLI_INDEX);
    if (rate <= 0) return 1000;
    return Math.max(1, Math.ceil((Math.max(deficit, 0) * 1000) / rate));
  }

  /** Whole tokens left in a bucket, counting this thread's allowances drawn from it (other threads' are not seen). */
  remaining(b: number): number {
    const base = b * BUCKET_FIELDS;
    let milli = Atomics.load(this.state, base + TOKENS_MILLI_INDEX);
    const a = this.allowances;
    // A bucket without children (most keys: every ACQUIRE reply reads one) has only its own allowance.
    if (a.heldCount > 0) {
      milli = Math.min(Atomics.load(this.state, base + BURST_MILLI_INDEX), milli + (this.hasChildren[b] === 0 ? a.held[b] : a.heldFrom(b)));
    }
    return Math.floor(milli / MILLI);
  }

  /** Registers (+1) or unregisters (-1) a waiter of `priority` blocked at bucket b. */
  markWaiter(b: number, priority: number, delta: number): void {
    Atomics.add(this.state, b * BUCKET_FIELDS + WAITERS_BASE_INDEX + priority, delta);
    Atomics.add(this.state, b * BUCKET_FIELDS + WAITERS_ANY_INDEX, delta);
  }

  /** Changes the queue depth gauge of a key. */
  addQueue(b: number, delta: number): number {
    return Atomics.add(this.state, b * BUCKET_FIELDS + QUEUE_INDEX, delta) + delta;
  }

  queue(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + QUEUE_INDEX); }

  /** Adds v to counter `field` of `leaf` and every ancestor, in this thread's block. */
  count(leaf: number, field: number, v: number): void {
    const ctr = this.counters!;
    const c = leaf * MAX_DEPTH;
    for (let i = 0; i < MAX_DEPTH; i++) {
      const b = this.chains[c + i];
      if (b < 0) return;
      ctr[this.counterOffset + b * COUNTER_FIELDS + field] += v;
    }
  }
  /** count() of two fields in one walk up the chain (the per-request pairs of the hot path). */
  countPair(leaf: number, fieldA: number, a: number, fieldB: number, b: number): void {
    const ctr = this.counters!;
    const c = leaf * MAX_DEPTH;
    for (let i = 0; i < MAX_DEPTH; i++) {
      const bucket = this.chains[c + i];
      if (bucket < 0) return;
      const base = this.counterOffset + bucket * COUNTER_FIELDS;
      ctr[base + fieldA] += a;
      ctr[base + fieldB] += b;
    }
  }


  priority(b: number): number { return this.state[b * BUCKET_FIELDS + PRIORITY_INDEX]; }
  depth(b: number): number { return this.state[b * BUCKET_FIELDS + DEPTH_INDEX]; }
  parent(b: number): number { return this.state[b * BUCKET_FIELDS + PARENT_INDEX]; }
  rateTps(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + RATE_MILLI_INDEX) / MILLI; }
  burstTokens(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + BURST_MILLI_INDEX) / MILLI; }
  inFlight(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + IN_FLIGHT_INDEX); }
  concurrency(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + CONCURRENCY_INDEX); }
  waiters(b: number, priority: number): number {
    return Atomics.load(this.state, b * BUCKET_FIELDS + WAITERS_BASE_INDEX + priority);
  }

  /** Sets the refill rate (controller only); tokens earned so far use the old rate. */
  setRate(b: number, tps: number, now: number): void {
    this.refill(b, now);
    // Time that earned no whole milli-token under the old rate is not carried over.
    Atomics.store(this.state, b * BUCKET_FIELDS + LAST_REFILL_MS_INDEX, now);
    Atomics.store(this.state, b * BUCKET_FIELDS + RATE_MILLI_INDEX, Math.max(0, Math.round(tps * MILLI)));
  }

  /** Sets the bucket size (controller only), trimming tokens above it. */
  setBurst(b: number, tokens: number): void {
    const base = b * BUCKET_FIELDS;
    const burst = Math.max(MILLI, Math.round(tokens * MILLI));
    Atomics.store(this.state, base + BURST_MILLI_INDEX, burst);
    for (;;) {
      const cur = Atomics.load(this.state, base + TOKENS_MILLI_INDEX);
      if (cur <= burst || Atomics.compareExchange(this.state, base + TOKENS_MILLI_INDEX, cur, burst) === cur) return;
    }
  }

  /** Sets a key's priority class (controller only: a live `tpsd limits set --priority`). */
  setPriority(b: number, priority: number): void {
    Atomics.store(this.state, b * BUCKET_FIELDS + PRIORITY_INDEX, priority);
  }

  /** Sets the largest burst the bucket may ever have (a reloaded config). */
  setMaxBurst(b: number, tokens: number): void {
    Atomics.store(this.state, b * BUCKET_FIELDS + MAX_BURST_MILLI_INDEX, Math.max(MILLI, Math.round(tokens * MILLI)));
  }

  setConcurrency(b: number, limit: number): void {
    Atomics.store(this.state, b * BUCKET_FIELDS + CONCURRENCY_INDEX, Math.max(0, limit | 0));
  }
}

function writeSpec(state: Int32Array, spec: BucketSpec, nowMs: number): void {
  const base = stateBase(spec.index);
  state[base + TOKENS_MILLI_INDEX] = spec.burst * MILLI;
  state[base + LAST_REFILL_MS_INDEX] = nowMs;
  state[base + RATE_MILLI_INDEX] = Math.round(spec.initialTps * MILLI);
  state[base + BURST_MILLI_INDEX] = spec.burst * MILLI;
  state[base + MAX_BURST_MILLI_INDEX] = spec.burst * MILLI;
  state[base + IN_FLIGHT_INDEX] = 0;
  state[base + CONCURRENCY_INDEX] = spec.concurrency;
  state[base + PRIORITY_INDEX] = spec.priority;
  state[base + PARENT_INDEX] = spec.parent;
  state[base + DEPTH_INDEX] = spec.depth;
  state[base + QUEUE_INDEX] = 0;
  for (let p = 0; p < PRIORITY_COUNT; p++) state[base + WAITERS_BASE_INDEX + p] = 0;
  state[base + WAITERS_ANY_INDEX] = 0;
}
