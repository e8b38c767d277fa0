// The one description of tpsd's shared memory. Every offset used anywhere in
// the code is named here; no other module indexes the buffer with a raw number.
//
// One SharedArrayBuffer holds eight regions, one after the other:
//
//   byte 0
//   +--------------------------------------------------------------+
//   | HEADER       Int32 x HEADER_FIELDS                            |
//   |   MAGIC | VERSION | BUCKET_COUNT | THREAD_COUNT | MODE |       |
//   |   SHUTTING_DOWN | TICK_SEQ | CONNECTIONS                     |
//   +--------------------------------------------------------------+
//   | BUCKET STATE Int32 x BUCKET_FIELDS per bucket (120 bytes)     |
//   |   TOKENS_MILLI | LAST_REFILL_MS | RATE_MILLI | BURST_MILLI |  |
//   |   IN_FLIGHT | CONCURRENCY | PRIORITY | PARENT | DEPTH |       |
//   |   QUEUE | WAITERS[4] (by priority) | WAITERS_ANY |             |
//   |   MAX_BURST_MILLI |                                           |
//   |   LOAN_TOKENS_MILLI | LOAN_LAST_REFILL_MS | LOAN_RATE_MILLI | |
//   |   LOAN_BURST_MILLI | GATE | ASSURED_BLOCKED_MS |             |
//   |   RESERVE_TOKENS_MILLI | RESERVE_LAST_REFILL_MS |            |
//   |   RESERVE_RATE_MILLI | RESERVE_BURST_MILLI                    |
//   |   PACE_TOKENS_MILLI | PACE_LAST_REFILL_MS | PACE_RATE_MILLI | |
//   |   PACE_BURST_MILLI                                           |
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
//   | TOUCHED      Uint8 per bucket per thread (padded to 4 bytes)  |
//   |   set to 1 by an I/O thread whenever it counts for a leaf or  |
//   |   changes its queue (plain store, its own block); the         |
//   |   controller visits the keys it finds set and clears them     |
//   |   (control/touched-keys.ts says why no atomics are needed)    |
//   +--------------------------------------------------------------+
//   | FAILURES     (starts on a 64-byte boundary; fixed size)       |
//   |   SEED: Int32 x FAILURE_SEED_WORDS, random, written once by   |
//   |   allocateShm (the key of the address hash), padded to 64 B   |
//   |   SLOTS: BigUint64 x FAILURE_SLOTS, in neighbourhoods of      |
//   |   FAILURE_NEIGHBORHOOD_SLOTS (one 64-byte line); each slot is |
//   |   one word: an address's tag, window start and count        |
//   |   failed authentications per client address, every I/O      |
//   |   thread, one CAS per update (shm/failure-table.ts)           |
//   +--------------------------------------------------------------+
//   | TENANTS      (sized at start from the sum of tenants.max;     |
//   |   empty without tenants; shm/tenant-table.ts)                 |
//   |   SEQ: Int32 x neighbourhoods, even/odd, bumped by the main   |
//   |     thread around every slot it empties                       |
//   |   SERVICE_COUNT: Int32 x buckets, tenants held per service    |
//   |   TIER_COUNT: Int32 x buckets, live tenants per tier          |
//   |   INDEX: Int32 x 2 per slot: TAG|STATE (CAS-claimed), GEN     |
//   |   RECORDS: Int32 x TENANT_FIELDS per slot: the tenant's token |
//   |     bucket (TOKENS..BURST as a bucket's), tier, service,      |
//   |     last use, key length and bytes                            |
//   +--------------------------------------------------------------+
//
// What the two token buckets of a record mean depends on its depth (the
// allocation they serve is described in docs/allocator.md and bucket-table.ts):
//   - a pool: TOKENS..BURST are its gate, the upstream's bound: a token bucket
//     at the effective capacity (GATE_TOKEN_BUCKET), or a sliding 1 s window
//     (GATE_WINDOW: TOKENS is what the last second's takes leave of RATE, the
//     capacity; the takes come back 1 s later, see window-rings.ts; PACE is
//     then a token bucket at twice the rate holding the pool's burst, which
//     every take also passes, so the second flows out evenly). LOAN is
//     its shared borrowable bucket: the capacity no service is assured of,
//     plus what overflows full service buckets;
//   - a service: TOKENS..BURST are its assured bucket (the policy's rate);
//     LOAN is its ceiling (max_tps and its burst), which every take passes;
//   - an endpoint: TOKENS..BURST are its cap (max_tps); LOAN is unused.
// RESERVE is a third bucket, a service's reservation: its min_tps (as far
// as its allocation covers it), holding a second of it; consumed only while
// the pool's gate is short (pool-loans.ts). A pool has no reservation of
// its own; its RESERVE_LAST_REFILL_MS is RESERVE_BLOCKED_MS, the last
// millisecond a reserved take was refused at the gate, and its
// RESERVE_TOKENS_MILLI is NO_WAIT_REFUSED_MS, the last millisecond an
// assured take of a request that does not wait was, and its
// RESERVE_RATE_MILLI is BORROW_REFUSED_MS, the last a borrow was (the
// trunk, pool-loans.ts). Endpoints leave
// RESERVE unused.
// LOAN_* lie in the same order as TOKENS..BURST (LOAN_OFFSET apart), so one
// refill and one take serve both buckets of a record.
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
// the main thread's controller: stats-writer.ts, control/pool-*.ts and
// limit-changes.ts; a COUNTERS block: its I/O thread, BucketTable.count with
// `+=`), so no update is lost; what is left
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

