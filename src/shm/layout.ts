// The one description of tpsd's shared memory. Every offset used anywhere in
// the code is named here; no other module indexes the buffer with a raw number.
//
// One SharedArrayBuffer holds five regions, one after the other:
//
//   byte 0
//   +--------------------------------------------------------------+
//   | HEADER       Int32 x HEADER_FIELDS                            |
//   |   MAGIC | VERSION | BUCKET_COUNT | THREAD_COUNT | MODE |       |
//   |   SHUTTING_DOWN | TICK_SEQ | CONNECTIONS                     |
//   +--------------------------------------------------------------+
//   | BUCKET STATE Int32 x BUCKET_FIELDS per bucket (64 bytes)      |
//   |   TOKENS_MILLI | LAST_REFILL_MS | RATE_MILLI | BURST_MILLI |  |
//   |   IN_FLIGHT | CONCURRENCY | PRIORITY | PARENT | DEPTH |       |
//   |   QUEUE | WAITERS[4] (by priority) | WAITERS_ANY |             |
//   |   MAX_BURST_MILLI                                             |
//   |   written by every I/O thread with Atomics (CAS loops)        |
//   +--------------------------------------------------------------+
//   | STATS        Float64 x STATS_FIELDS per bucket                |
//   |   per-tick figures written by the controller (main thread),   |
//   |   read by I/O threads for STATUS and /metrics                 |
//   +--------------------------------------------------------------+
//   | COUNTERS     Float64 x COUNTER_FIELDS per bucket per thread   |
//   |   cumulative, each block written by exactly one I/O thread    |
//   |   (no atomics needed); the controller sums blocks and diffs   |
//   +--------------------------------------------------------------+
//   | HINTS        Int32 x HINT_FIELDS per bucket (8 bytes)         |
//   |   HINT_LOW_MILLI | HINT_HIGH_MILLI: the lowest and highest     |
//   |   upstream rate RELEASE hints reported since the controller   |
//   |   last took them (pools only; hint-board.ts): lowered/raised  |
//   |   by any I/O thread with a CAS, reset by the controller with  |
//   |   Atomics.exchange each tick                                  |
//   +--------------------------------------------------------------+
//
// Units: tokens are fixed point in thousandths ("milli-tokens"), rates are
// milli-tokens per second (= tokens/s x 1000), times are whole milliseconds
// since the daemon's epoch, kept as int32 and compared with wrap-around
// arithmetic ((a - b) | 0), so they stay correct across the 24.8-day wrap as
// long as every bucket is refilled at least that often (the controller
// refills every bucket on every tick).
//
// STATS and COUNTERS are read across threads with plain Float64 accesses
// (Atomics works only on integer arrays). Each field has one writer (STATS:
// the controller, stats-writer.ts and controller.ts; a COUNTERS block: its
// I/O thread, BucketTable.count with `+=`), so no update is lost; what is left
// is a read racing a write, by io/status.ts (STATUS, /v1/status) and
// io/metrics.ts (/metrics) on an I/O thread, and by the controller summing
// counters each tick (control/counter-deltas.ts). JavaScript does not promise
// such a read is whole: it may be torn, bytes of the old value with bytes of
// the new. (V8 uses one 8-byte access, which x64 does not tear when aligned,
// and every Float64 here is; nothing relies on it.) Worst case:
//   - STATUS or /metrics: one wrong figure in one reply (a counter that seems
//     to go back reads to Prometheus as a reset); the next read is right.
//   - the controller: one key's figures wrong for one tick (and in its
//     telemetry row); the next tick's delta, taken from the torn total,
//     undoes it. That tick's rates still pass the safety layer (max_tps, the
//     pool's effective capacity, never above the configured one); a phantom
//     429 may make capacity discovery shrink until it probes back.
// No grant reads a Float64: grants are CASes on the Int32 bucket state, so a
// torn read never admits more than rate x t + burst. A seqlock would tax
// every counter update on the hot path for figures that only observe.

import { MAX_BUCKETS, MAX_BURST, MAX_CONCURRENCY, MAX_TICK_MS, MAX_TPS } from '../config/defaults.ts';
import { PRIORITIES } from '../config/types.ts';

/** Throws (at module load) when a relationship between constants, named by `relationship`, does not hold. */
export function assertConstants(holds: boolean, relationship: string): void {
  if (!holds) throw new Error(`broken invariant between constants: ${relationship}`);
}

