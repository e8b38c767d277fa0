// A latency histogram for the load generator: log-linear buckets over
// nanoseconds (HdrHistogram's layout with 128 sub-buckets per power of two,
// so any recorded value is reported within 0.8%), exact below 256 ns, up to
// about 18 minutes. Counts are weights, so one reply message of 64 decisions
// records its latency once with weight 64.
//
// Threads: each load worker owns one Histogram; at the end it posts
// `counts` (a Float64Array, structured-cloned) to the main thread, which
// merges them. Nothing is shared while recording.

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
/** Shifts 0..34 cover values up to 2^41 ns. */
const BUCKETS = 36 * SUB;
const TWO_32 = 4294967296;

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** Decisions (weights) recorded. */
  samples: number;
}

export class Histogram {
  readonly counts: Float64Array;
  total = 0;
  sum = 0;
  maxNs = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(BUCKETS);
    if (this.counts.length !== BUCKETS) throw new Error(`histogram needs ${BUCKETS} buckets, got ${this.counts.length}`);
  }

  /** Records `ns` nanoseconds, `weight` times. */
  record(ns: number, weight = 1): void {
    const v = ns > 0 ? Math.floor(ns) : 0;
    this.counts[indexOf(v)] += weight;
    this.total += weight;
    this.sum += v * weight;
    if (v > this.maxNs) this.maxNs = v;
  }

  /** Adds another histogram's counts into this one. */
  merge(o: { counts: Float64Array; total: number; sum: number; maxNs: number }): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += o.counts[i];
    this.total += o.total;
    this.sum += o.sum;
    if (o.maxNs > this.maxNs) this.maxNs = o.maxNs;
  }

  /** The value (ns) at quantile q in [0, 1]: the middle of the bucket holding that rank. */
  quantileNs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(midpointOf(i), this.maxNs);
    }
    return this.maxNs;
  }

  /** Percentiles in milliseconds. */
  percentilesMs(): Percentiles {
    const ms = (ns: number) => ns / 1e6;
    return {
      p50: ms(this.quantileNs(0.5)),
      p90: ms(this.quantileNs(0.9)),
      p99: ms(this.quantileNs(0.99)),
      p999: ms(this.quantileNs(0.999)),
      max: ms(this.maxNs),
      mean: this.total > 0 ? ms(this.sum / this.total) : 0,
      samples: this.total,
    };
  }

  toJSON(): { counts: Float64Array; total: number; sum: number; maxNs: number } {
    return { counts: this.counts, total: this.total, sum: this.sum, maxNs: this.maxNs };
  }
}

/** Bucket of a non-negative integer value. */
export function indexOf(v: number): number {
  if (v < 2 * SUB) return v;
  const log2 = v < TWO_32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / TWO_32));
  const shift = log2 - SUB_BITS;
  const mantissa = Math.floor(v / 2 ** shift); // in [SUB, 2 * SUB)
  return Math.min(BUCKETS - 1, (shift + 1) * SUB + mantissa - SUB);
}

/** Smallest value that falls in bucket i. */
export function lowerBoundOf(i: number): number {
  if (i < 2 * SUB) return i;
  const shift = Math.floor(i / SUB) - 1;
  return (SUB + (i % SUB)) * 2 ** shift;
}

function midpointOf(i: number): number {
  if (i < 2 * SUB) return i;
  const shift = Math.floor(i / SUB) - 1;
  return lowerBoundOf(i) + (2 ** shift - 1) / 2;
}