import { randomFillSync } from 'node:crypto';
import { MAX_BUCKETS, MAX_BURST, MAX_CONCURRENCY, MAX_TENANTS as MAX_TENANTS_CONFIG, MAX_TICK_MS, MAX_TPS } from '../config/defaults.ts';
import { PRIORITIES } from '../config/types.ts';

/** Throws (at module load) when a relationship between constants, named by `relationship`, does not hold. */
export function assertConstants(holds: boolean, relationship: string): void {
  if (!holds) throw new Error(`broken invariant between constants: ${relationship}`);
}

/** Largest value an Int32Array field holds. */
export const INT32_MAX = 2 ** 31 - 1;

import { RUNNING_MODES } from '../config/types.ts';

export const SHM_MAGIC = 0x74707364; // "tpsd"
export const SHM_VERSION = 8;

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
/** The record's second token bucket (a pool's shared borrowable one, a service's borrowing ceiling), as TOKENS..BURST. */
export const LOAN_TOKENS_MILLI_INDEX = 16;
export const LOAN_LAST_REFILL_MS_INDEX = 17;
export const LOAN_RATE_MILLI_INDEX = 18;
export const LOAN_BURST_MILLI_INDEX = 19;
/** LOAN_x_INDEX - x_INDEX for x = TOKENS_MILLI, LAST_REFILL_MS, RATE_MILLI, BURST_MILLI. */
export const LOAN_OFFSET = LOAN_TOKENS_MILLI_INDEX - TOKENS_MILLI_INDEX;
/** Pools: how the gate counts, GATE_TOKEN_BUCKET or GATE_WINDOW (set once, at initialization). */
export const GATE_INDEX = 20;
/** Pools: the last millisecond an assured take failed at the gate (borrowing then stands aside for a while). */
export const ASSURED_BLOCKED_MS_INDEX = 21;
/** Services: the reservation bucket (its min_tps, within its allocation), as TOKENS..BURST; see pool-loans.ts. */
export const RESERVE_TOKENS_MILLI_INDEX = 22;
export const RESERVE_LAST_REFILL_MS_INDEX = 23;
export const RESERVE_RATE_MILLI_INDEX = 24;
export const RESERVE_BURST_MILLI_INDEX = 25;
/** RESERVE_x_INDEX - x_INDEX, as LOAN_OFFSET. */
export const RESERVE_OFFSET = RESERVE_TOKENS_MILLI_INDEX - TOKENS_MILLI_INDEX;
/** Pools (which have no reservation bucket): the last millisecond a reserved take was refused at the gate (others then stand aside). */
export const RESERVE_BLOCKED_MS_INDEX = RESERVE_LAST_REFILL_MS_INDEX;
/**
 * A window gate's pace (pools with GATE_WINDOW only): a token bucket at
 * PACE_RATE_FACTOR x the gate's rate holding the pool's burst or PACE_HOLD_MS
 * of the rate, whichever is more, which every take also passes, so a busy
 * pool's second is handed out as a stream, never as one burst at the
 * window's edge (window-rings.ts); the window still bounds every second.
 * Same order as TOKENS..BURST.
 */
