// Capacity discovery (main thread, once per pool per tick). The operator's
// capacity_tps is an upper bound; the upstream's real limit is learnt from its
// 429s (RELEASE outcome 2) and, when clients report them, from its own
// rate-limit headers (RELEASE hints, judged in upstream-hints.ts). Rates are
// compared as granted rates: a pool pressing its effective capacity E is
// granted about E - reserve per second, the reserve being the burst its
// bucket holds (the controller passes it), and no second admits more than E.
// Holds are in seconds, so a short tick does not probe more often.
//   - A tick with 429s sets the ceiling to what the upstream accepted
//     (granted - throttled) and shrinks E at once to the ceiling less a
//     margin; to the ceiling itself when a probe has just met the same
//     ceiling again (measured twice: no margin needed). The shrink is
//     proportionate when the pool was far from pressing E (granted under
//     `sparse` of it): a first such tick keeps at least `keep` of E, since a
//     lone 429 at low traffic says little about the upstream's limit; a
//     second tick in a row with 429s shrinks fully.
//   - Without hints, probing is the only way to see the upstream recover.
//     Half a second after a drop, then every `holdS` (3 s) after each failed
//     probe, while demand presses on E and the granted rate has reached what
//     E allows, E climbs back to the ceiling (a slow start, each step tested
//     by traffic) and then grants one request per tick above it: a probe
//     that finds the upstream still reduced costs one 429, one per hold.
//   - A probe that gets past a ceiling met twice means the upstream has
//     risen by an unknown amount: E climbs with a first step of `climbShare`
//     (a quarter) of the way to capacity_tps, doubling per clean tick (each
//     step at most maxClimbStep), so a step back to capacity is covered in
//     three ticks and, with the hold, seen and caught up within 5. Past a
//     ceiling measured once (a tick that ended a drop: short, or the
//     upstream drained) the climb starts gently, at probeStep, doubling.
//   - 429s that stop a climb cost at most its last step; they measure the
//     upstream's new level, and its rise per tick since the previous
//     ceiling. The next climb starts at that rise and grows by climbGrowth
//     per clean tick: a ramp is followed closely; one that outlasts a hold
//     without being met leaps as after a probe, so when a ramp ends (or
//     turns into a step) the pool catches up about as fast as after a step.
//   - A climb whose 429s soon show the upstream no higher than before it
//     was let through by credit a bursty upstream (a token bucket) had saved
//     while the pool ran below its rate. From then on the pool is held at
//     the rate the upstream accepts, so no credit builds and a probe meets a
//     429 at once: one request per hold again.
//   - A hint the judge applies is the upstream's known limit when verified:
//     E follows it both ways (never above capacity_tps, never up in a tick
//     with 429s or timeouts) and nothing probes above it. An unverified one
//     (it lowered E with nothing for or against it) only lowers E, and is
//     probed once the pool has pressed on it `verifyS`.
//   - With upstream.slo_ms, RELEASE latencies, late releases and timeouts
//     bound E too (latency-limit.ts): E is the lesser of what the rules above
//     allow and the latency limit, which shrinks when the upstream answers
//     past its SLO (the mean, or more than 5 % of a tick late) or times out
//     and grows back, by the latency gradient towards a mean target the
//     late share moves, when the pool presses on it. Without slo_ms the
//     limit never exists.
// State is plain numbers per pool; nothing here touches shared memory.

import { DEFAULT_LATENCY, LatencyLimit, type LatencyOptions } from './latency-limit.ts';
import { HintJudge, type HintInput, type HintVerdict } from './upstream-hints.ts';

export interface DiscoveryOptions {
  /** Fraction kept below the accepted rate after 429s (at least one request per tick). */
  readonly margin: number;
  /** Seconds between probes at the ceiling (one request each); as many ticks of a second, more of shorter ticks. */
  readonly holdS: number;
  /** Hold after 429s that were not a probe's (a drop, or a climb's end), seconds. */
  readonly recoveryHoldS: number;
  /** First step of the slow start back to the ceiling, as a fraction of capacity_tps. */
  readonly probeStep: number;
  /** Largest step of the slow start, as a fraction of capacity_tps. */
  readonly maxProbeStep: number;
  /** First step above the ceiling after a probe found the upstream risen, as a fraction of the way to capacity_tps. */
  readonly climbShare: number;
  /** Growth per clean tick of a climb that resumes at the measured rise. */
  readonly climbGrowth: number;
  /** Largest step above the ceiling (what a climb that overtakes the upstream may cost), as a fraction of capacity_tps. */
  readonly maxClimbStep: number;
  /** Lowest effective capacity, as a fraction of capacity_tps. */
  readonly floor: number;
  /** A step counts as tested once granted reaches this fraction of what E allows (less one request per tick). */
  readonly tested: number;
  /** Requests per tick the probe grants above the ceiling. */
  readonly probeRequests: number;
  /** The latency rule's pressing test: the least fraction of E granted, however many services fell short (RFC 7661's validated half). */
  readonly used: number;
  /** Granted below this fraction of E: the pool was far from pressing it. */
  readonly sparse: number;
  /** The least fraction of E a first tick with 429s keeps when the pool was far from pressing it. */
  readonly keep: number;
  /** Relative tolerance when hints are compared with what the upstream did (upstream-hints.ts). */
  readonly hintTolerance: number;
  /** Seconds a hint is kept without new hints. */
  readonly hintTtlS: number;
  /** Seconds the pool presses on an unverified hint before one probe checks it. */
  readonly verifyS: number;
}

