// Hierarchical token buckets in shared memory: assured rates, borrowing of
// idle capacity in priority order, and a gate per pool that holds the
// upstream's bound; with per-thread allowances. The scheme and its reasons
// are in docs/allocator.md ("Work-conserving buckets", "The pool's gate").
//
// Threads: every I/O thread and the controller (main thread) hold a
// BucketTable over the same SharedArrayBuffer. Any thread may take, refund and
// refill any bucket; only the controller changes rates and bursts. All
// multi-step updates of one field are CAS loops (bucket-cas.ts), so no thread
// ever blocks another; nothing here waits. A BucketTable instance belongs to
// one thread: its allowances (allowances.ts), window rings (window-rings.ts)
// and loan bookkeeping (pool-loans.ts) are plain fields, never shared.
// Reads that only decide whether to try are plain typed-array reads:
// Atomics.load is not inlined by V8, and the CAS that decides fails on a
// stale value.
//
// ACQUIRE on a key, all or nothing, concurrency slots first, then tokens
// from the leaf up: the endpoint's bucket (its max_tps cap); the service's
// assured bucket and its ceiling (max_tps) or, when the assured bucket is
// empty, a loan (the ceiling and the pool's shared bucket, pool-loans.ts);
// then the pool's gate (a sliding
// 1 s window of the effective capacity or a token bucket at it,
// window-rings.ts). The first level that fails undoes what was taken below.
//
// Cross-thread priority rule: a waiting request that fails registers itself in
// WAITERS[p] of the bucket that stopped it. A request of priority p may take
// from an endpoint or service only if that bucket holds no waiter of a
// stronger priority (for a new arrival: of the same or a stronger one, so it
// queues behind them), and may borrow only under the same rule at the pool.
// Assured takes pass the pool's waiters; when the gate refuses one, borrowers
// and stored bursts stand aside for a while, and while the gate is short a
// min_tps is a reservation whatever higher classes ask: takes it covers go
// first (pool-loans.ts). Only a take that finds its pool so stamped does more
// than the uncontended path (contendedGate). Among takes that do not wait, a
// borrow leaves the pool's trunk in the gate for assured takes, and a window
// books an assured take it refuses a second ahead (pool-loans.ts).
//
// Allowances: when this thread acquires the same leaf again within one clock
// millisecond, the take grabs a chunk from every level and keeps the surplus
// as this thread's allowance for the leaf; further takes in that millisecond
// are served from it with no atomic operation (the fast path of acquire()),
// as long as no bucket on the chain has a waiter or a concurrency limit.
// Chunks come only from assured buckets through a window gate (a borrowing
// take is single; a token-bucket gate would have refilled by the time a
// chunk's surplus came back). The bookkeeping and why it keeps the bounds are
// in allowances.ts.

import { FAIL_CONCURRENCY, FAIL_PRIORITY, FAIL_TOKENS, GRANTED, fail, failBucket, failReason } from './acquire-result.ts';
import { Allowances } from './allowances.ts';
import { earn, putAt, restartAt, takeAt, trim } from './bucket-cas.ts';
import { ASSURED_HOLD_MS, TRUNK_HOLD_MS, paceBurstMilli, paceRateMilli, writeSpec } from './bucket-init.ts';
import type { Clock } from './clock.ts';
import type { KeyIndex } from './key-index.ts';
import {
  ASSURED_BLOCKED_MS_INDEX, BUCKET_FIELDS, BURST_MILLI_INDEX, CONCURRENCY_INDEX, COUNTER_FIELDS, DEPTH_INDEX, GATE_INDEX, GATE_WINDOW,
  IN_FLIGHT_INDEX, LAST_REFILL_MS_INDEX, LOAN_OFFSET, MAX_BURST_MILLI_INDEX, MILLI, PACE_OFFSET, PARENT_INDEX, PRIORITY_INDEX,
  QUEUE_INDEX, RATE_MILLI_INDEX, RESERVE_BLOCKED_MS_INDEX, RESERVE_OFFSET, TOKENS_MILLI_INDEX, WAITERS_ANY_INDEX, WAITERS_BASE_INDEX,
  counterBase, type ShmViews,
} from './layout.ts';
import { BORROW_REFUSED_MS, NO_WAIT_REFUSED_MS, PoolLoans, freshenStamp, takeCeiling } from './pool-loans.ts';
import { WindowRings, putGate, refillGate, takeGate, takeWindow } from './window-rings.ts';

