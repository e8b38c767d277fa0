// The simulator's report (SCENARIOS.md "Command and output"): accumulates
// per-tick tallies and turns them into the listed metrics. Single thread.

import { PRIORITIES } from '../config/types.ts';

export interface SimMetrics {
  scenario: string;
  policy: string;
  seed: number;
  utilization: number;
  served_ratio: number;
  violations: number;
  /** Violations outside the first 2 ticks after an upstream capacity drop. */
  violations_late: number;
  /** Every tick with violations: [tick, violations, 1 if late else 0]. */
  violations_by_tick: [number, number, number][];
  fulfillment: Record<string, number>;
  min_guarantee_met: number;
  queue_p99_ms: number;
  reward: number;
  fallback_ticks: number;
}

export class MetricsRecorder {
  private utilSum = 0;
  private ticks = 0;
  private served = 0;
  private servable = 0;
  private violations = 0;
  private late = 0;
  private readonly byTick: [number, number, number][] = [];
  private readonly demandByClass = [0, 0, 0, 0];
  private readonly servedByClass = [0, 0, 0, 0];
  private guaranteeTicks = 0;
  private guaranteeMet = 0;
  reward = 0;
  fallbackTicks = 0;
  private prevUpstream = NaN;
  private lastDropTick = -1e9;

  /** One tick: per-service arrays plus the upstream's limit over the tick (tokens/s). */
  record(t: {
    tick: number; tickS: number; upstreamTps: number;
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
    if (t.upstreamTps < this.prevUpstream - 1e-9) this.lastDropTick = t.tick;
    this.prevUpstream = t.upstreamTps;
    const cap = t.upstreamTps * t.tickS;
    this.ticks++;
    this.utilSum += cap > 0 ? served / cap : 1;
    this.served += served;
    this.servable += Math.min(demand, cap);
    this.violations += throttled;
    const late = t.tick - this.lastDropTick > 2;
    if (late) this.late += throttled;
    if (throttled > 0) this.byTick.push([t.tick, throttled, late ? 1 : 0]);
  }

  report(scenario: string, policy: string, seed: number, waitHistogram: Float64Array): SimMetrics {
    const fulfillment: Record<string, number> = {};
    PRIORITIES.forEach((p, i) => {
      if (this.demandByClass[i] > 0) fulfillment[p] = round(this.servedByClass[i] / this.demandByClass[i], 4);
    });
    return {
      scenario, policy, seed,
      utilization: round(this.utilSum / Math.max(1, this.ticks), 4),
      served_ratio: round(this.servable > 0 ? this.served / this.servable : 1, 4),
      violations: this.violations,
      violations_late: this.late,
      violations_by_tick: this.byTick,
      fulfillment,
      min_guarantee_met: round(this.guaranteeTicks > 0 ? this.guaranteeMet / this.guaranteeTicks : 1, 4),
      queue_p99_ms: percentile(waitHistogram, 0.99),
      reward: round(this.reward, 2),
      fallback_ticks: this.fallbackTicks,
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