export const PACE_TOKENS_MILLI_INDEX = 26;
export const PACE_LAST_REFILL_MS_INDEX = 27;
export const PACE_RATE_MILLI_INDEX = 28;
export const PACE_BURST_MILLI_INDEX = 29;
/** The least a pace holds, ms of the gate's rate: callers that arrive in bursts lose nothing to it over gaps this long. */
export const PACE_HOLD_MS = 250;
/**
 * The pace refills at this multiple of the gate's rate: it spreads a second
 * over at least half a second, and after a drop of the capacity (the window
 * still counting the old rate's takes) it lets the window's second through
 * in the part of it that is left.
 */
export const PACE_RATE_FACTOR = 2;
/** PACE_* minus their TOKENS..BURST counterparts. */
export const PACE_OFFSET = PACE_TOKENS_MILLI_INDEX - TOKENS_MILLI_INDEX;
export const BUCKET_FIELDS = PACE_BURST_MILLI_INDEX + 1;
export const BUCKET_BYTES = BUCKET_FIELDS * Int32Array.BYTES_PER_ELEMENT;

export const PRIORITY_NONE = PRIORITY_COUNT;
/** GATE values: a token bucket at the effective capacity, or a sliding 1 s window of it. */
export const GATE_TOKEN_BUCKET = 0;
export const GATE_WINDOW = 1;
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
export const C_WOULD_DENY_INDEX = 14; // tokens granted by a dry run (enforce: false) that would have been denied
/** RELEASEs whose latency_us passed the key's pool's upstream.slo_ms (late-thresholds.ts), whatever their outcome. */
export const C_RELEASED_LATE_INDEX = 15;
export const COUNTER_FIELDS = C_RELEASED_LATE_INDEX + 1;
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

// Failures (shm/failure-table.ts): failed authentications per client
// address. A fixed size whatever the config: memory stays bounded however
// many addresses fail, and the table's policy when a neighbourhood is full is
// described (and argued) in failure-table.ts.
/** Int32 words of the random key the address hash is keyed with (128 bits). */
export const FAILURE_SEED_WORDS = 4;
/** The seed, padded so the slots start on a 64-byte line. */
export const FAILURE_HEADER_BYTES = 64;
/** One BigUint64 word per slot: an address's tag, window start and count, updated together by one CAS. */
export const FAILURE_SLOT_BYTES = BigUint64Array.BYTES_PER_ELEMENT;
/** The slots one address may occupy: one 64-byte cache line, scanned whole. */
export const FAILURE_NEIGHBORHOOD_SLOTS = 8;
/** Addresses tracked at once: 16384 slots, 128 KiB. */
export const FAILURE_SLOTS = 16_384;
export const FAILURE_NEIGHBORHOODS = FAILURE_SLOTS / FAILURE_NEIGHBORHOOD_SLOTS;
export const FAILURE_REGION_BYTES = FAILURE_HEADER_BYTES + FAILURE_SLOTS * FAILURE_SLOT_BYTES;

