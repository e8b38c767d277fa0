// The simulated upstream's latency (single thread: the simulator's), for a
// scenario with `upstream_latency` (SCENARIOS.md additions). The upstream's
// load is what it took in the trailing second (requests it did not refuse
// with 429, timed out or not: it works on those too), as a share of the knee:
//   rho = admitted in (t - 1 s, t] / knee_tps(t)
// and a request admitted at t is answered after
//   latency(rho) = base_ms * (1 + rho^4 / (1 - rho))   for rho < 1
//   latency(rho) = infinity                           for rho >= 1
// that is base_ms at low load (+12.5 % at half the knee), a knee around 0.8
// (x3 at 0.8, x7.6 at 0.9, x17 at 0.95), and no answer at all at or past the
// knee. A request whose latency exceeds timeout_ms is a timeout (RELEASE
// outcome 3): the caller gave up, it is not served. The curve is documented
// in docs/allocator.md ("Latency-limited upstreams").

import type { UpstreamLatency } from './scenario.ts';
import { curveAt } from './scenario.ts';

/** Answer time (ms) at load rho (a share of the knee); Infinity at or past it. */
export function latencyAtLoad(baseMs: number, rho: number): number {
  if (!(rho < 1)) return Infinity;
  const r = Math.max(0, rho);
  return baseMs * (1 + (r * r * r * r) / (1 - r));
}

/** The largest load (share of the knee) whose latency stays within `limitMs`; 0 when even an idle upstream is slower. */
export function loadWithin(baseMs: number, limitMs: number): number {
  if (latencyAtLoad(baseMs, 0) > limitMs) return 0;
  let lo = 0, hi = 1;
  for (let k = 0; k < 50; k++) {
    const mid = (lo + hi) / 2;
    if (latencyAtLoad(baseMs, mid) <= limitMs) lo = mid; else hi = mid;
  }
  return lo;
}

const SLOT_MS = 10;
const SLOTS = 1000 / SLOT_MS;

/** One upstream's latency over time: counts its admissions in a trailing second of 10 ms slots. */
export class LatencyModel {
  private readonly n = new Int32Array(SLOTS);
  private readonly stamp = new Float64Array(SLOTS).fill(-1);
  private count = 0;
  readonly timeoutMs: number;
  readonly baseMs: number;

  constructor(private readonly spec: UpstreamLatency) {
    this.timeoutMs = spec.timeout_ms;
    this.baseMs = spec.base_ms;
  }

  /** The knee (requests/s) at `ms`. */
  kneeAt(ms: number): number { return curveAt(this.spec.knee_tps, ms / 1000); }

  /** Admits one request at `ms` (ms never go back) and returns its latency, ms (Infinity: never answered). */
  admit(ms: number): number {
    const slot = Math.floor(ms / SLOT_MS);
    const i = slot % SLOTS;
    if (this.stamp[i] !== slot) {
      // Every slot older than a second is dropped as its index comes round again.
      this.expire(slot);
      this.stamp[i] = slot;
      this.n[i] = 0;
    }
    this.n[i]++;
    this.count++;
    const knee = this.kneeAt(ms);
    return knee > 0 ? latencyAtLoad(this.baseMs, this.count / knee) : Infinity;
  }

  private expire(slot: number): void {
    for (let k = 0; k < SLOTS; k++) {
      if (this.stamp[k] >= 0 && this.stamp[k] <= slot - SLOTS) {
        this.count -= this.n[k];
        this.n[k] = 0;
        this.stamp[k] = -1;
      }
    }
  }
}

/**
 * The tick's answered requests for the SLO (SCENARIOS.md `slo_met`): a
 * histogram of served latencies in 1 ms bins, timeouts counted beyond every
 * bin. A tick meets the SLO when its p95 is within slo_ms; a tick with no
 * answer at all has nothing that missed it.
 */
export class TickLatencies {
  private readonly bins: Float64Array;
  private total = 0;
  timeouts = 0;

  constructor(readonly sloMs: number, timeoutMs: number) {
    this.bins = new Float64Array(Math.ceil(timeoutMs) + 1);
  }

  served(latencyMs: number): void {
    this.bins[Math.min(this.bins.length - 1, Math.max(0, Math.floor(latencyMs)))]++;
    this.total++;
  }

  timedOut(): void { this.timeouts++; this.total++; }

  /** p95 of the tick (Infinity when timeouts reach it; 0 with no answers). */
  p95(): number {
    if (this.total === 0) return 0;
    const want = 0.95 * this.total;
    let acc = 0;
    for (let i = 0; i < this.bins.length; i++) {
      acc += this.bins[i];
      if (acc >= want) return i;
    }
    return Infinity;
  }

  /** Starts the next tick. */
  reset(): void { this.bins.fill(0); this.total = 0; this.timeouts = 0; }
}
