// Capacity discovery (main thread, once per pool per tick). The operator's
// capacity_tps is an upper bound; the upstream's real limit is learnt from its
// 429s (RELEASE outcome 2):
//   - a tick with 429s shrinks the effective capacity at once to what the
//     upstream accepted (granted - throttled) less a safety margin;
//   - after a hold time without 429s, and only while demand presses against
//     the effective capacity, it probes back up with a slow start (a small
//     step that doubles each clean tick; the next step is taken only once the
//     granted rate has reached the current one, so every step is tested)
//     back to the level the upstream last accepted, and above it again from
//     a fine step (0.1% of capacity), so a probe that finds the upstream
//     still reduced costs only a handful of 429s; up to capacity_tps;
//   - a probe that meets 429s without ever gaining doubles the hold (up to
//     maxHoldTicks), so a lasting upstream reduction is probed ever more
//     rarely; one that got cleanly above the last 429 level (the upstream
//     is recovering) resets it.
// State is plain numbers per pool; nothing here touches shared memory.

export interface DiscoveryOptions {
  /** Fraction kept below the accepted rate after 429s. */
  readonly margin: number;
  readonly baseHoldTicks: number;
  readonly maxHoldTicks: number;
  /** First probe step, as a fraction of capacity_tps. */
  readonly probeStep: number;
  /** Largest probe step, as a fraction of capacity_tps. */
  readonly maxProbeStep: number;
  /** Lowest effective capacity, as a fraction of capacity_tps. */
  readonly floor: number;
  /** A step counts as tested once granted reaches this fraction of it. */
  readonly tested: number;
  /** First step above the last 429 level, as a fraction of capacity_tps. */
  readonly fineStep: number;
}

export const DEFAULT_DISCOVERY: DiscoveryOptions = {
  margin: 0.01, baseHoldTicks: 5, maxHoldTicks: 20, probeStep: 0.005, maxProbeStep: 0.1, floor: 0.05, tested: 0.9, fineStep: 0.002,
};

export interface DiscoveryInput {
  readonly tick: number;
  readonly capacityTps: number;
  readonly grantedTps: number;
  readonly throttledTps: number;
  readonly demandTps: number;
}

export class CapacityDiscovery {
  effectiveTps: number;
  private holdTicks: number;
  private nextProbeTick = 0;
  private step: number;
  private probing = false;
  private gained = false;
  /** What the upstream accepted in the last tick with 429s. */
  private ceiling = Infinity;
  private readonly o: DiscoveryOptions;

  constructor(capacityTps: number, options: DiscoveryOptions = DEFAULT_DISCOVERY) {
    this.o = options;
    this.effectiveTps = capacityTps;
    this.holdTicks = options.baseHoldTicks;
    this.step = options.probeStep * capacityTps;
  }

  /** Updates and returns the effective capacity for the coming tick. */
  update(x: DiscoveryInput): number {
    const o = this.o;
    const cap = x.capacityTps;
    if (x.throttledTps > 0) {
      const accepted = Math.max(0, x.grantedTps - x.throttledTps);
      this.ceiling = accepted;
      this.effectiveTps = Math.max(o.floor * cap, Math.min(this.effectiveTps, accepted * (1 - o.margin)));
      if (this.probing) this.holdTicks = this.gained ? o.baseHoldTicks : Math.min(o.maxHoldTicks, this.holdTicks * 2);
      this.nextProbeTick = x.tick + this.holdTicks;
      this.probing = false;
      this.gained = false;
      this.step = o.probeStep * cap;
    } else if (this.effectiveTps < cap && x.tick >= this.nextProbeTick && x.demandTps >= 0.98 * this.effectiveTps &&
      x.grantedTps >= o.tested * this.effectiveTps) {
      // The last step was tested (traffic reached it) without 429s: take the next one.
      if (this.probing && x.grantedTps > this.ceiling) this.gained = true;
      this.probing = true;
      if (this.effectiveTps < this.ceiling) {
        // Back up to what the upstream last accepted, then beyond it from a fine step.
        this.effectiveTps = Math.min(this.ceiling, this.effectiveTps + this.step);
        this.step = this.effectiveTps >= this.ceiling ? o.fineStep * cap : Math.min(o.maxProbeStep * cap, this.step * 2);
      } else {
        this.effectiveTps = Math.min(cap, this.effectiveTps + this.step);
        this.step = Math.min(o.maxProbeStep * cap, this.step * 2);
      }
      if (this.effectiveTps >= cap) { this.probing = false; this.holdTicks = o.baseHoldTicks; }
    }
    this.effectiveTps = Math.min(this.effectiveTps, cap);
    return this.effectiveTps;
  }
}