// Tenants (shm/tenant-table.ts): keys made on first use. The slot count is a
// power of two, at least twice the sum of tenants.max (tenantSlotsFor), so a
// neighbourhood of TENANT_NEIGHBORHOOD_SLOTS rarely fills before max does.
/** Slots one tenant may occupy: its hash picks the neighbourhood, any free slot in it holds it. */
export const TENANT_NEIGHBORHOOD_SLOTS = 32;
/** INDEX words per slot: TAG << 2 | STATE, and the generation (bumped at each claim). */
export const TENANT_INDEX_FIELDS = 2;
export const TI_WORD_INDEX = 0;
export const TI_GEN_INDEX = 1;
/** A record: the tenant's bucket at the offsets of a bucket's (bucket-cas.ts works on it), then its identity. */
export const T_TOKENS_MILLI_INDEX = TOKENS_MILLI_INDEX;
export const T_LAST_REFILL_MS_INDEX = LAST_REFILL_MS_INDEX;
export const T_RATE_MILLI_INDEX = RATE_MILLI_INDEX;
export const T_BURST_MILLI_INDEX = BURST_MILLI_INDEX;
/** Bucket index of the tenant's tier (written at creation and by a tier change). */
export const T_TIER_INDEX = 4;
/** Bucket index of the tenant's service. */
export const T_SERVICE_INDEX = 5;
/** Last acquire, ms (the daemon's epoch): idle tenants are forgotten by it. */
export const T_LAST_USED_MS_INDEX = 6;
export const T_KEY_BYTES_INDEX = 7;
/** The tenant name's bytes, TENANT_NAME_WORDS Int32 words (little-endian bytes of a Uint8Array view). */
export const T_NAME_INDEX = 8;
export const TENANT_NAME_BYTES = 64;
export const TENANT_NAME_WORDS = TENANT_NAME_BYTES / Int32Array.BYTES_PER_ELEMENT;
export const TENANT_FIELDS = T_NAME_INDEX + TENANT_NAME_WORDS;
export const TENANT_RECORD_BYTES = TENANT_FIELDS * Int32Array.BYTES_PER_ELEMENT;

/** Tenant slots for a sum of tenants.max: 0 without tenants, else a power of two >= 2 x max and >= one neighbourhood. */
export function tenantSlotsFor(maxTenants: number): number {
  if (maxTenants <= 0) return 0;
  let n = TENANT_NEIGHBORHOOD_SLOTS;
  while (n < 2 * maxTenants) n *= 2;
  return n;
}

export interface ShmLayout {
  readonly bucketCount: number;
  readonly threadCount: number;
  readonly tenantSlots: number;
  readonly tenantsByteOffset: number;
  readonly stateByteOffset: number;
  readonly statsByteOffset: number;
  readonly countersByteOffset: number;
  readonly hintsByteOffset: number;
  readonly touchedByteOffset: number;
  readonly failuresByteOffset: number;
  readonly byteLength: number;
}

/** The FAILURES region's alignment: its slots fill whole 64-byte lines. */
const FAILURES_ALIGN_BYTES = 64;

export function computeLayout(bucketCount: number, threadCount: number, tenantSlots = 0): ShmLayout {
  const stateByteOffset = HEADER_BYTES;
  const statsByteOffset = stateByteOffset + bucketCount * BUCKET_BYTES; // 8-aligned (asserted below)
  const countersByteOffset = statsByteOffset + bucketCount * STATS_BYTES;
  const hintsByteOffset = countersByteOffset + threadCount * bucketCount * COUNTER_BYTES;
  const touchedByteOffset = hintsByteOffset + bucketCount * HINT_BYTES;
  const touchedEnd = touchedByteOffset + touchedBytes(bucketCount, threadCount);
  const failuresByteOffset = Math.ceil(touchedEnd / FAILURES_ALIGN_BYTES) * FAILURES_ALIGN_BYTES;
  const tenantsByteOffset = failuresByteOffset + FAILURE_REGION_BYTES;
  const tenantWords = tenantSlots / TENANT_NEIGHBORHOOD_SLOTS + 2 * bucketCount + tenantSlots * (TENANT_INDEX_FIELDS + TENANT_FIELDS);
  const byteLength = tenantsByteOffset + tenantWords * Int32Array.BYTES_PER_ELEMENT;
  return {
    bucketCount, threadCount, tenantSlots, tenantsByteOffset, stateByteOffset, statsByteOffset, countersByteOffset, hintsByteOffset,
    touchedByteOffset, failuresByteOffset, byteLength,
  };
}

