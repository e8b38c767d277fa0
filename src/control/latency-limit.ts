// Capacity discovery's latency rule (main thread, once per pool per tick,
// called by capacity-discovery.ts; plain numbers, no shared memory). A pool
// whose upstream has `upstream.slo_ms` gets a second bound on its effective
// capacity besides the 429 one: a latency limit, Infinity while the upstream
// keeps its SLO. It reads what RELEASEs report: the tick's mean latency (a
// sum and a count per key), its late share (releases whose latency passed
// slo_ms, counted by the I/O thread, over releases with a latency) and the
// timeouts (outcome 3). The SLO is on the tail (the simulator judges each
// tick's p95: met while at most 5 % of the tick is late); the mean is the
// fast, smooth signal the limit steers by, and the tail sets where the mean
// may go. An AIMD controller whose steps are scaled by the latency gradient,
// as Netflix's Gradient2 scales its limit by target/measured, and bounded as
// TopFull bounds its actions (at most half off per tick):
//   - the target: the mean aimed at, a share of slo_ms, starts at `target`
//     (half) and moves with the tail within [minTarget, maxTarget]. A tick
//     that tested the limit (pressed on it, the mean at least `riseFrom` of
//     the target) with under `lateLow` of its releases late raises it by
//     `targetRise` a second; a tick past `lateHigh` late lowers it by
//     `targetFall` x the excess (at most `targetFallMax`). How far p95 lies
//     above the mean is the upstream's (how bunched its load, how steep its
//     knee): 1.2x to 1.7x on the simulated knee, so no fixed share is right
//     for every upstream.
//   - the cliff: on the simulated knee the tail breaks all at once (0 %
//     late at a mean of 414 ms, 7.7 % at 428), so a steady rise would break
//     it every few seconds. A breach with the mean within the SLO right
//     after a tick whose tail kept it records that mean (the cliff); the
//     target is then held `cliffMargin` under it and passes it only by
//     `targetProbe` a second, as CUBIC lingers near the window of its last
//     loss. A breach where the mean jumped past `jump` x the clean tick's is
//     the upstream's doing (its knee dropped under the limit): left to the
//     cut, no cliff and no fall.
//   - over: the mean past slo_ms, more than `lateOver` of the tick late (p95
//     past slo_ms), or any timeout. The limit becomes the rate the upstream
//     answered in time (granted less timeouts, at least half of granted)
//     times target/measured, that ratio kept within [1 - maxCut, 1 - minCut]:
//     a tick cuts at most three quarters of the granted rate, half when
//     nothing timed out. As TCP cuts at most once per round trip, the next
//     cut waits until the requests in flight at this one have been answered:
//     the latency measured, at most twice the SLO (less half a tick, at most
//     `maxSettleS`); releases reported before then describe the load before
//     the cut, and neither the target nor the limit moves meanwhile.
//   - warm: the mean between the target and the SLO. A gentle decrease of
//     at most `warmCut` per tick, only when the limit is in force.
//   - cool: the mean under the target. Growth only when the pool pressed on
//     the limit (the level was tested; capacity-discovery.ts judges it,
//     allowing grants a request short per service whose demand went unmet,
//     as quantised shares leave them), by `growShare` of the limit times
//     the square of the headroom h = 1 - measured/target (at least one
//     request per second, at most `maxStep` of capacity_tps): fast while
//     the upstream answers near its base latency (h near 1: +6 % at h 0.8),
//     slow as the mean nears the target (+0.4 % at h 0.2), so the limit
//     settles where the mean meets the target instead of overshooting a
//     knee whose latency rises steeply. Once the limit reaches the bound
//     above it (the 429 rule's capacity), it is lifted.
//   - return: a cut remembers the rate in force when its overload began
//     (CUBIC's W_max; a second cut in a row keeps the first's). While the
//     limit is under `returnLevel` of it, cool ticks also close `returnShare`
//     of the way back per second, times the same h^2: quick while the
//     upstream answers near its base latency (a stall, a burst of demand
//     past the knee, the upstream unchanged), stopped by the latency nearing
//     the target when the upstream has really shrunk. A warm tick ends the
//     return (that level is no longer safe), as does reaching it.
// A new slo_ms (a reload) starts the target and the cliff afresh: both are
// shares of the old one. Steps are per second of tick, so a shorter tick
// moves no faster.