export const DEFAULT_DISCOVERY: DiscoveryOptions = {
  margin: 0.01, holdS: 3, recoveryHoldS: 0.5, probeStep: 0.005, maxProbeStep: 0.1,
  climbShare: 0.25, climbGrowth: 1.5, maxClimbStep: 0.3,
  floor: 0.05, tested: 0.97, used: 0.5, probeRequests: 1, sparse: 0.5, keep: 0.5,
  hintTolerance: 0.1, hintTtlS: 30, verifyS: 60,
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
  /** RELEASE outcome 3 (the upstream did not answer in time) per second. Default 0. */
  readonly timeoutsTps?: number;
  /** The upstream's rate-limit headers reported this tick (none when absent). */
  readonly hints?: HintInput;
  /** upstream.slo_ms (absent or null: latency shrinks nothing). */
  readonly sloMs?: number | null;
  /** The tick's mean RELEASE latency, ms (NaN or absent: none reported). */
  readonly latencyMs?: number;
  /** The tick's share of RELEASEs with a latency that came back past slo_ms (NaN or absent: none reported). */
  readonly lateShare?: number;
  /** Services whose demand went partly unmet this tick (tokens denied, or a queue left). Default 1. */
  readonly shortServices?: number;
}

export class CapacityDiscovery {
  /** The effective capacity as 429s and hints have it (the latency rule may hold the pool under it). */
  private rateTps: number;
  /** The latency rule's bound (latency-limit.ts); Infinity without upstream.slo_ms or while the SLO is kept. */
  readonly latency: LatencyLimit;
  private nextProbeTick = 0;
  /** Step of the granted rate: of the slow start, or of the climb above the ceiling. */
  private step = 0;
  private probing = false;
  private probeStart = 0;
  /** This probe got above the ceiling without 429s: the upstream has risen. */
  private gained = false;
  /** Clean ticks of the current climb. */
  private climbTicks = 0;
  /** The ceiling was met again by a failed probe: it is the upstream's level, not one tick's measurement. */
  private confirmedCeiling = false;
  /** A climb found no rise after a probe succeeded: the upstream saves credit (a token bucket). */
  private bursty = false;
  /** The ceiling the last climb rose from, and the tick 429s stopped it. */
  private riseFrom = NaN;
  private stopTick = -Infinity;
  /** The step a climb resumes with after 429s stopped the previous one (0: none). */
  private climb = 0;
  /** The last tick had 429s. */
  private throttledBefore = false;
  /** What the upstream accepted in the last tick with 429s, and when. */
  private ceiling = Infinity;
  private ceilingTick = 0;
  /** holdS and recoveryHoldS in ticks of the length last seen. */
  private holdTicks: number;
  private recoveryHoldTicks: number;
  private readonly judge: HintJudge;
  /** The hint in force after the last update (null: none). */
  hint: HintVerdict | null = null;
  /** Seconds the pool has pressed on the unverified hint in force. */
  private pressedS = 0;
  private readonly o: DiscoveryOptions;

  constructor(capacityTps: number, options: DiscoveryOptions = DEFAULT_DISCOVERY, latency: LatencyOptions = DEFAULT_LATENCY) {
    this.o = options;
    this.rateTps = capacityTps;
    this.latency = new LatencyLimit(latency);
    this.holdTicks = options.holdS;
    this.recoveryHoldTicks = options.recoveryHoldS;
    this.judge = new HintJudge(options.hintTolerance, options.hintTtlS);
  }

  /** The effective capacity in force: the 429 rule's, under the latency rule's bound. */
  get effectiveTps(): number { return Math.min(this.rateTps, this.latency.limitTps); }

  /** Sets the effective capacity (a new capacity_tps, live limits): the 429 rule's level; the latency bound stays under it. */
  set effectiveTps(tps: number) {
    this.rateTps = tps;
    if (this.latency.limitTps > tps) this.latency.limitTps = Infinity;
  }