/** Largest value an Int32Array field holds. */
export const INT32_MAX = 2 ** 31 - 1;

import { RUNNING_MODES } from '../config/types.ts';

export const SHM_MAGIC = 0x74707364; // "tpsd"
export const SHM_VERSION = 2;

// Header (Int32 indices).
export const MAGIC_INDEX = 0;
export const VERSION_INDEX = 1;
export const BUCKET_COUNT_INDEX = 2;
export const THREAD_COUNT_INDEX = 3;
/** The policy mode in force, as an index into MODE_NAMES. */
export const MODE_INDEX = 4;
/** 1 once the daemon is stopping: I/O threads answer SHUTTING_DOWN. */
export const SHUTTING_DOWN_INDEX = 5;
/** Incremented by the controller after each tick's stats are written. */
export const TICK_SEQ_INDEX = 6;
/** Open protocol connections, all threads together. */
export const CONNECTIONS_INDEX = 7;
export const HEADER_FIELDS = CONNECTIONS_INDEX + 1;
export const HEADER_BYTES = HEADER_FIELDS * Int32Array.BYTES_PER_ELEMENT;

/** MODE_INDEX's values: the config's running modes (config/types.ts), in their order. */
export const MODE_NAMES = RUNNING_MODES;

// Bucket state (Int32 indices relative to the bucket's base).
export const TOKENS_MILLI_INDEX = 0;
export const LAST_REFILL_MS_INDEX = 1;
export const RATE_MILLI_INDEX = 2;
export const BURST_MILLI_INDEX = 3;
/** Leases held; maintained only while CONCURRENCY > 0. */
export const IN_FLIGHT_INDEX = 4;
/** Max leases held at once; 0 = unlimited. */
export const CONCURRENCY_INDEX = 5;
/** 0 CRITICAL .. 3 LOW; pools carry PRIORITY_NONE. */
export const PRIORITY_INDEX = 6;
/** Bucket index of the parent key, or -1 for a pool. */
export const PARENT_INDEX = 7;
/** 0 pool, 1 service, 2 endpoint. */
export const DEPTH_INDEX = 8;
/** Waiting acquires for this key, all threads together. */
export const QUEUE_INDEX = 9;
/** WAITERS_BASE_INDEX + p: waiters of priority p blocked at this bucket. */
export const WAITERS_BASE_INDEX = 10;
export const PRIORITY_COUNT = 4;
/** Sum of WAITERS[0..3]: one read tells the common case (nobody waits). */
export const WAITERS_ANY_INDEX = WAITERS_BASE_INDEX + PRIORITY_COUNT;
/**
 * The largest burst the bucket may ever have (its configured burst). The
 * controller may run a bucket below it; TOKENS_EXCEED_BURST is judged here.
 */
export const MAX_BURST_MILLI_INDEX = 15;
export const BUCKET_FIELDS = MAX_BURST_MILLI_INDEX + 1;
export const BUCKET_BYTES = BUCKET_FIELDS * Int32Array.BYTES_PER_ELEMENT;

export const PRIORITY_NONE = PRIORITY_COUNT;
export const MILLI = 1000;
/**
 * Upper bound of burst and rate in tokens (config's MAX_BURST and MAX_TPS),
 * so milli-units fit in int32 (asserted at the end of this file).
 */
export const MAX_TOKENS = 2_000_000;

// Stats (Float64 indices relative to the bucket's base), per tick.
export const STAT_TPS_INDEX = 0;
export const STAT_DEMAND_TPS_INDEX = 1;
export const STAT_DENIED_TPS_INDEX = 2;
export const STAT_THROTTLED_TPS_INDEX = 3;
export const STAT_FAILED_TPS_INDEX = 4;
export const STAT_LATENCY_AVG_US_INDEX = 5;
/** Pools: the capacity after 429 discovery; services: unused. */
export const STAT_EFFECTIVE_CAPACITY_INDEX = 6;
/** Pools: the configured (or live-set) capacity. */
export const STAT_CAPACITY_INDEX = 7;
export const STATS_FIELDS = STAT_CAPACITY_INDEX + 1;
export const STATS_BYTES = STATS_FIELDS * Float64Array.BYTES_PER_ELEMENT;