/** TOUCHED: one byte per bucket per thread, the whole region padded to whole Uint32 words (the controller scans it by word). */
export function touchedBytes(bucketCount: number, threadCount: number): number {
  return Math.ceil((bucketCount * threadCount) / 4) * 4;
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
  /** TOUCHED: touched[t * bucketCount + b], thread t's flag for leaf b (padded to whole words). */
  readonly touched: Uint8Array;
  /** FAILURES: the address hash's key (read-only after allocateShm). */
  readonly failureSeed: Int32Array;
  /** FAILURES: the slots, each updated only with Atomics (failure-table.ts). */
  readonly failureSlots: BigUint64Array;
  /** TENANTS (tenant-table.ts): per neighbourhood, the main thread's even/odd sequence. */
  readonly tenantSeq: Int32Array;
  /** TENANTS: tenants held per service bucket (claimed, live or retired). */
  readonly tenantServiceCount: Int32Array;
  /** TENANTS: live tenants per tier bucket. */
  readonly tenantTierCount: Int32Array;
  readonly tenantIndex: Int32Array;
  readonly tenantRecords: Int32Array;
}

/**
 * Attaches to a buffer that allocateShm() made (an I/O thread's view of the
 * daemon's buffer). Refuses a buffer of another size, one whose header does
 * not carry SHM_MAGIC and SHM_VERSION (not tpsd's shared memory, or a layout
 * this code does not know), or one made for other bucket or thread counts.
 */
export function viewsOf(sab: SharedArrayBuffer, bucketCount: number, threadCount: number, tenantSlots = 0): ShmViews {
  const layout = computeLayout(bucketCount, threadCount, tenantSlots);
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
  const { bucketCount, threadCount, tenantSlots } = layout;
  const i32 = Int32Array.BYTES_PER_ELEMENT;
  const seqAt = layout.tenantsByteOffset;
  const hoods = tenantSlots / TENANT_NEIGHBORHOOD_SLOTS;
  const serviceCountAt = seqAt + hoods * i32;
  const tierCountAt = serviceCountAt + bucketCount * i32;
  const indexAt = tierCountAt + bucketCount * i32;
  const recordsAt = indexAt + tenantSlots * TENANT_INDEX_FIELDS * i32;
  return {
    tenantSeq: new Int32Array(sab, seqAt, hoods),
    tenantServiceCount: new Int32Array(sab, serviceCountAt, bucketCount),
    tenantTierCount: new Int32Array(sab, tierCountAt, bucketCount),
    tenantIndex: new Int32Array(sab, indexAt, tenantSlots * TENANT_INDEX_FIELDS),
    tenantRecords: new Int32Array(sab, recordsAt, tenantSlots * TENANT_FIELDS),
    layout,
    sab,
    header: new Int32Array(sab, 0, HEADER_FIELDS),
    state: new Int32Array(sab, layout.stateByteOffset, bucketCount * BUCKET_FIELDS),
    stats: new Float64Array(sab, layout.statsByteOffset, bucketCount * STATS_FIELDS),
    counters: new Float64Array(sab, layout.countersByteOffset, threadCount * bucketCount * COUNTER_FIELDS),
    hints: new Int32Array(sab, layout.hintsByteOffset, bucketCount * HINT_FIELDS),
    touched: new Uint8Array(sab, layout.touchedByteOffset, touchedBytes(bucketCount, threadCount)),
    failureSeed: new Int32Array(sab, layout.failuresByteOffset, FAILURE_SEED_WORDS),
    failureSlots: new BigUint64Array(sab, layout.failuresByteOffset + FAILURE_HEADER_BYTES, FAILURE_SLOTS),
  };
}

