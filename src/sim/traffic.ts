// Simulated callers for the simulator (single thread: the sim command's main
// thread or one rollout worker). Requests arrive per service, wait in a FIFO
// with patience, and take tokens through the real BucketTable (acquire +
// count, exactly the counters an I/O thread writes). Each grant goes to the
// upstream (upstream.ts), which may answer 429; with upstream hints, its
// headers are recorded as a RELEASE's are, through the daemon's HintBoard.
// With `upstream_latency` each admitted request gets its answer time from
// the latency model (upstream-latency.ts), and its release is counted as a
// client's RELEASE is (request-handler.ts): outcome 0 with its latency, or 3
// (timeout) with the caller's deadline as latency; a 429 answers at base_ms.
// Each release whose latency passes the pool's slo_ms is also counted late
// (C_RELEASED_LATE), against the same threshold and with the same compare
// as the I/O thread's (shm/late-thresholds.ts, request-handler.ts).

import { BucketTable, failBucket, GRANTED } from '../shm/bucket-table.ts';
import { noHints, type HintBoard } from '../shm/hint-board.ts';
import type { SimUpstream } from './upstream.ts';
import type { LatencyModel, TickLatencies } from './upstream-latency.ts';
import {
  C_ACQUIRES_INDEX, C_DENIED_INDEX, C_GRANTED_INDEX, C_GRANTS_INDEX, C_LATENCY_COUNT_INDEX,
  C_LATENCY_SUM_US_INDEX, C_RELEASED_LATE_INDEX, C_RELEASED_OK_INDEX, C_RELEASED_THROTTLED_INDEX, C_RELEASED_TIMEOUT_INDEX, C_REQUESTED_INDEX,
  C_WAIT_SUM_MS_INDEX, MILLI,
} from '../shm/layout.ts';

/** Arrival times (ms) of waiting requests, oldest first. */
export class Fifo {
  private buf = new Int32Array(1024);
  private head = 0;
  private tail = 0;
  get length(): number { return this.tail - this.head; }
  peek(): number { return this.buf[this.head]; }
  shift(): number { return this.buf[this.head++]; }
  push(t: number, n: number): void {
    if (this.tail + n > this.buf.length) {
      const live = this.buf.subarray(this.head, this.tail);
      const next = new Int32Array(Math.max(1024, (live.length + n) * 2));
      next.set(live);
      this.buf = next;
      this.tail -= this.head;
      this.head = 0;
    }
    this.buf.fill(t, this.tail, this.tail + n);
    this.tail += n;
  }
}

/** Per-service tallies of the current tick (reset by the simulator each tick). */
export interface ServiceTally {
  arrived: number;
  granted: number;
  served: number;
  throttled: number;
  expired: number;
  /** Admitted by the upstream but not answered within timeout_ms (with upstream_latency only). */
  timedOut: number;
  /** Served, but beyond slo_ms (with upstream_latency only; counted in served too). */
  late: number;
}

/** The upstream's latency and where the tick's answers are tallied (scenarios with upstream_latency). */
export interface SimLatency {
  readonly model: LatencyModel;
  readonly tick: TickLatencies;
}

const BASE_LATENCY_US = 20_000;

export class ServiceTraffic {
  readonly queue = new Fifo();
  readonly tally: ServiceTally = { arrived: 0, granted: 0, served: 0, throttled: 0, expired: 0, timedOut: 0, late: 0 };
  private carry = 0;
  private waitingAt = -1;

  private readonly said = noHints();

  /** `waitHistogram`: ms waited by granted requests, of this service's class; `hints`: where its upstream's headers go, if it sends them. */
  constructor(
    private readonly table: BucketTable,
    readonly bucket: number,
    readonly priority: number,
    private readonly patienceMs: number,
    private readonly waitHistogram: Float64Array,
    private readonly hints: { board: HintBoard; pool: number } | null = null,
    private readonly latency: SimLatency | null = null,
    /** The bucket's late threshold, µs (lateThresholdsUs: its pool's slo_ms; Infinity without one). */
    private readonly lateUs = Infinity,
  ) {}