export interface LatencyOptions {
  /** The mean latency aimed at at first, as a share of slo_ms (the tail then moves it within [minTarget, maxTarget]). */
  readonly target: number;
  /** The lowest and highest mean target, shares of slo_ms. */
  readonly minTarget: number;
  readonly maxTarget: number;
  /** A tested tick whose late share is under this raises the target (the tail has room). */
  readonly lateLow: number;
  /** A tick whose late share is over this lowers the target. */
  readonly lateHigh: number;
  /** A tick whose late share is over this is over the SLO (p95 past slo_ms): a cut, as a mean past it. */
  readonly lateOver: number;
  /** The target's rise per second of a tested tick with room in the tail, share of slo_ms. */
  readonly targetRise: number;
  /** The target's fall per second per unit of late share past lateHigh, share of slo_ms (at most targetFallMax a tick). */
  readonly targetFall: number;
  readonly targetFallMax: number;
  /** The target rises only while the mean is at least this share of it (the target, not the base latency, binds the limit). */
  readonly riseFrom: number;
  /** After the tail broke with the mean within the SLO, the target is kept this share under that mean... */
  readonly cliffMargin: number;
  /** ...and rises past it only by this much a second (a rare probe, as CUBIC's plateau near W_max). */
  readonly targetProbe: number;
  /** A tail that breaks with the mean jumping past this multiple of the last clean tick's is the upstream's doing (its knee dropped), not the target's. */
  readonly jump: number;
  /** The smallest cut of a tick over the SLO (the limit keeps at most 1 - minCut of the granted rate). */
  readonly minCut: number;
  /** The largest cut of a tick (TopFull's bound). */
  readonly maxCut: number;
  /** The largest cut per second of a tick between the target and the SLO. */
  readonly warmCut: number;
  /** Growth per second of a limit whose latency is nothing (headroom 1), as a share of it. */
  readonly growShare: number;
  /** The largest step, as a share of capacity_tps. */
  readonly maxStep: number;
  /** The lowest limit, as a share of capacity_tps. */
  readonly floor: number;
  /** The longest wait after a cut before the next one, seconds. */
  readonly maxSettleS: number;
  /** After a cut, the share of the rate in force before it that the limit returns to quickly (CUBIC's return to W_max). */
  readonly returnLevel: number;
  /** Per second, the share of the way back to that level closed at headroom 1 (times h^2, as growth). */
  readonly returnShare: number;
}

export const DEFAULT_LATENCY: LatencyOptions = {
  target: 0.5, minTarget: 0.3, maxTarget: 0.9, lateLow: 0.01, lateHigh: 0.025, lateOver: 0.05, targetRise: 0.01, targetFall: 2,
  targetFallMax: 0.1, riseFrom: 0.8, cliffMargin: 0.1, targetProbe: 0.001, jump: 1.5,
  minCut: 0.1, maxCut: 0.5, warmCut: 0.03, growShare: 0.1, maxStep: 0.05, floor: 0.05, maxSettleS: 2, returnLevel: 0.9, returnShare: 0.5,
};

export interface LatencyInput {
  /** upstream.slo_ms; null: no latency rule. */
  readonly sloMs: number | null;
  /** Mean RELEASE latency of the tick, ms (NaN: no release reported one). */
  readonly latencyMs: number;
  /** The tick's late share: releases past slo_ms / releases with a latency (NaN: none reported). */
  readonly lateShare: number;
  readonly timeoutsTps: number;
  readonly grantedTps: number;
  /** The pool pressed on the capacity in force (its level was tested). */
  readonly pressing: boolean;
  /** The bound above the latency limit (the 429 rule's effective capacity). */
  readonly upperTps: number;
  readonly capacityTps: number;
  readonly tickS: number;
}