/** A new zeroed buffer for the layout, its header written (main thread, before any thread attaches). */
export function allocateShm(bucketCount: number, threadCount: number, tenantSlots = 0): ShmViews {
  const layout = computeLayout(bucketCount, threadCount, tenantSlots);
  const views = mapViews(new SharedArrayBuffer(layout.byteLength), layout);
  views.header[MAGIC_INDEX] = SHM_MAGIC;
  views.header[VERSION_INDEX] = SHM_VERSION;
  views.header[BUCKET_COUNT_INDEX] = bucketCount;
  views.header[THREAD_COUNT_INDEX] = threadCount;
  for (let b = 0; b < bucketCount; b++) {
    views.hints[b * HINT_FIELDS + HINT_LOW_MILLI_INDEX] = HINT_NONE_LOW;
    views.hints[b * HINT_FIELDS + HINT_HIGH_MILLI_INDEX] = HINT_NONE_HIGH;
  }
  randomFillSync(views.failureSeed);
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
  ...range(WAITERS_BASE_INDEX, PRIORITY_COUNT), WAITERS_ANY_INDEX, MAX_BURST_MILLI_INDEX,
  LOAN_TOKENS_MILLI_INDEX, LOAN_LAST_REFILL_MS_INDEX, LOAN_RATE_MILLI_INDEX, LOAN_BURST_MILLI_INDEX, GATE_INDEX,
  ASSURED_BLOCKED_MS_INDEX, RESERVE_TOKENS_MILLI_INDEX, RESERVE_LAST_REFILL_MS_INDEX, RESERVE_RATE_MILLI_INDEX, RESERVE_BURST_MILLI_INDEX,
  PACE_TOKENS_MILLI_INDEX, PACE_LAST_REFILL_MS_INDEX, PACE_RATE_MILLI_INDEX, PACE_BURST_MILLI_INDEX]);
assertFields('STATS', STATS_FIELDS, [STAT_TPS_INDEX, STAT_DEMAND_TPS_INDEX, STAT_DENIED_TPS_INDEX, STAT_THROTTLED_TPS_INDEX,
  STAT_FAILED_TPS_INDEX, STAT_LATENCY_AVG_US_INDEX, STAT_EFFECTIVE_CAPACITY_INDEX, STAT_CAPACITY_INDEX]);
assertFields('COUNTERS', COUNTER_FIELDS, [C_REQUESTED_INDEX, C_GRANTED_INDEX, C_DENIED_INDEX, C_ACQUIRES_INDEX,
  C_GRANTS_INDEX, C_RELEASED_OK_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_THROTTLED_INDEX, C_LATENCY_SUM_US_INDEX,
  C_LATENCY_COUNT_INDEX, C_EXPIRED_INDEX, C_WAIT_SUM_MS_INDEX, C_RELEASED_TIMEOUT_INDEX, C_HINTS_INDEX, C_WOULD_DENY_INDEX,
  C_RELEASED_LATE_INDEX]);
assertFields('TENANT RECORD', T_NAME_INDEX + 1, [T_TOKENS_MILLI_INDEX, T_LAST_REFILL_MS_INDEX, T_RATE_MILLI_INDEX, T_BURST_MILLI_INDEX,
  T_TIER_INDEX, T_SERVICE_INDEX, T_LAST_USED_MS_INDEX, T_KEY_BYTES_INDEX, T_NAME_INDEX]);
assertFields('TENANT INDEX', TENANT_INDEX_FIELDS, [TI_WORD_INDEX, TI_GEN_INDEX]);
// A tenant's record starts with a bucket's four fields at a bucket's offsets, so bucket-cas.ts refills and takes it.
assertConstants(T_TOKENS_MILLI_INDEX === 0 && T_LAST_REFILL_MS_INDEX === 1 && T_RATE_MILLI_INDEX === 2 && T_BURST_MILLI_INDEX === 3,
  'a tenant record\'s TOKENS, LAST_REFILL, RATE and BURST lie where a bucket\'s do');