// Counters (Float64 indices relative to (thread, bucket) base), cumulative.
export const C_REQUESTED_INDEX = 0; // tokens asked for
export const C_GRANTED_INDEX = 1; // tokens granted
export const C_DENIED_INDEX = 2; // tokens denied (at once or at the deadline)
export const C_ACQUIRES_INDEX = 3; // ACQUIRE requests
export const C_GRANTS_INDEX = 4; // leases handed out
export const C_RELEASED_OK_INDEX = 5;
export const C_RELEASED_FAILED_INDEX = 6;
export const C_RELEASED_THROTTLED_INDEX = 7; // upstream answered 429
export const C_LATENCY_SUM_US_INDEX = 8;
export const C_LATENCY_COUNT_INDEX = 9;
export const C_EXPIRED_INDEX = 10; // leases never released
export const C_WAIT_SUM_MS_INDEX = 11; // time granted waiters spent queued
export const C_RELEASED_TIMEOUT_INDEX = 12; // outcome 3: the upstream gave no answer in time
export const C_HINTS_INDEX = 13; // RELEASEs whose hints carried the upstream's limit
export const COUNTER_FIELDS = C_HINTS_INDEX + 1;
export const COUNTER_BYTES = COUNTER_FIELDS * Float64Array.BYTES_PER_ELEMENT;

// Hints (Int32 indices relative to the bucket's base): hinted upstream rates,
// milli-tokens/s, clamped to [0, MAX_TOKENS * MILLI].
/** Lowest rate hinted since the last take; HINT_NONE_LOW when none. */
export const HINT_LOW_MILLI_INDEX = 0;
/** Highest rate hinted since the last take; HINT_NONE_HIGH when none. */
export const HINT_HIGH_MILLI_INDEX = 1;
export const HINT_FIELDS = HINT_HIGH_MILLI_INDEX + 1;
export const HINT_BYTES = HINT_FIELDS * Int32Array.BYTES_PER_ELEMENT;
export const HINT_NONE_LOW = INT32_MAX;
export const HINT_NONE_HIGH = -1;

export interface ShmLayout {
  readonly bucketCount: number;
  readonly threadCount: number;
  readonly stateByteOffset: number;
  readonly statsByteOffset: number;
  readonly countersByteOffset: number;
  readonly hintsByteOffset: number;
  readonly byteLength: number;
}

export function computeLayout(bucketCount: number, threadCount: number): ShmLayout {
  const stateByteOffset = HEADER_BYTES;
  const statsByteOffset = stateByteOffset + bucketCount * BUCKET_BYTES; // 8-aligned (asserted below)
  const countersByteOffset = statsByteOffset + bucketCount * STATS_BYTES;
  const hintsByteOffset = countersByteOffset + threadCount * bucketCount * COUNTER_BYTES;
  const byteLength = hintsByteOffset + bucketCount * HINT_BYTES;
  return { bucketCount, threadCount, stateByteOffset, statsByteOffset, countersByteOffset, hintsByteOffset, byteLength };
}

/** Typed views over one shared buffer. */
export interface ShmViews {
  readonly layout: ShmLayout;
  readonly sab: SharedArrayBuffer;
  readonly header: Int32Array;
  readonly state: Int32Array;
  readonly stats: Float64Array;
  readonly counters: Float64Array;
  readonly hints: Int32Array;
}

/**
 * Attaches to a buffer that allocateShm() made (an I/O thread's view of the
 * daemon's buffer). Refuses a buffer of another size, one whose header does
 * not carry SHM_MAGIC and SHM_VERSION (not tpsd's shared memory, or a layout
 * this code does not know), or one made for other bucket or thread counts.
 */
export function viewsOf(sab: SharedArrayBuffer, bucketCount: number, threadCount: number): ShmViews {
  const layout = computeLayout(bucketCount, threadCount);
  if (sab.byteLength !== layout.byteLength) {
    throw new Error(`shared buffer is ${sab.byteLength} bytes, layout needs ${layout.byteLength}`);
  }
  const views = mapViews(sab, layout);
  checkHeader(views.header, bucketCount, threadCount);
  return views;
}

