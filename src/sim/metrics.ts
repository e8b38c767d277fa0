// The simulator's report (SCENARIOS.md "Command and output" and its
// additions): accumulates per-tick tallies and turns them into the listed
// metrics. Single thread. Waits are those of granted requests (a request
// that gave up waited too, but was not granted: it is counted as denied), per
// class and pooled. A 429 is "initial" in the first 2 ticks of the run, and in
// the tick upstream_tps drops and the 2 after it (a pool cannot know of a
// drop before it happens); every other is "late".

import { PRIORITIES } from '../config/types.ts';

export interface SimMetrics {
  scenario: string;
  policy: string;
  seed: number;
  utilization: number;
  served_ratio: number;
  violations: number;
  /** In the run's first 2 ticks, or the tick of an upstream drop and the 2 after it. */
  violations_initial: number;
  /** All other violations. */
  violations_late: number;
  /** Every tick with violations: [tick, violations, 1 if late else 0]. */
  violations_by_tick: [number, number, number][];
  fulfillment: Record<string, number>;
  min_guarantee_met: number;
  /** p99 wait of granted requests, all classes pooled. */
  queue_p99_ms: number;
  /** p99 wait of granted requests per priority class (classes with traffic). */
  wait_p99_ms: Record<string, number>;
  reward: number;
  /** The reward of a clairvoyant fluid allocation of the same traffic (fluid-bound.ts). */
  fluid_bound: number;
  fallback_ticks: number;
  /** With upstream_latency: requests the upstream took but did not answer within timeout_ms (outcome 3). */
  timeouts?: number;
  /** With upstream_latency: the share of ticks whose served p95 latency was within slo_ms (timeouts count as beyond it). */
  slo_met?: number;
}

export class MetricsRecorder {
  private utilSum = 0;
  private ticks = 0;
  private served = 0;
  private servable = 0;
  private violations = 0;
  private initial = 0;
  private readonly byTick: [number, number, number][] = [];
  private readonly demandByClass = [0, 0, 0, 0];
  private readonly servedByClass = [0, 0, 0, 0];
  private guaranteeTicks = 0;
  private guaranteeMet = 0;
  reward = 0;
  fallbackTicks = 0;
  private prevUpstream = NaN;
  private timeouts = 0;
  private latencyTicks = 0;
  private sloTicks = 0;
  private lastDropTick = -1e9;

  /** One tick: per-service arrays plus the upstream's limit over the tick (tokens/s). */
  record(t: {
    /** `dropping`: the upstream's limit falls within the tick (a sliding or token-bucket upstream applies it at once). */
    tick: number; tickS: number; upstreamTps: number; dropping?: boolean;
    arrived: ArrayLike<number>; granted: ArrayLike<number>; served: ArrayLike<number>; throttled: ArrayLike<number>;
    priority: ArrayLike<number>; minTps: ArrayLike<number>;
  }): void {
    const n = t.arrived.length;
    let demand = 0;
    let served = 0;
    let throttled = 0;
    for (let i = 0; i < n; i++) {
      demand += t.arrived[i];
      served += t.served[i];
      throttled += t.throttled[i];
      this.demandByClass[t.priority[i]] += t.arrived[i];
      this.servedByClass[t.priority[i]] += t.served[i];
      this.guaranteeTicks++;
      const owed = Math.min(t.arrived[i], t.minTps[i] * t.tickS);
      // One token of slack: arrivals in the tick's last instant are served at the next.
      if (t.granted[i] >= owed - 1) this.guaranteeMet++;
    }
    if (t.upstreamTps < this.prevUpstream - 1e-9 || t.dropping === true) this.lastDropTick = t.tick;
    this.prevUpstream = t.upstreamTps;
    const cap = t.upstreamTps * t.tickS;
    this.ticks++;
    this.utilSum += cap > 0 ? served / cap : 1;
    this.served += served;
    this.servable += Math.min(demand, cap);
    this.violations += throttled;
    const initial = t.tick < 2 || t.tick - this.lastDropTick <= 2;
    if (initial) this.initial += throttled;
    if (throttled > 0) this.byTick.push([t.tick, throttled, initial ? 0 : 1]);
  }

  /** One tick of a latency-limited upstream: its timeouts, and whether its served p95 was within the SLO. */
  recordLatency(timeouts: number, sloMet: boolean): void {
    this.timeouts += timeouts;
    this.latencyTicks++;
    if (sloMet) this.sloTicks++;
  }

  /** `waitByClass[p]`: histogram (1 ms bins) of the waits of granted requests of class p. */
  report(scenario: string, policy: string, seed: number, waitByClass: readonly Float64Array[], fluidBound: number): SimMetrics {
    const fulfillment: Record<string, number> = {};
    const waits: Record<string, number> = {};
    PRIORITIES.forEach((p, i) => {
      if (this.demandByClass[i] > 0) fulfillment[p] = round(this.servedByClass[i] / this.demandByClass[i], 4);
      if (this.demandByClass[i] > 0) waits[p] = percentile(waitByClass[i], 0.99);
    });
    const pooled = new Float64Array(Math.max(...waitByClass.map((h) => h.length)));
    for (const h of waitByClass) for (let i = 0; i < h.length; i++) pooled[i] += h[i];
    return {
      scenario, policy, seed,
      utilization: round(this.utilSum / Math.max(1, this.ticks), 4),
      served_ratio: round(this.servable > 0 ? this.served / this.servable : 1, 4),
      violations: this.violations,
      violations_initial: this.initial,
      violations_late: this.violations - this.initial,
      violations_by_tick: this.byTick,
      fulfillment,
      min_guarantee_met: round(this.guaranteeTicks > 0 ? this.guaranteeMet / this.guaranteeTicks : 1, 4),
      queue_p99_ms: percentile(pooled, 0.99),
      wait_p99_ms: waits,
      reward: round(this.reward, 2),
      fluid_bound: round(fluidBound, 2),
      fallback_ticks: this.fallbackTicks,
      ...(this.latencyTicks > 0 ? { timeouts: this.timeouts, slo_met: round(this.sloTicks / this.latencyTicks, 4) } : {}),
    };
  }
}

function percentile(hist: Float64Array, q: number): number {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i];
  if (total === 0) return 0;
  let acc = 0;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i];
    if (acc >= q * total) return i;
  }
  return hist.length - 1;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