assertConstants(TENANT_NAME_BYTES % Int32Array.BYTES_PER_ELEMENT === 0 && TENANT_NAME_BYTES >= 64,
  'a tenant name (1 to 64 bytes, PROTOCOL.md) fits TENANT_NAME_WORDS whole words');
assertConstants((TENANT_NEIGHBORHOOD_SLOTS & (TENANT_NEIGHBORHOOD_SLOTS - 1)) === 0, 'TENANT_NEIGHBORHOOD_SLOTS is a power of two');
// A failure result packs a tenant's tier like any bucket; a tenant slot number fits an int32 with room for +1.
assertConstants(tenantSlotsFor(MAX_TENANTS_CONFIG) <= 2 ** 30, 'the tenant slots for MAX_TENANTS fit an int32 slot number');
assertFields('HINTS', HINT_FIELDS, [HINT_LOW_MILLI_INDEX, HINT_HIGH_MILLI_INDEX]);
assertConstants(MAX_TOKENS * MILLI < HINT_NONE_LOW && HINT_NONE_HIGH < 0,
  'HINT_NONE_LOW/HIGH lie outside [0, MAX_TOKENS * MILLI], the range of a hinted rate: "none" never reads as a rate');
assertConstants(BUCKET_BYTES === 120, 'BUCKET_BYTES === 120, as the map at the top says');
// One refill and one take (bucket-table.ts) serve a record's two buckets at base and base + LOAN_OFFSET.
assertConstants(LOAN_LAST_REFILL_MS_INDEX - LAST_REFILL_MS_INDEX === LOAN_OFFSET && LOAN_RATE_MILLI_INDEX - RATE_MILLI_INDEX === LOAN_OFFSET &&
  LOAN_BURST_MILLI_INDEX - BURST_MILLI_INDEX === LOAN_OFFSET, 'the LOAN fields lie LOAN_OFFSET after TOKENS, LAST_REFILL, RATE and BURST');
assertConstants(RESERVE_LAST_REFILL_MS_INDEX - LAST_REFILL_MS_INDEX === RESERVE_OFFSET && RESERVE_RATE_MILLI_INDEX - RATE_MILLI_INDEX === RESERVE_OFFSET &&
  RESERVE_BURST_MILLI_INDEX - BURST_MILLI_INDEX === RESERVE_OFFSET, 'the RESERVE fields lie RESERVE_OFFSET after TOKENS, LAST_REFILL, RATE and BURST');
assertConstants(PACE_LAST_REFILL_MS_INDEX - LAST_REFILL_MS_INDEX === PACE_OFFSET && PACE_RATE_MILLI_INDEX - RATE_MILLI_INDEX === PACE_OFFSET &&
  PACE_BURST_MILLI_INDEX - BURST_MILLI_INDEX === PACE_OFFSET, 'the PACE fields lie PACE_OFFSET after TOKENS, LAST_REFILL, RATE and BURST');
// Float64Array needs a byte offset that is a multiple of 8; STATS starts after
// the header and the buckets, COUNTERS after STATS.
assertConstants(HEADER_BYTES % Float64Array.BYTES_PER_ELEMENT === 0 && BUCKET_BYTES % Float64Array.BYTES_PER_ELEMENT === 0,
  'HEADER_BYTES and BUCKET_BYTES are multiples of 8, so STATS and COUNTERS are 8-aligned');
assertConstants(COUNTER_BYTES % Int32Array.BYTES_PER_ELEMENT === 0, 'COUNTER_BYTES is a multiple of 4, so HINTS (Int32, after COUNTERS) is 4-aligned');

