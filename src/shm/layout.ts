// The one description of tpsd's shared memory. Every offset used anywhere in
// the code is named here; no other module indexes the buffer with a raw number.
//
// One SharedArrayBuffer holds four regions, one after the other:
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
//
// Units: tokens are fixed point in thousandths ("milli-tokens"), rates are
// milli-tokens per second (= tokens/s x 1000), times are whole milliseconds
// since the daemon's epoch, kept as int32 and compared with wrap-around
// arithmetic ((a - b) | 0), so they stay correct across the 24.8-day wrap as
// long as every bucket is refilled at least that often (the controller
// refills every bucket on every tick).

import { RUNNING_MODES } from '../config/types.ts';

export const SHM_MAGIC = 0x74707364; // "tpsd"
export const SHM_VERSION = 1;

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
export const HEADER_FIELDS = 8;
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
export const WAITERS_ANY_INDEX = 14;
/**
 * The largest burst the bucket may ever have (its configured burst). The
 * controller may run a bucket below it; TOKENS_EXCEED_BURST is judged here.
 */
export const MAX_BURST_MILLI_INDEX = 15;
export const BUCKET_FIELDS = 16;
export const BUCKET_BYTES = BUCKET_FIELDS * Int32Array.BYTES_PER_ELEMENT;

export const PRIORITY_NONE = PRIORITY_COUNT;
export const MILLI = 1000;
/** Upper bound of burst and rate in tokens, so milli-units fit in int32. */
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
export const STATS_FIELDS = 8;
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
export const COUNTER_FIELDS = 12;
export const COUNTER_BYTES = COUNTER_FIELDS * Float64Array.BYTES_PER_ELEMENT;

export interface ShmLayout {
  readonly bucketCount: number;
  readonly threadCount: number;
  readonly stateByteOffset: number;
  readonly statsByteOffset: number;
  readonly countersByteOffset: number;
  readonly byteLength: number;
}

export function computeLayout(bucketCount: number, threadCount: number): ShmLayout {
  const stateByteOffset = HEADER_BYTES;
  const statsByteOffset = stateByteOffset + bucketCount * BUCKET_BYTES; // 8-aligned: BUCKET_BYTES is 64
  const countersByteOffset = statsByteOffset + bucketCount * STATS_BYTES;
  const byteLength = countersByteOffset + threadCount * bucketCount * COUNTER_BYTES;
  return { bucketCount, threadCount, stateByteOffset, statsByteOffset, countersByteOffset, byteLength };
}

/** Typed views over one shared buffer. */
export interface ShmViews {
  readonly layout: ShmLayout;
  readonly sab: SharedArrayBuffer;
  readonly header: Int32Array;
  readonly state: Int32Array;
  readonly stats: Float64Array;
  readonly counters: Float64Array;
}

export function viewsOf(sab: SharedArrayBuffer, bucketCount: number, threadCount: number): ShmViews {
  const layout = computeLayout(bucketCount, threadCount);
  if (sab.byteLength !== layout.byteLength) {
    throw new Error(`shared buffer is ${sab.byteLength} bytes, layout needs ${layout.byteLength}`);
  }
  return {
    layout,
    sab,
    header: new Int32Array(sab, 0, HEADER_FIELDS),
    state: new Int32Array(sab, layout.stateByteOffset, bucketCount * BUCKET_FIELDS),
    stats: new Float64Array(sab, layout.statsByteOffset, bucketCount * STATS_FIELDS),
    counters: new Float64Array(sab, layout.countersByteOffset, threadCount * bucketCount * COUNTER_FIELDS),
  };
}

export function allocateShm(bucketCount: number, threadCount: number): ShmViews {
  const layout = computeLayout(bucketCount, threadCount);
  const views = viewsOf(new SharedArrayBuffer(layout.byteLength), bucketCount, threadCount);
  views.header[MAGIC_INDEX] = SHM_MAGIC;
  views.header[VERSION_INDEX] = SHM_VERSION;
  views.header[BUCKET_COUNT_INDEX] = bucketCount;
  views.header[THREAD_COUNT_INDEX] = threadCount;
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
