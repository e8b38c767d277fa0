// Capacity discovery (main thread, once per pool per tick). The operator's
// capacity_tps is an upper bound; the upstream's real limit is learnt from its
// 429s (RELEASE outcome 2), the only signal of it the daemon has. Rates are
// compared as granted rates: a pool pressing its effective capacity E is
// granted about E - reserve per second, the reserve being the burst its
// bucket holds (the controller passes it), and no second admits more than E.
//   - A tick with 429s sets the ceiling to what the upstream accepted
//     (granted - throttled) and shrinks E at once to the ceiling less a
//     margin; to the ceiling itself when a probe has just met the same
//     ceiling again (measured twice: no margin needed, and between probes
//     no second admits more than the upstream took). The shrink is
//     proportionate when the pool was far from pressing E (granted under
//     `sparse` of it): a first such tick keeps at least `keep` of E, since a
//     lone 429 at low traffic says little about the upstream's limit; a
//     second tick in a row with 429s shrinks fully.
//   - Probing is the only way to see the upstream recover, and every probe
//     that finds it still reduced costs 429s, so probes are made cheap and
//     rare. After a hold, and only while demand presses on E and the granted
//     rate has reached what E allows (each step tested by traffic), E climbs
//     back with a slow start (a step doubling per clean tick) without taking
//     the granted rate past the ceiling; then one probe grants a single
//     request per tick above it: a failed probe costs one 429.
//   - A failed probe doubles the hold (up to maxHoldTicks); holds count from
//     when the probe began, so the cadence of probes does not drift with how
//     long each took. A lasting reduction of D ticks thus costs about
//     D / maxHoldTicks 429s, and a recovery is seen within maxHoldTicks plus
//     the few ticks of a probe.
//   - Above the ceiling without 429s the upstream has risen: the step keeps
//     doubling (up to maxClimbStep) to follow it fast. When 429s stop that
//     climb, it costs at most the last step; the upstream's rise since the
//     previous ceiling (per tick, a lower bound of its rate) becomes the step
//     of the next climb, after a hold of recoveryHoldTicks, so a steady ramp
//     is followed without being overtaken again.
// State is plain numbers per pool; nothing here touches shared memory.

export interface DiscoveryOptions {
  /** Fraction kept below the accepted rate after 429s. */
  readonly margin: number;
  readonly baseHoldTicks: number;
  readonly maxHoldTicks: number;
  /** Hold after 429s that stopped a climb above the previous ceiling. */
  readonly recoveryHoldTicks: number;
  /** First step of the slow start, as a fraction of capacity_tps. */
  readonly probeStep: number;
  /** Largest step, as a fraction of capacity_tps. */
  readonly maxProbeStep: number;
  /** Largest step above the ceiling (what a climb that overtakes the upstream may cost), as a fraction of capacity_tps. */
  readonly maxClimbStep: number;
  /** Lowest effective capacity, as a fraction of capacity_tps. */
  readonly floor: number;
  /** A step counts as tested once granted reaches this fraction of what E allows (less one request per tick). */
  readonly tested: number;
  /** Requests per tick the probe grants above the ceiling. */
  readonly probeRequests: number;
  /** Granted below this fraction of E: the pool was far from pressing it. */
  readonly sparse: number;
  /** The least fraction of E a first tick with 429s keeps when the pool was far from pressing it. */
  readonly keep: number;
}

export const DEFAULT_DISCOVERY: DiscoveryOptions = {
  margin: 0.01, baseHoldTicks: 5, maxHoldTicks: 15, recoveryHoldTicks: 1, probeStep: 0.005, maxProbeStep: 0.1, maxClimbStep: 0.05,
  floor: 0.05, tested: 0.97, probeRequests: 1, sparse: 0.5, keep: 0.5,
};

export interface DiscoveryInput {
  readonly tick: number;
  readonly capacityTps: number;
  readonly grantedTps: number;
  readonly throttledTps: number;
  readonly demandTps: number;
  /** The part of E the pool bucket holds as burst: not granted per second while pressing. Default 0. */
  readonly reserveTps?: number;
  /** Tick length in seconds (one request per tick is 1 / tickS tokens/s). Default 1. */
  readonly tickS?: number;
}

