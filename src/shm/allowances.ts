// Per-thread token allowances of one BucketTable (bucket-table.ts).
//
// Threads: an Allowances belongs to the BucketTable that made it, and so to
// one thread; every field here is a plain thread-local value, never shared.
// It touches shared memory only through its table (refunds, which are CAS
// loops there), so nothing here needs an atomic operation or a lock.
//
// Why: a CAS is ~23 ns in V8 and not inlined, so three per grant were the
// whole cost of a take. When this thread acquires the same leaf again within
// the same clock millisecond, the take grabs a chunk of tokens from every
// level at once (one CAS per level, all or nothing as a take is) and keeps the
// surplus as this thread's allowance for that leaf; later takes on the leaf in
// that millisecond are served from it with no atomic operation (the fast path
// in BucketTable.acquire, which reads and decrements `held`).
// The chunk is one take (exactly the plain take) for the first acquire of a
// leaf in a millisecond and doubles with each further grab in the same
// millisecond, so what a thread holds never exceeds what it has granted on
// that leaf in this millisecond; it is also capped per level at
// burst / (ALLOWANCE_SHARE x threads). An allowance is served only if no
// bucket on the chain has a waiter or a concurrency limit (plain reads of
// WAITERS_ANY and CONCURRENCY on every take), so the priority rule stays
// exact and slots stay per lease. Everything held is given back (refunded,
// capped at the burst, as BucketTable.refund() does):
//   - when the millisecond changes (the first acquire with another `now`),
//   - when a take served from it sees a waiter on its chain,
//   - before the table reports a token failure (the take is retried with
//     nothing held, so a thread never fails for tokens it holds itself),
//   - on flushAllowances(now), which an idle thread calls from a timer.
// Tokens held are granted only within the millisecond in which they were
// taken, so every grant carries its take's `now`, and the rate + burst bound
// of the table holds for grants exactly as for takes; a pool's window gate
// (window-rings.ts) counts them at that millisecond and takes back at that
// millisecond's slot what is given back. Chunks are taken only from a
// service's assured bucket, never borrowed (see bucket-table.ts), so what is
// given back goes to the assured bucket. The controller's rate
// and burst changes need no signal: an allowance taken under the old limits is
// granted within that millisecond (as a take just before the change would
// be), and given back later under the new burst, which clamps the refund.

/** What allowances need of their table (BucketTable): its size and the refund of a chain. */
export interface ChainRefund {
  readonly size: number;
  /** Gives `milli` back to every level of `leaf`'s chain it was taken from in the current millisecond (`ms`). */
  refundChain(leaf: number, milli: number, borrowed: boolean): void;
}

/**
 * A thread's allowance on a leaf is at most 1/ALLOWANCE_SHARE of each level's
 * burst, divided among the threads: all threads together hold at most that
 * share of a bucket through any one leaf.
 */
export const ALLOWANCE_SHARE = 16;

export class Allowances {
  // Constructor-set fields are `declare`d (no class field emitted), so V8 keeps
  // their exact typed-array kinds; see BucketTable.
  /** Milli-tokens this thread holds for each leaf, taken from every level of its chain (the table's fast path reads and decrements it). */
  declare readonly held: Int32Array;
  declare private readonly table: ChainRefund;
  /** The table's chains (chains[leaf * depth + i]: i-th bucket from leaf up; -1 pads). */
  declare private readonly chains: Int32Array;
  declare private readonly depth: number;
  /** ALLOWANCE_SHARE x threads: a level's burst divided by this caps a chunk. */
  declare private readonly divisor: number;
  /** Leaves that may hold an allowance (listed[leaf] = 1), heldCount of them (read-only outside this class). */
  declare private readonly heldLeaves: Int32Array;
  declare private readonly listed: Uint8Array;
  heldCount = 0;
  /** The millisecond the allowances belong to (read-only outside this class), and a counter that changes with it. */
  ms = 0;
  private epoch = 1;
  /** seenEpoch[leaf] === epoch: the leaf was acquired in this millisecond; chunk[leaf]: takes in its last grab. */
  declare private readonly seenEpoch: Int32Array;
  declare private readonly chunk: Int32Array;

  constructor(table: ChainRefund, chains: Int32Array, depth: number, threadCount: number) {
    this.table = table;
    this.chains = chains;
    this.depth = depth;
    this.divisor = ALLOWANCE_SHARE * Math.max(1, threadCount);
    const size = table.size;
    this.held = new Int32Array(size);
    this.heldLeaves = new Int32Array(size);
    this.listed = new Uint8Array(size);
    this.seenEpoch = new Int32Array(size);
    this.chunk = new Int32Array(size);
  }

  /**
   * Starts millisecond `now`: everything held is given back (while `ms` is
   * still the millisecond it was taken in: a window gate takes back only what
   * it recorded then), chunks start again at one take.
   */
  startMillisecond(now: number): void {
    if (this.heldCount > 0) this.giveBackAll();
    this.ms = now;
    this.epoch = (this.epoch + 1) | 0;
  }

  /**
   * How much a take of `milli` on `leaf` should grab: `milli` for the leaf's
   * first take in this millisecond or on a `plain` chain (a waiter or a
   * concurrency limit on it), else a chunk of up to twice the last one, capped
   * by the smallest burst on the chain (`minBurst`).
   */
  chunkFor(leaf: number, milli: number, minBurst: number, plain: boolean): number {
    if (this.seenEpoch[leaf] !== this.epoch) {
      this.seenEpoch[leaf] = this.epoch;
      this.chunk[leaf] = 1;
    } else if (!plain && milli > 0) {
      const k = Math.min(this.chunk[leaf] * 2, Math.floor(Math.floor(minBurst / this.divisor) / milli));
      if (k >= 2) { this.chunk[leaf] = k; return k * milli; }
    }
    return milli;
  }

  /** A chunk did not fit: the leaf's next grab starts again at one take. */
  chunkFailed(leaf: number): void {
    this.chunk[leaf] = 1;
  }

  /** Adds `milli` (taken from every level of the leaf's chain) to the leaf's allowance. */
  keep(leaf: number, milli: number): void {
    this.held[leaf] += milli;
    if (this.listed[leaf] === 0) {
      this.listed[leaf] = 1;
      this.heldLeaves[this.heldCount++] = leaf;
    }
  }

  /** Refunds the leaf's allowance to every level of its chain (chunks are only taken from assured buckets). */
  giveBack(leaf: number): void {
    const milli = this.held[leaf];
    if (milli === 0) return;
    this.held[leaf] = 0;
    this.table.refundChain(leaf, milli, false);
  }

  giveBackAll(): void {
    const n = this.heldCount;
    this.heldCount = 0;
    for (let i = 0; i < n; i++) {
      const leaf = this.heldLeaves[i];
      this.listed[leaf] = 0;
      this.giveBack(leaf);
    }
  }

  /** True while some leaf holds tokens (giveBackAll would give some back). */
  holdsAny(): boolean {
    for (let i = 0; i < this.heldCount; i++) if (this.held[this.heldLeaves[i]] !== 0) return true;
    return false;
  }

  /** Milli-tokens held in allowances drawn from bucket b (as a leaf or an ancestor). */
  heldFrom(b: number): number {
    let sum = 0;
    for (let i = 0; i < this.heldCount; i++) {
      const leaf = this.heldLeaves[i];
      const c = leaf * this.depth;
      for (let j = 0; j < this.depth; j++) {
        if (this.chains[c + j] === b) { sum += this.held[leaf]; break; }
      }
    }
    return sum;
  }
}