  /** Adds `tps * dtMs` arrivals (fractional part carried over) at `now`. */
  arrive(now: number, tps: number, dtMs: number): void {
    this.carry += (tps * dtMs) / 1000;
    const n = Math.floor(this.carry);
    if (n <= 0) return;
    this.carry -= n;
    this.queue.push(now, n);
    this.tally.arrived += n;
    this.table.count(this.bucket, C_REQUESTED_INDEX, n);
    this.table.count(this.bucket, C_ACQUIRES_INDEX, n);
    this.table.addQueue(this.bucket, n);
  }

  /** Callers whose patience ran out give up: denied. */
  expire(now: number): void {
    const q = this.queue;
    let n = 0;
    while (q.length > 0 && now - q.peek() >= this.patienceMs) { q.shift(); n++; }
    if (n === 0) return;
    this.tally.expired += n;
    this.table.count(this.bucket, C_DENIED_INDEX, n);
    this.table.addQueue(this.bucket, -n);
  }

  /** Grants waiting requests in order until the buckets say no. */
  serve(now: number, upstream: SimUpstream): void {
    const q = this.queue;
    const t = this.table;
    if (this.waitingAt >= 0) { t.markWaiter(this.waitingAt, this.priority, -1); this.waitingAt = -1; }
    let granted = 0;
    let throttled = 0;
    let timedOut = 0;
    let latencySumUs = 0;
    let lateReleases = 0;
    const lateUs = this.lateUs;
    const lat = this.latency;
    while (q.length > 0) {
      const r = t.acquire(this.bucket, MILLI, this.priority, true, now);
      if (r !== GRANTED) {
        this.waitingAt = failBucket(r);
        t.markWaiter(this.waitingAt, this.priority, 1);
        break;
      }
      const waited = now - q.shift();
      this.waitHistogram[Math.min(this.waitHistogram.length - 1, waited)]++;
      t.count(this.bucket, C_WAIT_SUM_MS_INDEX, waited);
      granted++;
      const accepted = upstream.accept(now);
      if (lat === null) {
        if (accepted) this.tally.served++;
        else throttled++;
      } else if (!accepted) {
        throttled++;
        latencySumUs += lat.model.baseMs * 1000;
        if (lat.model.baseMs * 1000 > lateUs) lateReleases++;
      } else {
        const ms = lat.model.admit(now);
        if (ms > lat.model.timeoutMs) {
          timedOut++;
          lat.tick.timedOut();
          latencySumUs += lat.model.timeoutMs * 1000;
          if (lat.model.timeoutMs * 1000 > lateUs) lateReleases++;
        } else {
          this.tally.served++;
          if (ms > lat.tick.sloMs) this.tally.late++;
          lat.tick.served(ms);
          latencySumUs += ms * 1000;
          if (ms * 1000 > lateUs) lateReleases++;
        }
      }
      if (this.hints !== null) {
        upstream.headers(now, !accepted, this.said);
        this.hints.board.record(t, this.bucket, this.hints.pool, this.said);
      }
    }
    if (granted === 0) return;
    this.tally.granted += granted;
    t.count(this.bucket, C_GRANTED_INDEX, granted);
    t.count(this.bucket, C_GRANTS_INDEX, granted);
    this.tally.throttled += throttled;
    this.tally.timedOut += timedOut;
    t.count(this.bucket, C_RELEASED_OK_INDEX, granted - throttled - timedOut);
    if (throttled > 0) t.count(this.bucket, C_RELEASED_THROTTLED_INDEX, throttled);
    if (timedOut > 0) t.count(this.bucket, C_RELEASED_TIMEOUT_INDEX, timedOut);
    // Without a latency model, a nominal latency rising with how full the upstream's window is (as before).
    const nominalUs = lat === null ? BASE_LATENCY_US * (1 + upstream.load() ** 4) : 0;
    if (lat === null && nominalUs > lateUs) lateReleases = granted;
    t.count(this.bucket, C_LATENCY_SUM_US_INDEX, lat === null ? granted * nominalUs : latencySumUs);
    t.count(this.bucket, C_LATENCY_COUNT_INDEX, granted);
    if (lateReleases > 0) t.count(this.bucket, C_RELEASED_LATE_INDEX, lateReleases);
    t.addQueue(this.bucket, -granted);
  }
}