  /** Updates and returns the effective capacity for the coming tick. */
  update(x: DiscoveryInput): number {
    const inForce = this.effectiveTps;
    this.update429(x);
    this.latency.update({ sloMs: x.sloMs ?? null, latencyMs: x.latencyMs ?? NaN, lateShare: x.lateShare ?? NaN, timeoutsTps: x.timeoutsTps ?? 0,
      grantedTps: x.grantedTps, pressing: this.pressedLatency(x, inForce), upperTps: this.rateTps, capacityTps: x.capacityTps,
      tickS: x.tickS ?? 1 });
    return this.effectiveTps;
  }

  /**
   * The latency rule's evidence that the pool pressed on E (so the latency measured speaks for E's level): demand
   * reached E, and the grants fell short of it by no more than quantisation explains. A pool's grants are the sum of
   * its services' buckets, each refilled by its share of E in whole requests: a service whose demand went unmet may
   * end the tick holding part of a request it could not spend, so n short services can leave the pool up to n
   * requests per tick under E however hard they press (24 services on a 19.5 tps limit were granted 16-17). Never
   * less than `used` of E: a pool granted under half its limit did not test it, whatever its services asked (their
   * own max_tps may have refused them), as RFC 7661 counts a congestion window validated once half of it is used.
   */
  private pressedLatency(x: DiscoveryInput, inForce: number): boolean {
    const o = this.o;
    const level = inForce - Math.min(Math.max(0, x.reserveTps ?? 0), inForce);
    const short = Math.max(1, x.shortServices ?? 1) * o.probeRequests / (x.tickS ?? 1);
    return x.demandTps >= level && x.grantedTps >= Math.max(o.used * level, o.tested * level - short);
  }

  /** The 429 and hint rules: the effective capacity as they have it. */
  private update429(x: DiscoveryInput): void {
    const o = this.o;
    const cap = x.capacityTps;
    const eff = this.rateTps; // in force during the tick observed, as far as 429s go
    const reserve = Math.min(Math.max(0, x.reserveTps ?? 0), eff);
    const sustained = eff - reserve;
    const unit = o.probeRequests / (x.tickS ?? 1);
    // Holds are in seconds: a shorter tick measures noisier rates, and probing each tick would cost more.
    this.holdTicks = Math.max(1, Math.round(o.holdS / (x.tickS ?? 1)));
    this.recoveryHoldTicks = Math.max(1, Math.round(o.recoveryHoldS / (x.tickS ?? 1)));
    const hint = this.judge.judge(x, eff);
    const pressing = x.demandTps >= sustained && x.grantedTps >= o.tested * sustained - unit;
    // A verified hint moves E, nothing to probe; an unverified one is probed once the pool has pressed on it verifyS.
    this.pressedS = hint !== null && !hint.verified && hint.tps === this.hint?.tps ? this.pressedS + (pressing ? x.tickS ?? 1 : 0) : 0;
    const probeable = hint === null || (!hint.verified && this.pressedS >= o.verifyS);
    if (x.throttledTps > 0) this.throttled(x, eff, reserve, unit);
    else {
      this.throttledBefore = false;
      // An upstream timing out (outcome 3) is no upstream to push.
      if (probeable && eff < cap && x.tick >= this.nextProbeTick && pressing && (x.timeoutsTps ?? 0) === 0) this.probe(x, sustained, reserve, unit);
    }
    if (hint !== null) this.follow(hint, x);
    this.hint = hint;
    this.rateTps = Math.min(this.rateTps, cap);
  }

  /** A tick with 429s: E shrinks to what the upstream accepted; the next probe waits a hold. */
  private throttled(x: DiscoveryInput, eff: number, reserve: number, unit: number): void {
    const o = this.o;
    const cap = x.capacityTps;
    const accepted = Math.max(0, x.grantedTps - x.throttledTps);
    const failed = this.probing && !this.gained;
    const stopped = this.probing && this.gained;
    const confirmed = failed && Math.abs(accepted - this.ceiling) <= 2 * unit;
    const far = x.grantedTps < o.sparse * eff && !this.throttledBefore;
    const lowest = Math.max(o.floor * cap, far ? o.keep * eff : 0);
    // A climb's 429s measure the upstream's new level: the pool was pressing, the window is full. Against a
    // bursty upstream the pool is held at the rate it accepts (E less the reserve), so it saves no credit
    // that would let the next probe through.
    // A tick's count is uncertain by a request at its edges (grants and their releases straddle ticks): a
    // first measurement's margin is at least that request.
    const level = this.bursty ? accepted + reserve : confirmed ? Math.min(accepted, this.ceiling) : stopped ? accepted
      : accepted - Math.max(o.margin * accepted, unit);
    this.rateTps = Math.max(lowest, Math.min(eff, level));
    if (!this.probing && x.tick - this.stopTick <= this.holdTicks && accepted <= this.riseFrom * (1 + o.margin) + 2 * unit) {
      // Soon after a climb, the upstream takes no more than before it: the probe's success was credit a
      // bursty upstream (a token bucket) had saved while the pool ran below its rate, not a rise.
      this.bursty = true;
      this.stopTick = -Infinity;
    }
    if (stopped) {
      this.stopTick = x.tick;
      const rise = (accepted - this.ceiling) / Math.max(1, x.tick - this.ceilingTick);
      this.climb = Math.max(unit, Math.min(o.maxClimbStep * cap, rise));
      this.step = this.climb;
    } else {
      this.step = o.probeStep * cap;
      this.climb = 0;
    }
    // Holds count from the start of the failed probe: the cadence does not drift. After a drop's 429s, the
    // first probe comes sooner: what a tick accepted while the upstream changed may understate it.
    this.nextProbeTick = failed ? Math.max(x.tick + 1, this.probeStart + this.holdTicks) : x.tick + this.recoveryHoldTicks;
    this.confirmedCeiling = confirmed || (this.confirmedCeiling && failed);
    this.ceiling = accepted;
    this.ceilingTick = x.tick;
    this.probing = false;
    this.gained = false;
    this.throttledBefore = true;
  }