export class LatencyLimit {
  /** The latency bound on the effective capacity; Infinity when none is in force. */
  limitTps = Infinity;
  /** Seconds until the last cut can show in what releases report (0: it has). */
  private settleS = 0;
  /** The rate in force when the last run of cuts began (CUBIC's W_max); NaN once the limit is back near it, or warm. */
  private beforeCutTps = NaN;
  /** The last tick judged was a cut: a second cut in a row belongs to the same overload. */
  private cutLast = false;
  /** The mean latency aimed at, share of slo_ms: moved by the late share within [minTarget, maxTarget]. */
  targetShare: number;
  /** The mean (share of slo_ms) of the last tick whose tail broke (late share past lateHigh) with the mean within the SLO; NaN: none yet. */
  cliffShare = NaN;
  /** The last judged tick's mean latency (ms) if its tail kept the SLO (late share at most lateHigh), else NaN. */
  private cleanMs = NaN;
  /** The slo_ms the target and the cliff are shares of. */
  private sloMs: number | null = null;

  constructor(private readonly o: LatencyOptions = DEFAULT_LATENCY) {
    this.targetShare = o.target;
  }

  update(x: LatencyInput): number {
    if (x.sloMs === null || !(x.sloMs > 0)) { this.limitTps = Infinity; return this.limitTps; }
    if (x.sloMs !== this.sloMs) this.newSlo(x.sloMs);
    const measured = x.latencyMs;
    const timeouts = x.timeoutsTps > 0;
    // As TCP cuts its window at most once per round trip: what releases report now left before the last cut.
    const settling = this.settleS > 0;
    this.settleS = Math.max(0, this.settleS - x.tickS);
    if (settling) return this.limitTps;
    this.steerTarget(x, measured);
    const target = this.targetShare * x.sloMs;
    const over = timeouts || measured > x.sloMs || x.lateShare > this.o.lateOver;
    if (over) this.over(x, target, measured);
    else if (!(measured >= 0)) return this.limitTps; // no release reported a latency: no evidence either way
    else if (measured > target) this.warm(x, target, measured);
    else this.cool(x, target, measured);
    this.cutLast = over;
    if (this.limitTps >= x.upperTps || this.limitTps >= x.capacityTps) this.lift();
    return this.limitTps;
  }

  /** A new slo_ms (first tick, reload): the target and the cliff were shares of the old one. */
  private newSlo(sloMs: number): void {
    if (this.sloMs !== null) { this.targetShare = this.o.target; this.cliffShare = NaN; this.cleanMs = NaN; }
    this.sloMs = sloMs;
  }

  /**
   * The tail moves the mean target: down in proportion to the late share past lateHigh (at most targetFallMax a
   * tick), up by targetRise a second on a tick that tested the limit (pressing it, the mean near the target) and
   * came back with under lateLow of its releases late. Bounded by [minTarget, maxTarget].
   */
  private steerTarget(x: LatencyInput, measured: number): void {
    const o = this.o;
    const late = x.lateShare;
    if (!(late >= 0)) return; // no release reported a latency
    const sloMs = x.sloMs!;
    if (late > o.lateHigh) {
      // A breach right after a clean tick with the mean jumping (the knee dropped under the limit) is the cut's to
      // answer; otherwise the target was too high for this upstream's tail.
      const jumped = this.cleanMs >= 0 && measured > o.jump * this.cleanMs;
      if (!jumped) this.targetShare -= Math.min(o.targetFallMax, o.targetFall * (late - o.lateHigh) * x.tickS);
      // The tail broke with the mean within the SLO, a small step above a tick whose tail kept it (the limit's own
      // probe): that mean is about where this upstream's p95 meets slo_ms.
      if (!jumped && measured <= sloMs && this.cleanMs >= 0) this.cliffShare = measured / sloMs;
      if (this.cliffShare >= 0) this.targetShare = Math.min(this.targetShare, (1 - o.cliffMargin) * this.cliffShare);
    } else if (late < o.lateLow && x.pressing && Number.isFinite(this.limitTps) && measured >= o.riseFrom * this.targetShare * sloMs) {
      const below = !(this.cliffShare >= 0) || this.targetShare < (1 - o.cliffMargin) * this.cliffShare;
      this.targetShare += (below ? o.targetRise : o.targetProbe) * x.tickS;
    }
    this.cleanMs = late > o.lateHigh ? NaN : measured;
    this.targetShare = Math.min(o.maxTarget, Math.max(o.minTarget, this.targetShare));
  }