function checkHeader(header: Int32Array, bucketCount: number, threadCount: number): void {
  const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
  const magic = header[MAGIC_INDEX];
  if (magic !== SHM_MAGIC) {
    throw new Error(`shared buffer has magic ${hex(magic)}, not tpsd's ${hex(SHM_MAGIC)}: not a buffer made by allocateShm()`);
  }
  const version = header[VERSION_INDEX];
  if (version !== SHM_VERSION) {
    throw new Error(`shared buffer has layout version ${version}, this code knows version ${SHM_VERSION}: made by another tpsd build`);
  }
  const buckets = header[BUCKET_COUNT_INDEX], threads = header[THREAD_COUNT_INDEX];
  if (buckets !== bucketCount || threads !== threadCount) {
    throw new Error(`shared buffer holds ${buckets} buckets for ${threads} threads, attached as ${bucketCount} for ${threadCount}`);
  }
}

function mapViews(sab: SharedArrayBuffer, layout: ShmLayout): ShmViews {
  const { bucketCount, threadCount } = layout;
  return {
    layout,
    sab,
    header: new Int32Array(sab, 0, HEADER_FIELDS),
    state: new Int32Array(sab, layout.stateByteOffset, bucketCount * BUCKET_FIELDS),
    stats: new Float64Array(sab, layout.statsByteOffset, bucketCount * STATS_FIELDS),
    counters: new Float64Array(sab, layout.countersByteOffset, threadCount * bucketCount * COUNTER_FIELDS),
    hints: new Int32Array(sab, layout.hintsByteOffset, bucketCount * HINT_FIELDS),
  };
}

/** A new zeroed buffer for the layout, its header written (main thread, before any thread attaches). */
export function allocateShm(bucketCount: number, threadCount: number): ShmViews {
  const layout = computeLayout(bucketCount, threadCount);
  const views = mapViews(new SharedArrayBuffer(layout.byteLength), layout);
  views.header[MAGIC_INDEX] = SHM_MAGIC;
  views.header[VERSION_INDEX] = SHM_VERSION;
  views.header[BUCKET_COUNT_INDEX] = bucketCount;
  views.header[THREAD_COUNT_INDEX] = threadCount;
  for (let b = 0; b < bucketCount; b++) {
    views.hints[b * HINT_FIELDS + HINT_LOW_MILLI_INDEX] = HINT_NONE_LOW;
    views.hints[b * HINT_FIELDS + HINT_HIGH_MILLI_INDEX] = HINT_NONE_HIGH;
  }
  return views;
}

/** Base index of bucket b in `state`. */
export function stateBase(b: number): number { return b * BUCKET_FIELDS; }
/** Base index of bucket b in `stats`. */
export function statsBase(b: number): number { return b * STATS_FIELDS; }
/** Base index of (thread t, bucket b) in `counters`. */
export function counterBase(t: number, b: number, bucketCount: number): number {
  return (t * bucketCount + b) * COUNTER_FIELDS;
}

/** Counter `field` of bucket b, summed over every thread's block. */
export function sumCounter(views: ShmViews, b: number, field: number): number {
  let n = 0;
  for (let t = 0; t < views.layout.threadCount; t++) n += views.counters[counterBase(t, b, views.layout.bucketCount) + field];
  return n;
}

// Relationships between the constants above, checked when this module loads
// (in every thread), so a change that breaks one fails at once, by name.

/** The named indices of a region are 0 .. count - 1, each exactly once. */
function assertFields(region: string, count: number, indices: readonly number[]): void {
  const sorted = [...indices].sort((a, b) => a - b);
  assertConstants(sorted.length === count && sorted.every((index, i) => index === i),
    `${region}: its named indices are 0..${count - 1}, each used once`);
}
const range = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);
assertFields('HEADER', HEADER_FIELDS, [MAGIC_INDEX, VERSION_INDEX, BUCKET_COUNT_INDEX, THREAD_COUNT_INDEX, MODE_INDEX,
  SHUTTING_DOWN_INDEX, TICK_SEQ_INDEX, CONNECTIONS_INDEX]);
assertFields('BUCKET STATE', BUCKET_FIELDS, [TOKENS_MILLI_INDEX, LAST_REFILL_MS_INDEX, RATE_MILLI_INDEX, BURST_MILLI_INDEX,
  IN_FLIGHT_INDEX, CONCURRENCY_INDEX, PRIORITY_INDEX, PARENT_INDEX, DEPTH_INDEX, QUEUE_INDEX,
  ...range(WAITERS_BASE_INDEX, PRIORITY_COUNT), WAITERS_ANY_INDEX, MAX_BURST_MILLI_INDEX]);