  /** The level in force was tested without 429s: sets the next one (a granted rate, plus the reserve). */
  private probe(x: DiscoveryInput, sustained: number, reserve: number, unit: number): void {
    const o = this.o;
    const cap = x.capacityTps;
    const maxStep = o.maxClimbStep * cap;
    if (this.step <= 0) this.step = o.probeStep * cap;
    let target: number;
    if (x.grantedTps > this.ceiling && this.judge.refuted(unit)) {
      // Above the last 429 level (or an unverified hint) without 429s: the upstream has risen; climb.
      const leap = Math.max(unit, Math.min(maxStep, o.climbShare * (cap - Math.max(sustained, x.grantedTps))));
      if (!this.gained) {
        this.gained = true;
        this.riseFrom = this.ceiling;
        this.climbTicks = 0;
        // A ceiling met twice is the upstream's level: getting past it means a rise worth a leap. Past
        // one measured once (a tick that ended a drop, short or drained), the climb starts gently.
        this.step = this.climb > 0 ? this.climb : this.confirmedCeiling ? leap : o.probeStep * cap;
      } else if (this.climb > 0 && ++this.climbTicks > this.holdTicks) {
        // Following a ramp longer than a hold without meeting it: it rises faster than measured.
        this.climb = 0;
        this.step = Math.max(this.step, leap);
      } else this.step = Math.min(maxStep, this.step * (this.climb > 0 ? o.climbGrowth : 2));
      target = Math.max(sustained, x.grantedTps) + this.step;
    } else if (sustained + reserve + this.step < this.ceiling) {
      target = sustained + this.step; // slow start back towards the ceiling
      this.step = Math.min(o.maxProbeStep * cap, this.step * 2);
    } else {
      // E within a step of the ceiling: the probe, one request per tick above it (or the climb's step).
      target = this.ceiling + Math.max(this.climb, unit);
      this.probeStart = x.tick;
    }
    if (!this.probing) this.probeStart = x.tick;
    this.probing = true;
    this.rateTps = Math.min(cap, target + reserve);
    if (this.rateTps >= cap) this.reset();
  }

  /** Back at capacity_tps: nothing left to discover. */
  private reset(): void {
    this.probing = false;
    this.gained = false;
    this.ceiling = Infinity;
    this.climb = 0;
    this.bursty = false;
    this.confirmedCeiling = false;
  }

  /**
   * The hint applied: verified, E follows it both ways, but not up in a tick
   * with 429s or timeouts; unverified, it only lowers E (not under a probe
   * that is testing it).
   */
  private follow(hint: HintVerdict, x: DiscoveryInput): void {
    const distress = x.throttledTps > 0 || (x.timeoutsTps ?? 0) > 0;
    const known = Math.min(x.capacityTps, hint.tps);
    if (!hint.verified) {
      if (known < this.rateTps && !this.probing) this.settle(x.tick, known);
      return;
    }
    const level = distress ? Math.min(this.rateTps, known) : known;
    if (level !== this.rateTps || this.probing) this.settle(x.tick, level);
  }

  /** E set from a hint: the level counts as the ceiling, and probing starts over from it. */
  private settle(tick: number, level: number): void {
    this.rateTps = level;
    this.probing = false;
    this.gained = false;
    this.climb = 0;
    this.step = this.o.probeStep * level;
    if (level < this.ceiling || !Number.isFinite(this.ceiling)) {
      this.ceiling = level;
      this.ceilingTick = tick;
    }
    this.nextProbeTick = Math.max(this.nextProbeTick, tick + this.holdTicks);
  }
}