export { FAIL_CONCURRENCY, FAIL_PRIORITY, FAIL_TOKENS, GRANTED, failBucket, failReason } from './acquire-result.ts';
export { ASSURED_HOLD_MS } from './bucket-init.ts';

const MAX_DEPTH = 3;
/** Fields read per take served from an allowance: WAITERS_ANY and CONCURRENCY of each level. */
const GUARDS = 2 * MAX_DEPTH;
/** lastGrant: the slot mask's bits (one per chain level), and the bit for a borrowed grant. */
const SLOT_BITS = (1 << MAX_DEPTH) - 1;
const BORROWED_BIT = 1 << MAX_DEPTH;
// Module-local copies of what the take path reads besides the bucket fields (V8 folds a local const, not an import).
const STAMP = ASSURED_BLOCKED_MS_INDEX;
const HOLD_MS = ASSURED_HOLD_MS;
const LAST = LAST_REFILL_MS_INDEX;
const TRUNK_MS = TRUNK_HOLD_MS;

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
  /** This thread's TOUCHED flags (layout.ts), from touchedOffset; the controller's own table gets a scratch array. */
  declare private readonly touched: Uint8Array;
  declare private readonly touchedOffset: number;
  /** chains[b * MAX_DEPTH + i]: i-th bucket from b up to its pool; -1 pads. */
  declare private readonly chains: Int32Array;
  /** depthOf[b]: the length of b's chain (1 pool, 2 service, 3 endpoint). */
  declare private readonly depthOf: Uint8Array;
  /**
   * guards[b * GUARDS + 2i], [.. + 2i + 1]: the state indices of WAITERS_ANY and
   * CONCURRENCY of the i-th bucket of b's chain (a short chain repeats its
   * pool): what a take served from an allowance reads, branch-free.
   */
  declare private readonly guards: Int32Array;
  /** hasChildren[b] = 1 when some bucket's chain runs through b (b is a service with endpoints, or a pool). */
  declare private readonly hasChildren: Uint8Array;
  /** gateRing[b]: the ring number (window-rings.ts) of b's pool when its gate is a window, else -1 (fixed at start). */
  declare private readonly gateRing: Int32Array;
  declare private readonly clock: Clock;
  /** This thread's allowances (thread-local bookkeeping, allowances.ts). */
  declare private readonly allowances: Allowances;
  /** This thread's takes on window gates, until due back (window-rings.ts). */
  declare private readonly rings: WindowRings;
  /** Borrowing and the protection of assured rates (pool-loans.ts). */
  declare private readonly loans: PoolLoans;
  /**
   * The last successful acquire: bits 0-2, the chain levels it took a
   * concurrency slot on (bit i = level i); BORROWED_BIT, it borrowed. One
   * field, so a grant served from an allowance writes one value.
   */
  private lastGrant = 0;

  /** Which chain levels the last successful acquire took a concurrency slot on (bit i = level i). */
  get lastSlotMask(): number { return this.lastGrant & SLOT_BITS; }
  /** The last successful acquire borrowed (from the service's ceiling and the pool's shared bucket). */
  get lastBorrowed(): boolean { return (this.lastGrant & BORROWED_BIT) !== 0; }

  constructor(views: ShmViews, clock: Clock, thread: number | null) {
    this.state = views.state;
    this.size = views.layout.bucketCount;
    this.clock = clock;
    this.counters = thread === null ? null : views.counters;
    this.counterOffset = thread === null ? 0 : counterBase(thread, 0, this.size);
    this.touched = thread === null ? new Uint8Array(this.size) : views.touched;
    this.touchedOffset = thread === null ? 0 : thread * this.size;
    this.chains = new Int32Array(this.size * MAX_DEPTH).fill(-1);
    this.depthOf = new Uint8Array(this.size);
    for (let b = 0; b < this.size; b++) {
      let cur = b;
      for (let i = 0; i < MAX_DEPTH && cur >= 0; i++) {
        this.chains[b * MAX_DEPTH + i] = cur;
        this.depthOf[b] = i + 1;
        cur = this.state[cur * BUCKET_FIELDS + PARENT_INDEX];
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
    const poolOf = new Int32Array(this.size).fill(-1);
    for (let b = 0; b < this.size; b++) if (this.depthOf[b] === 2) poolOf[b] = this.chains[b * MAX_DEPTH + 1];
    this.loans = new PoolLoans(this.state, poolOf);
    this.allowances = new Allowances(this, this.chains, MAX_DEPTH, views.layout.threadCount);
    this.rings = new WindowRings(this.state, this.size, clock.exact === true);
    this.gateRing = new Int32Array(this.size);
    for (let b = 0; b < this.size; b++) {
      const pool = this.chains[b * MAX_DEPTH + this.depthOf[b] - 1];
      this.gateRing[b] = this.state[pool * BUCKET_FIELDS + GATE_INDEX] === GATE_WINDOW ? this.rings.ordinal[pool] : -1;
    }
  }

  /** Writes the initial state of every bucket (controller, before threads start). */
  static initialize(views: ShmViews, keys: KeyIndex, nowMs: number): void {
    for (const spec of keys.specs) writeSpec(views.state, spec, nowMs);
  }

  nowMs(): number { return this.clock.nowMs(); }
  /** nowMs() at a performance.now() reading (see Clock.msAt). */
  msAt(perfMs: number): number { return this.clock.msAt(perfMs); }
  /** How long a take counts against a window gate, ms (window-rings.ts). */
  get windowMs(): number { return this.rings.delayMs; }

  /** Credits the buckets of b with what they earned since their last refill (the controller does it every tick). */
  refill(b: number, now: number): void {
    const s = this.state;
    const base = b * BUCKET_FIELDS;
    const depth = this.depthOf[b];
    if (depth === 1) {
      refillGate(this.rings, s, b, this.gateRing[b], now);
      freshenStamp(s, base + STAMP, now, HOLD_MS);
      freshenStamp(s, base + RESERVE_BLOCKED_MS_INDEX, now, HOLD_MS);
      freshenStamp(s, base + NO_WAIT_REFUSED_MS, now, TRUNK_HOLD_MS);
      freshenStamp(s, base + BORROW_REFUSED_MS, now, TRUNK_HOLD_MS);
    } else if (depth === 2) {
      this.loans.refillService(b, this.chains[b * MAX_DEPTH + 1], now);
      freshenStamp(s, base + STAMP, now, HOLD_MS);
      earn(s, base + RESERVE_OFFSET, now, 0);
    } else {
      earn(s, base, now, 0);
    }
    if (depth < 3) earn(s, base + LOAN_OFFSET, now, 0);
  }

  /**
   * Gives tokens back to bucket b (never above the burst; to a window gate,
   * only what this thread took there in its current millisecond; to a
   * service, its ceiling too, which its takes passed).
   */
  refund(b: number, milli: number): void {
    if (this.depthOf[b] === 1) { putGate(this.rings, this.state, b, this.gateRing[b], milli, this.allowances.ms); return; }
    putAt(this.state, b * BUCKET_FIELDS, milli, 0);
    if (this.depthOf[b] === 2) putAt(this.state, b * BUCKET_FIELDS + LOAN_OFFSET, milli, 0);
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
   * classes, not to its own); `noWait`, for a request that will not wait if
   * refused (wait_ms 0: the trunk and booking, pool-loans.ts). Returns
   * GRANTED or a failure code.
   */
  acquire(leaf: number, milli: number, priority: number, queued: boolean, now: number, noWait = false): number {
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
          this.lastGrant = 0;
          return GRANTED;
        }
        a.giveBackAll();
      } else {
        a.giveBack(leaf);
      }
    }
    return this.acquireShared(leaf, milli, priority, queued, now, noWait);
  }

  /** acquire() on the shared buckets: the priority gate, slots, then a single take or a chunk. */
  private acquireShared(leaf: number, milli: number, priority: number, queued: boolean, now: number, noWait: boolean): number {
    const s = this.state;
    const chains = this.chains;
    const a = this.allowances;
    const c = leaf * MAX_DEPTH;
    const depth = this.depthOf[leaf];
    const gate = queued ? priority : priority + 1;
    let minBurst = 0x7fffffff;
    // No chunk with a waiter or a concurrency limit on the chain, nor through a
    // token-bucket gate: what a chunk gives back in a later millisecond would
    // find that bucket refilled meanwhile (a window gate takes it back exactly).
    const ring = this.gateRing[leaf];
    let plain = ring < 0;
    for (let i = 0; i < depth; i++) {
      const b = chains[c + i];
      const base = b * BUCKET_FIELDS;
      const burst = s[base + BURST_MILLI_INDEX];
      if (burst < minBurst) minBurst = burst;
      if (s[base + WAITERS_ANY_INDEX] === 0) continue;
      plain = true;
      if (a.heldCount > 0) a.giveBackAll(); // the waiter may need tokens held for other leaves
      if (i === depth - 1) continue; // the pool's waiters bind only borrowers (borrow())
      for (let q = 0; q < gate; q++) if (s[base + WAITERS_BASE_INDEX + q] > 0) return fail(b, FAIL_PRIORITY);
    }
    // Nor while the gate is short: a chunk's surplus would draw on its service's reservation for nothing (contendedGate).
    if (((now - s[chains[c + depth - 1] * BUCKET_FIELDS + STAMP]) | 0) < HOLD_MS) plain = true;
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
    let r = this.takeTokens(c, depth, amount, gate, now, amount === milli, ring, noWait && amount === milli);
    if (r === GRANTED) {
      if (amount !== milli) a.keep(leaf, amount - milli);
      this.lastGrant |= mask;
      return GRANTED;
    }
    if (amount !== milli) { // the chunk did not fit: a single take, as without allowances
      a.chunkFailed(leaf);
      r = this.takeTokens(c, depth, milli, gate, now, true, ring, noWait);
    }
    if (r !== GRANTED && failReason(r) === FAIL_TOKENS && a.heldCount > 0) { // never fail for tokens this thread holds
      a.giveBackAll();
      r = this.takeTokens(c, depth, milli, gate, now, true, ring, false);
    }
    if (r !== GRANTED) {
      this.releaseSlots(leaf, mask);
      return r;
    }
    this.lastGrant |= mask;
    return GRANTED;
  }

  /**
   * Takes `milli` along chain `c` of `depth` levels: the endpoint, the
   * service's assured bucket or (if `mayBorrow`) a loan, then the pool's gate.
   * GRANTED, or the failure (nothing taken). `book`: a no-wait request's
   * single take, which a short window books a second ahead if it refuses it
   * assured (pool-loans.ts).
   */
  private takeTokens(c: number, depth: number, milli: number, gate: number, now: number, mayBorrow: boolean, ring: number, book: boolean): number {
    const s = this.state;
    const chains = this.chains;
    const loans = this.loans;
    const pool = chains[c + depth - 1];
    const svc = depth >= 2 ? chains[c + depth - 2] : -1;
    const ep = depth === 3 ? chains[c] : -1;
    if (ep >= 0) {
      const e = ep * BUCKET_FIELDS;
      earn(s, e, now, 0);
      if (!takeAt(s, e, milli)) return fail(ep, FAIL_TOKENS);
    }
    let borrowed = true; // a pool's own key has no assured bucket: it only borrows
    let contended = false;
    if (svc >= 0) {
      const sb = svc * BUCKET_FIELDS;
      if (((now - s[sb + LAST]) | 0) > 0) loans.refillService(svc, pool, now);
      if (((now - s[pool * BUCKET_FIELDS + STAMP]) | 0) < HOLD_MS) {
        contended = true;
        loans.yieldBurst(svc, pool, milli, now);
      }
      borrowed = !takeAt(s, sb, milli);
      // An assured take passes the service's ceiling too: max_tps (and one burst) bounds all it gets.
      if (!borrowed && !takeCeiling(s, sb, milli, now)) {
        Atomics.add(s, sb + TOKENS_MILLI_INDEX, milli);
        if (ep >= 0) putAt(s, ep * BUCKET_FIELDS, milli, 0);
        return fail(svc, FAIL_TOKENS);
      }
    }
    if (borrowed) {
      const r = mayBorrow ? loans.borrow(svc, pool, milli, gate, now) : fail(svc >= 0 ? svc : pool, FAIL_TOKENS);
      if (r !== GRANTED) {
        if (ep >= 0) putAt(s, ep * BUCKET_FIELDS, milli, 0);
        return r;
      }
    }
    if (contended) return this.contendedGate(ep, svc, pool, milli, borrowed, ring, book, now);
    // The gate; inline for a window gate already swept in this millisecond (most takes). A borrow leaves the trunk (pool-loans.ts).
    const rings = this.rings;
    const keep = borrowed && ((now - s[pool * BUCKET_FIELDS + NO_WAIT_REFUSED_MS]) | 0) < TRUNK_MS ? loans.trunk(pool, now) : 0;
    let passed: boolean;
    if (ring >= 0 && rings.cursor[ring] === now) {
      passed = takeWindow(rings, s, pool * BUCKET_FIELDS, ring, milli, now, keep);
    } else {
      passed = takeGate(rings, s, pool, ring, milli, now, keep);
    }
    if (!passed) {
      // A refused assured take goes back whole: its service is owed it, and a window books it a second ahead (pool-loans.ts).
      if (borrowed) s[pool * BUCKET_FIELDS + BORROW_REFUSED_MS] = now;
      else if (book) loans.refusedNew(svc, pool, ring, rings, milli, now);
      loans.putBelowGate(ep, svc, pool, milli, borrowed, borrowed ? 0 : loans.refused(svc, pool, milli, false, now));
      return fail(pool, FAIL_TOKENS);
    }
    this.lastGrant = borrowed ? BORROWED_BIT : 0;
    return GRANTED;
  }

  /**
   * The gate of takeTokens() while it is short (its pool was lately stamped
   * by a refused assured take): the take draws on its service's reservation;
   * one it does not cover stands aside while a reserved take waits (pool-loans.ts).
   * `ep` and `svc` (-1: none) have been taken from, or the loans (`borrowed`).
   */
  private contendedGate(ep: number, svc: number, pool: number, milli: number, borrowed: boolean, ring: number, book: boolean, now: number): number {
    const loans = this.loans;
    const reserved = !borrowed && loans.reserve(svc, milli, now);
    if (reserved || !loans.reservationWaits(pool, now)) {
      const keep = borrowed && ((now - this.state[pool * BUCKET_FIELDS + NO_WAIT_REFUSED_MS]) | 0) < TRUNK_MS ? loans.trunk(pool, now) : 0;
      if (takeGate(this.rings, this.state, pool, ring, milli, now, keep)) {
        this.lastGrant = borrowed ? BORROWED_BIT : 0;
        return GRANTED;
      }
      if (reserved) loans.unreserve(svc, milli);
    }
    if (borrowed) this.state[pool * BUCKET_FIELDS + BORROW_REFUSED_MS] = now;
    else if (book) loans.refusedNew(svc, pool, ring, this.rings, milli, now);
    loans.putBelowGate(ep, svc, pool, milli, borrowed, borrowed ? 0 : loans.refused(svc, pool, milli, reserved, now));
    return fail(pool, FAIL_TOKENS);
  }

  /**
   * Gives back a grant of `milli` on `leaf` taken in this thread's current
   * millisecond: to every level it came from (`borrowed`: the loans, not the
   * assured bucket). Allowances give their surplus back through it.
   */
  refundChain(leaf: number, milli: number, borrowed: boolean): void {
    const c = leaf * MAX_DEPTH;
    const depth = this.depthOf[leaf];
    const pool = this.chains[c + depth - 1];
    this.loans.putBelowGate(depth === 3 ? this.chains[c] : -1, depth >= 2 ? this.chains[c + depth - 2] : -1, pool, milli,
      borrowed || depth === 1, 0);
    putGate(this.rings, this.state, pool, this.gateRing[leaf], milli, this.allowances.ms);
  }

  /**
   * Gives back every allowance this thread holds and starts millisecond `now`
   * afresh; its window takes that are due go back to their gates. An I/O
   * thread calls it when idle (from a timer), so tokens it took for a burst of
   * takes do not wait for its next acquire.
   */
  flushAllowances(now: number): void {
    this.allowances.startMillisecond(now);
    this.rings.sweepAll(this.state, now);
  }

  /** True while this thread holds tokens in an allowance (flushAllowances would give some back). */
  holdsAllowances(): boolean { return this.allowances.holdsAny(); }

  /** Milliseconds until this thread's next window take is due back (flushAllowances then returns it), or -1 for none. */
  windowReturnInMs(now: number): number { return this.rings.nextDueInMs(now); }

  /** Undoes the last successful acquire (`milli` on `leaf`): tokens back to every level, slots freed. */
  undoAcquire(leaf: number, milli: number, mask: number): void {
    this.refundChain(leaf, milli, this.lastBorrowed);
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
    let deficit = milli - Atomics.load(this.state, base + TOKENS_MILLI_INDEX);
    // A window gate may have room in its second and none in its pace.
    if (this.depthOf[b] === 1 && this.state[base + GATE_INDEX] === GATE_WINDOW) {
      deficit = Math.max(deficit, milli - Atomics.load(this.state, base + PACE_OFFSET + TOKENS_MILLI_INDEX));
    }
    if (rate <= 0) return 1000;
    return Math.max(1, Math.ceil((Math.max(deficit, 0) * 1000) / rate));
  }

  /** Whole tokens left in a bucket (0 or more), counting this thread's allowances drawn from it (other threads' are not seen). */
  remaining(b: number): number {
    const base = b * BUCKET_FIELDS;
    let milli = Atomics.load(this.state, base + TOKENS_MILLI_INDEX);
    const a = this.allowances;
    // A bucket without children (most keys: every ACQUIRE reply reads one) has only its own allowance.
    if (a.heldCount > 0) {
      milli = Math.min(Atomics.load(this.state, base + BURST_MILLI_INDEX), milli + (this.hasChildren[b] === 0 ? a.held[b] : a.heldFrom(b)));
    }
    return milli > 0 ? Math.floor(milli / MILLI) : 0;
  }

  /** Registers (+1) or unregisters (-1) a waiter of `priority` blocked at bucket b. */
  markWaiter(b: number, priority: number, delta: number): void {
    Atomics.add(this.state, b * BUCKET_FIELDS + WAITERS_BASE_INDEX + priority, delta);
    Atomics.add(this.state, b * BUCKET_FIELDS + WAITERS_ANY_INDEX, delta);
  }

  /** Changes the queue depth gauge of a key. */
  addQueue(b: number, delta: number): number {
    this.touched[this.touchedOffset + b] = 1;
    return Atomics.add(this.state, b * BUCKET_FIELDS + QUEUE_INDEX, delta) + delta;
  }

  queue(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + QUEUE_INDEX); }

  /** Adds v to counter `field` of `leaf` and every ancestor, in this thread's block. */
  count(leaf: number, field: number, v: number): void {
    this.touched[this.touchedOffset + leaf] = 1; // the controller visits leaf and its chain next tick (touched-keys.ts)
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
    this.touched[this.touchedOffset + leaf] = 1;
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
  /** The refill rate: a pool's capacity at its gate, a service's assured rate, an endpoint's cap. */
  rateTps(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + RATE_MILLI_INDEX) / MILLI; }
  burstTokens(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + BURST_MILLI_INDEX) / MILLI; }
  /** The LOAN bucket's rate: what a pool lends beyond the assured rates, or what a service may borrow. */
  loanTps(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + LOAN_OFFSET + RATE_MILLI_INDEX) / MILLI; }
  /** Whole tokens in the LOAN bucket. */
  loanTokens(b: number): number { return Math.floor(Atomics.load(this.state, b * BUCKET_FIELDS + LOAN_OFFSET) / MILLI); }
  /** True when pool b's gate is a sliding window. */
  isWindowGate(b: number): boolean { return this.state[b * BUCKET_FIELDS + GATE_INDEX] === GATE_WINDOW; }
  inFlight(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + IN_FLIGHT_INDEX); }
  concurrency(b: number): number { return Atomics.load(this.state, b * BUCKET_FIELDS + CONCURRENCY_INDEX); }
  waiters(b: number, priority: number): number {
    return Atomics.load(this.state, b * BUCKET_FIELDS + WAITERS_BASE_INDEX + priority);
  }

  /**
   * Sets the refill rate (controller only); tokens earned so far use the old
   * rate. A window gate's capacity changes at once: what the last second's
   * takes leave of it moves by the difference (and may go below 0).
   */
  setRate(b: number, tps: number, now: number): void {
    const base = b * BUCKET_FIELDS;
    const milli = Math.max(0, Math.round(tps * MILLI));
    if (this.depthOf[b] === 1 && this.state[base + GATE_INDEX] === GATE_WINDOW) {
      const before = Atomics.exchange(this.state, base + RATE_MILLI_INDEX, milli);
      Atomics.add(this.state, base + TOKENS_MILLI_INDEX, milli - before);
      // The pace follows the rate from now on (what it earned so far at the old one).
      const pace = base + PACE_OFFSET;
      earn(this.state, pace, now, 0);
      restartAt(this.state, pace, now);
      Atomics.store(this.state, pace + RATE_MILLI_INDEX, paceRateMilli(milli));
      this.sizePace(base);
      return;
    }
    this.refill(b, now);
    restartAt(this.state, base, now); // from `now`, or from a later time a thread ahead already claimed
    Atomics.store(this.state, base + RATE_MILLI_INDEX, milli);
  }

  /**
   * Sets the bucket size (controller only), trimming tokens above it when it
   * shrinks (an unchanged size leaves what a refused service is owed above
   * it, see pool-loans.ts); a window gate's sizes its pace.
   */
  setBurst(b: number, tokens: number): void {
    const base = b * BUCKET_FIELDS;
    const burst = Math.max(MILLI, Math.round(tokens * MILLI));
    const before = Atomics.exchange(this.state, base + BURST_MILLI_INDEX, burst);
    if (this.depthOf[b] === 1 && this.state[base + GATE_INDEX] === GATE_WINDOW) {
      this.sizePace(base);
      return;
    }
    if (burst >= before) return;
    trim(this.state, base, burst);
  }

  /** A window gate's pace holds its burst or PACE_HOLD_MS of its rate (layout.ts), never more. */
  private sizePace(base: number): void {
    const size = paceBurstMilli(this.state[base + BURST_MILLI_INDEX], this.state[base + RATE_MILLI_INDEX]);
    Atomics.store(this.state, base + PACE_OFFSET + BURST_MILLI_INDEX, size);
    trim(this.state, base + PACE_OFFSET, size);
  }

  /**
   * Empties a token-bucket gate's stored tokens (controller only): after a
   * 429, or once the capacity came down, the upstream's own burst is spent,
   * so what the gate stored would pass requests it refuses. A window gate counts takes, not stored tokens:
   * left alone.
   */
  drainGate(pool: number): void {
    const base = pool * BUCKET_FIELDS;
    if (this.state[base + GATE_INDEX] === GATE_WINDOW) return;
    trim(this.state, base, 0);
  }

  /** Sets the LOAN bucket's rate and size (controller only): a pool's shared bucket, a service's borrowing ceiling. */
  setLoan(b: number, tps: number, burstTokens: number, now: number): void {
    const s = this.state;
    const i = b * BUCKET_FIELDS + LOAN_OFFSET;
    earn(s, i, now, 0);
    restartAt(s, i, now);
    Atomics.store(s, i + RATE_MILLI_INDEX, Math.max(0, Math.round(tps * MILLI)));
    const burst = Math.max(MILLI, Math.round(burstTokens * MILLI));
    Atomics.store(s, i + BURST_MILLI_INDEX, burst);
    trim(s, i, burst);
  }

  /**
   * Sets service b's reservation (controller only): its min_tps, as far as
   * its allocation covers it; the bucket holds a second of it (pool-loans.ts).
   */
  setReserve(b: number, tps: number, now: number): void {
    const s = this.state;
    const i = b * BUCKET_FIELDS + RESERVE_OFFSET;
    const rate = Math.max(0, Math.round(tps * MILLI));
    earn(s, i, now, 0);
    restartAt(s, i, now);
    Atomics.store(s, i + RATE_MILLI_INDEX, rate);
    const burst = rate > 0 ? Math.max(MILLI, rate) : 0;
    Atomics.store(s, i + BURST_MILLI_INDEX, burst);
    trim(s, i, burst);
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