assertFields('STATS', STATS_FIELDS, [STAT_TPS_INDEX, STAT_DEMAND_TPS_INDEX, STAT_DENIED_TPS_INDEX, STAT_THROTTLED_TPS_INDEX,
  STAT_FAILED_TPS_INDEX, STAT_LATENCY_AVG_US_INDEX, STAT_EFFECTIVE_CAPACITY_INDEX, STAT_CAPACITY_INDEX]);
assertFields('COUNTERS', COUNTER_FIELDS, [C_REQUESTED_INDEX, C_GRANTED_INDEX, C_DENIED_INDEX, C_ACQUIRES_INDEX,
  C_GRANTS_INDEX, C_RELEASED_OK_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_THROTTLED_INDEX, C_LATENCY_SUM_US_INDEX,
  C_LATENCY_COUNT_INDEX, C_EXPIRED_INDEX, C_WAIT_SUM_MS_INDEX, C_RELEASED_TIMEOUT_INDEX, C_HINTS_INDEX]);
assertFields('HINTS', HINT_FIELDS, [HINT_LOW_MILLI_INDEX, HINT_HIGH_MILLI_INDEX]);
assertConstants(MAX_TOKENS * MILLI < HINT_NONE_LOW && HINT_NONE_HIGH < 0,
  'HINT_NONE_LOW/HIGH lie outside [0, MAX_TOKENS * MILLI], the range of a hinted rate: "none" never reads as a rate');
assertConstants(BUCKET_BYTES === 64, 'BUCKET_BYTES === 64, as the map at the top says');
// Float64Array needs a byte offset that is a multiple of 8; STATS starts after
// the header and the buckets, COUNTERS after STATS.
assertConstants(HEADER_BYTES % Float64Array.BYTES_PER_ELEMENT === 0 && BUCKET_BYTES % Float64Array.BYTES_PER_ELEMENT === 0,
  'HEADER_BYTES and BUCKET_BYTES are multiples of 8, so STATS and COUNTERS are 8-aligned');
assertConstants(COUNTER_BYTES % Int32Array.BYTES_PER_ELEMENT === 0, 'COUNTER_BYTES is a multiple of 4, so HINTS (Int32, after COUNTERS) is 4-aligned');

// Tokens. TOKENS, RATE, BURST and MAX_BURST are Int32 milli-token fields, and
// an allowance (allowances.ts) is at most a burst: every value stored is at
// most MAX_TOKENS * MILLI (the config caps rates and bursts at it, a request
// asking for more is refused before it is multiplied). A larger value would
// wrap negative in the Int32Array, so the bound is 2^31 - 1, not 2^32. The
// CAS loops' sums (tokens + refill, tokens + refund) are formed in doubles
// and clamped to the burst before they are stored: they need only be exact.
assertConstants(MAX_TPS === MAX_TOKENS && MAX_BURST === MAX_TOKENS, 'MAX_TPS === MAX_BURST === MAX_TOKENS (config/defaults.ts)');
assertConstants(MAX_TOKENS * MILLI <= INT32_MAX, 'MAX_TOKENS * MILLI <= 2^31 - 1: milli-tokens fit an Int32 field');
assertConstants(2 * MAX_TOKENS * MILLI <= Number.MAX_SAFE_INTEGER, '2 * MAX_TOKENS * MILLI is exact: a CAS loop sum before its clamp');
assertConstants(MAX_CONCURRENCY <= INT32_MAX, 'MAX_CONCURRENCY <= 2^31 - 1: CONCURRENCY and IN_FLIGHT are Int32 fields');
// An acquire() failure packs (bucket << 2 | reason) + 1 in an int32 (bucket-table.ts).
assertConstants(MAX_BUCKETS * 4 <= INT32_MAX, 'MAX_BUCKETS * 4 <= 2^31 - 1: a failure code holds any bucket index');
assertConstants(PRIORITY_COUNT === PRIORITIES.length, 'PRIORITY_COUNT === PRIORITIES.length (config/types.ts): one WAITERS field per class');
// Times: (now - LAST_REFILL_MS) | 0 is right while refills are under 2^31 ms
// apart. The controller refills every bucket each tick; a refill that earns
// no whole milli-token (under 1 s at the lowest rate, 1 milli-token/s) leaves
// LAST_REFILL_MS as it was; a rate-0 bucket earns nothing whatever the
// difference, and setRate() restarts its time.
assertConstants(MAX_TICK_MS + 1000 < 2 ** 31, 'MAX_TICK_MS + 1000 < 2^31: int32 ms times never wrap between two refills');