export class CapacityDiscovery {
  effectiveTps: number;
  private holdTicks: number;
  private nextProbeTick = 0;
  /** Step of the granted rate: of the slow start, or of the climb above the ceiling. */
  private step = 0;
  private probing = false;
  private probeStart = 0;
  /** This probe got above the ceiling without 429s: the upstream has risen. */
  private gained = false;
  /** The step a climb resumes with after 429s stopped the previous one (0: none). */
  private climb = 0;
  /** The last tick had 429s. */
  private throttledBefore = false;
  /** What the upstream accepted in the last tick with 429s, and when. */
  private ceiling = Infinity;
  private ceilingTick = 0;
  private readonly o: DiscoveryOptions;

  constructor(capacityTps: number, options: DiscoveryOptions = DEFAULT_DISCOVERY) {
    this.o = options;
    this.effectiveTps = capacityTps;
    this.holdTicks = options.baseHoldTicks;
  }

  /** Updates and returns the effective capacity for the coming tick. */
  update(x: DiscoveryInput): number {
    const o = this.o;
    const cap = x.capacityTps;
    const eff = this.effectiveTps; // in force during the tick observed
    const reserve = Math.min(Math.max(0, x.reserveTps ?? 0), eff);
    const sustained = eff - reserve;
    const unit = o.probeRequests / (x.tickS ?? 1);
    if (x.throttledTps > 0) {
      const accepted = Math.max(0, x.grantedTps - x.throttledTps);
      const failed = this.probing && !this.gained;
      const confirmed = failed && Math.abs(accepted - this.ceiling) <= 2 * unit;
      const far = x.grantedTps < o.sparse * eff && !this.throttledBefore;
      const lowest = Math.max(o.floor * cap, far ? o.keep * eff : 0);
      this.effectiveTps = Math.max(lowest, Math.min(eff, confirmed ? Math.min(accepted, this.ceiling) : accepted * (1 - o.margin)));
      if (this.probing && this.gained) {
        this.holdTicks = o.recoveryHoldTicks;
        const rise = (accepted - this.ceiling) / Math.max(1, x.tick - this.ceilingTick);
        this.climb = Math.max(unit, Math.min(o.maxClimbStep * cap, rise));
        this.step = this.climb;
      } else {
        if (failed) this.holdTicks = Math.min(o.maxHoldTicks, Math.max(o.baseHoldTicks, this.holdTicks * 2));
        this.step = o.probeStep * cap;
        this.climb = 0;
      }
      // Holds count from the start of the failed probe: the cadence does not drift.
      this.nextProbeTick = failed ? Math.max(x.tick + 1, this.probeStart + this.holdTicks) : x.tick + this.holdTicks;
      this.ceiling = accepted;
      this.ceilingTick = x.tick;
      this.probing = false;
      this.gained = false;
      this.throttledBefore = true;
    } else {
      this.throttledBefore = false;
      if (eff < cap && x.tick >= this.nextProbeTick && x.demandTps >= sustained &&
        x.grantedTps >= o.tested * sustained - unit) this.probe(x, sustained, reserve, unit);
    }
    this.effectiveTps = Math.min(this.effectiveTps, cap);
    return this.effectiveTps;
  }

  /** The level in force was tested without 429s: sets the next one (a granted rate, plus the reserve). */
  private probe(x: DiscoveryInput, sustained: number, reserve: number, unit: number): void {
    const o = this.o;
    const cap = x.capacityTps;
    if (this.step <= 0) this.step = o.probeStep * cap;
    let target: number;
    if (x.grantedTps > this.ceiling) {
      // Above the last 429 level without 429s: the upstream has risen; climb.
      if (this.probing && !this.gained) { this.gained = true; this.holdTicks = o.baseHoldTicks; }
      this.step = Math.min(o.maxClimbStep * cap, this.step);
      target = Math.max(sustained, x.grantedTps) + this.step;
      if (this.climb === 0) this.step = Math.min(o.maxClimbStep * cap, this.step * 2);
    } else if (sustained + this.step < this.ceiling) {
      target = sustained + this.step; // slow start back towards the ceiling
      this.step = Math.min(o.maxProbeStep * cap, this.step * 2);
    } else {
      // At the ceiling: the probe, one request per tick above it (or the climb's step).
      target = sustained < this.ceiling ? this.ceiling : this.ceiling + Math.max(this.climb, unit);
      this.step = Math.max(this.climb, unit);
    }
    if (!this.probing) this.probeStart = x.tick;
    this.probing = true;
    this.effectiveTps = Math.min(cap, target + reserve);
    if (this.effectiveTps >= cap) {
      this.probing = false;
      this.holdTicks = o.baseHoldTicks;
      this.ceiling = Infinity;
      this.climb = 0;
    }
  }
}