// Tokens. TOKENS, RATE, BURST and MAX_BURST (and the LOAN ones) are Int32
// milli-token fields, and an allowance (allowances.ts) is at most a burst:
// rates and bursts are at most MAX_TOKENS * MILLI (the config caps them, a
// request asking for more is refused before it is multiplied). A larger value
// would wrap negative in the Int32Array, so the bound is 2^31 - 1, not 2^32.
// A service the gate refused may hold its burst plus a second of its rate
// (pool-loans.ts): that cap is clamped at 2^31 - 1. A window gate's TOKENS is
// its capacity less the last second's takes: below 0 (never below
// -MAX_TOKENS * MILLI) when the capacity shrinks under them. The CAS loops'
// sums (tokens + refill, tokens + refund) are formed in doubles and clamped
// before they are stored: they need only be exact.
assertConstants(MAX_TPS === MAX_TOKENS && MAX_BURST === MAX_TOKENS, 'MAX_TPS === MAX_BURST === MAX_TOKENS (config/defaults.ts)');
assertConstants(MAX_TOKENS * MILLI <= INT32_MAX, 'MAX_TOKENS * MILLI <= 2^31 - 1: milli-tokens fit an Int32 field');
assertConstants(2 * MAX_TOKENS * MILLI <= Number.MAX_SAFE_INTEGER, '2 * MAX_TOKENS * MILLI is exact: a CAS loop sum before its clamp');
assertConstants(MAX_CONCURRENCY <= INT32_MAX, 'MAX_CONCURRENCY <= 2^31 - 1: CONCURRENCY and IN_FLIGHT are Int32 fields');
// An acquire() failure packs (bucket << 2 | reason) + 1 in an int32 (bucket-table.ts).
assertConstants(MAX_BUCKETS * 4 <= INT32_MAX, 'MAX_BUCKETS * 4 <= 2^31 - 1: a failure code holds any bucket index');
assertConstants(PRIORITY_COUNT === PRIORITIES.length, 'PRIORITY_COUNT === PRIORITIES.length (config/types.ts): one WAITERS field per class');
// Times: (now - LAST_REFILL_MS) | 0 is right while refills are under 2^31 ms
// apart. The controller refills every bucket each tick (both of a record's
// buckets); a refill that earns no whole milli-token (under 1 s at the lowest
// rate, 1 milli-token/s) leaves LAST_REFILL_MS as it was; a rate-0 bucket
// earns nothing whatever the difference, and a rate write restarts its time
// (any other bucket's only forward: restartAt, bucket-cas.ts).
// ASSURED_BLOCKED_MS and a pool's other stamps are kept expired by the same tick, 2^30 ms back
// (pool-loans.ts, freshenStamp): never wrapped into the hold, nor fresh to a thread behind. A
// thread's window rings compare times with its own cursor; one idle past the
// wrap gives everything back (window-rings.ts).
assertConstants(MAX_TICK_MS + 1000 < 2 ** 31, 'MAX_TICK_MS + 1000 < 2^31: int32 ms times never wrap between two refills');
// Failures: the seed fits its header, and a neighbourhood is one cache line
// (the slot word's own fields are asserted in failure-table.ts).
assertConstants(FAILURE_SEED_WORDS * Int32Array.BYTES_PER_ELEMENT <= FAILURE_HEADER_BYTES, 'the seed fits the FAILURES header');
assertConstants(FAILURE_HEADER_BYTES % FAILURES_ALIGN_BYTES === 0, 'the FAILURES slots start on a 64-byte line');
assertConstants(FAILURE_NEIGHBORHOOD_SLOTS * FAILURE_SLOT_BYTES === FAILURES_ALIGN_BYTES, 'a neighbourhood is one 64-byte line');
assertConstants(Number.isInteger(FAILURE_NEIGHBORHOODS) && (FAILURE_NEIGHBORHOODS & (FAILURE_NEIGHBORHOODS - 1)) === 0,
  'FAILURE_SLOTS is a power-of-two number of neighbourhoods');
assertConstants(2 ** 32 * FAILURE_NEIGHBORHOODS <= Number.MAX_SAFE_INTEGER, 'a peer (tag * FAILURE_NEIGHBORHOODS + home) is an exact double');