  /** Past the SLO or timing out: a cut by target/measured, within [minCut, maxCut], of the rate in force. */
  private over(x: LatencyInput, target: number, measured: number): void {
    const o = this.o;
    const gradient = measured > 0 ? target / measured : 1;
    const keep = Math.min(1 - o.minCut, Math.max(1 - o.maxCut, gradient));
    // The rate in force: what the upstream answered in time (granted less timeouts, as the 429 rule takes
    // granted less 429s), unless the tick was sparse (granted under half the limit in force).
    const sparse = Number.isFinite(this.limitTps) && x.grantedTps < (1 - o.maxCut) * this.limitTps;
    const answered = Math.max(x.grantedTps - x.timeoutsTps, (1 - o.maxCut) * x.grantedTps, 1 / x.tickS);
    const base = sparse ? this.limitTps : Math.min(this.limitTps, answered);
    // The level to return to: the rate in force when this overload began (a second cut in a row keeps the first's).
    const inForce = sparse ? this.limitTps : Math.min(this.limitTps, x.grantedTps);
    this.beforeCutTps = this.cutLast ? Math.max(inForce, this.beforeCutTps || 0) : inForce;
    this.limitTps = Math.max(o.floor * x.capacityTps, base * keep);
    // The cut shows once the requests now in flight have been answered: about the latency measured, but
    // no longer than twice the SLO (a mean swollen by timeouts reported at the callers' deadline would
    // hold the next cut for the whole deadline).
    const lagMs = Math.min(Number.isFinite(measured) ? measured : 0, 2 * (x.sloMs ?? 0));
    this.settleS = Math.min(o.maxSettleS, Math.max(0, lagMs / 1000 - x.tickS / 2));
  }

  /** Between the target and the SLO: a gentle decrease while a limit is in force. */
  private warm(x: LatencyInput, target: number, measured: number): void {
    this.beforeCutTps = NaN; // the latency is past the target under the level before the cut: no return to it
    if (!Number.isFinite(this.limitTps)) return;
    const keep = Math.max(1 - this.o.warmCut * x.tickS, target / measured);
    this.limitTps = Math.max(this.o.floor * x.capacityTps, Math.min(this.limitTps, x.grantedTps + 1 / x.tickS) * keep);
  }

  /** Under the target: growth of a tested limit by the square of the headroom left (1 - measured/target). */
  private cool(x: LatencyInput, target: number, measured: number): void {
    if (!Number.isFinite(this.limitTps) || !x.pressing) return;
    const o = this.o;
    const headroom = Math.max(0, 1 - measured / target);
    const brake = x.tickS * headroom * headroom;
    // After a cut, the way back to returnLevel of the rate in force before it is closed by returnShare a second
    // (times h^2: the same brake stops the return where the latency nears the target, if the upstream has shrunk).
    const back = o.returnLevel * this.beforeCutTps - this.limitTps;
    const step = Math.max(o.growShare * this.limitTps * brake, back > 0 ? o.returnShare * back * brake : 0);
    this.limitTps += Math.min(o.maxStep * x.capacityTps * x.tickS, Math.max(1 / x.tickS, step));
    if (!(back > 0) || this.limitTps >= o.returnLevel * this.beforeCutTps) this.beforeCutTps = NaN;
  }

  /** The limit reached the bound above it: nothing to hold. */
  private lift(): void {
    this.limitTps = Infinity;
    this.beforeCutTps = NaN;
  }
}
