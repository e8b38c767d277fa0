// Judging the upstream's rate-limit headers (RELEASE hints) against what the
// upstream did (main thread, once per pool per tick, for capacity-discovery.ts).
// Hints are evidence, not commands: a client may be stale (it reports a limit
// from before a change), misconfigured (it reports an endpoint's limit, or a
// window it did not say) or lying, and all a client can fake is its own
// RELEASEs. What no single client can fake is the pool's own record: the
// 429s and the 429-free throughput of every client together. So, per tick,
// with the lowest and highest hinted rate (limit / window) of the tick and a
// relative tolerance `tol`:
//   1. 429s in a tick in which the pool was granted at least (1 - tol) x a
//      hint, but the upstream accepted less than (1 - tol) x it, contradict
//      it, unless the tick before ran above the hint (its aftermath: a
//      drained upstream). When they contradict every hint of the tick,
//      hints above accepted / (1 - tol) are overruled until 429-free
//      throughput has reached them (the pool recovers by probing, as
//      without hints). A hint consistent with the tick's 429s (the upstream
//      changed, and the hint says so) is not contradicted.
//   2. A hint well below the 429-free rate of the last second of ticks
//      (hint < (1 - tol) x that rate) is ignored, unless the tick's 429s
//      corroborate it. Only the last second counts: an upstream that
//      declines, its hints saying so, is not contradicted by what it took
//      before; a second, not a tick, so short ticks' noise does not either.
//   3. A hint is verified when the tick's 429s corroborate it (they came
//      while the pool's effective capacity was at most hint / (1 - tol), or
//      the upstream accepted within tol of it), when it raises E, or when it
//      is within tol below the last value so verified. Another (one that
//      lowers E with nothing for or against it: a quiet pool's drop) is
//      applied, unverified; once the pool has pressed on it for verifyS
//      seconds, the discovery's one-request probe checks it: a 429 verifies
//      it, a second of 429-free traffic above it refutes it (refuted():
//      hints at or below that rate are then ignored until the next tick with
//      429s). So an honest drop costs at most that one request, and a liar
//      alone on a quiet pool holds it down for verifyS of demand at most. A
//      liar cannot walk E down by steps under tol either: each is measured
//      against the last verified value, not the last step.
//   4. Of the tick's lowest and highest hint, the lowest not ruled out by
//      1-2 is applied: a low liar among honest clients is outvoted by the
//      throughput the others got; a stale high one by the 429s. With none,
//      the last applied hint stays (for ttlS seconds).
//   5. The hint applied is the upstream's known limit (never above
//      capacity_tps, which the discovery applies). 429s consistent with it
//      but a little below, while the pool was at or under it for two ticks
//      (another consumer shares the quota, a window edge; not the aftermath
//      of running above it), cap it at what was accepted until the hinted
//      value changes.
// What remains open: a client that also reports 429s it never got (outcome
// 2 on its own leases) can corroborate its own low hint, as it could shrink
// the pool with those 429s alone; telling clients apart is beyond one
// pool's counters. State is plain numbers.

/** One tick's hints of a pool: how many carried a limit (per second), the lowest and highest hinted rate (tokens/s; NaN: none). */
export interface HintInput {
  readonly perS: number;
  readonly lowTps: number;
  readonly highTps: number;
}

/** The hint applied: the upstream's limit as the hints say and the evidence allows, tokens/s. */
export interface HintVerdict {
  readonly tps: number;
  /** Corroborated, raising E, or near the last such value: the discovery does not probe above it. */
  readonly verified: boolean;
}

/** The part of a tick's record the judge reads (capacity-discovery.ts DiscoveryInput). */
export interface HintEvidence {
  readonly tick: number;
  readonly grantedTps: number;
  readonly throttledTps: number;
  readonly tickS?: number;
  readonly hints?: HintInput;
}

/** Granted requests of the last ticks, to rate what the upstream took without 429s over (about) a second. */
class RecentTicks {
  private static readonly SIZE = 64;
  private readonly requests = new Float64Array(RecentTicks.SIZE);
  private readonly seconds = new Float64Array(RecentTicks.SIZE);
  private readonly throttled = new Uint8Array(RecentTicks.SIZE);
  private next = 0;
  private count = 0;

  push(grantedTps: number, tickS: number, throttled: boolean): void {
    this.requests[this.next] = grantedTps * tickS;
    this.seconds[this.next] = tickS;
    this.throttled[this.next] = throttled ? 1 : 0;
    this.next = (this.next + 1) % RecentTicks.SIZE;
    this.count = Math.min(RecentTicks.SIZE, this.count + 1);
  }

  /** Granted per second over the newest ticks covering a second (or all kept), 0 if any of them had 429s. */
  cleanRate(): number {
    let requests = 0;
    let seconds = 0;
    for (let k = 1; k <= this.count && seconds < 1; k++) {
      const i = (this.next - k + RecentTicks.SIZE) % RecentTicks.SIZE;
      if (this.throttled[i]) return 0;
      requests += this.requests[i];
      seconds += this.seconds[i];
    }
    return seconds > 0 ? requests / seconds : 0;
  }
}

export class HintJudge {
  private readonly recent = new RecentTicks();
  /** Hints above this are overruled by 429s (rule 1). */
  private overruledAbove = Infinity;
  /** What the upstream accepted in a tick with 429s consistent with the hint in force (rule 5). */
  private consistentCap = Infinity;
  /** The effective capacity in force the tick before. */
  private prevEff = Infinity;
  private trusted: HintVerdict | null = null;
  /** The hinted value in force, before consistentCap. */
  private value = NaN;
  /** The last value verified by 429s or by raising E (rule 3). */
  private anchor = NaN;
  /** Hints at or below this were refuted by the probe (rule 3). */
  private refutedBelow = -Infinity;
  private lastHintTick = -Infinity;

  constructor(private readonly tol: number, private readonly ttlS: number) {}

  /** This tick's verdict; `eff` is the effective capacity in force during the tick. */
  judge(x: HintEvidence, eff: number): HintVerdict | null {
    const throttled = x.throttledTps > 0;
    const accepted = Math.max(0, x.grantedTps - x.throttledTps);
    this.recent.push(x.grantedTps, x.tickS ?? 1, throttled);
    const clean = this.recent.cleanRate();
    if (throttled) this.refutedBelow = -Infinity;
    // 429-free throughput makes hints up to tol above it plausible again.
    else if (this.overruledAbove < Infinity) this.overruledAbove = Math.max(this.overruledAbove, clean / (1 - this.tol));
    const h = x.hints;
    if (h !== undefined && Number.isFinite(h.lowTps)) {
      this.choose(h, x, accepted, clean, eff);
    } else if (this.trusted !== null) this.keep(x, accepted, eff);
    this.prevEff = eff;
    return this.trusted;
  }

  /**
   * Rule 3, for the discovery's probe above an unverified hint: true (and the
   * hint refuted) once the upstream has taken more than it says, without a
   * 429, over the last second; true at once when there is no such hint.
   */
  refuted(unitTps: number): boolean {
    const t = this.trusted;
    if (t === null || t.verified) return true;
    const clean = this.recent.cleanRate();
    if (!(clean > t.tps + unitTps / 2)) return false;
    this.refutedBelow = Math.max(this.refutedBelow, clean);
    this.drop();
    return true;
  }

  /**
   * Rule 1: the pool offered about v and the upstream took well under it
   * (not in the aftermath of a tick that ran above v: a drained upstream
   * takes less for a moment).
   */
  private contradicts(v: number, x: HintEvidence, accepted: number): boolean {
    return x.throttledTps > 0 && x.grantedTps >= (1 - this.tol) * v && accepted < (1 - this.tol) * v && this.prevEff <= v;
  }

  private choose(h: HintInput, x: HintEvidence, accepted: number, clean: number, eff: number): void {
    const tol = this.tol;
    const throttled = x.throttledTps > 0;
    const candidates = h.highTps > h.lowTps * (1 + tol) ? [h.lowTps, h.highTps] : [h.lowTps];
    let chosen = NaN;
    let verified = false;
    let contradicted = 0;
    for (const v of candidates) {
      if (v > this.overruledAbove || v <= this.refutedBelow) continue;
      if (this.contradicts(v, x, accepted)) { contradicted++; continue; }
      const corroborated = throttled && (eff <= v / (1 - tol) || (accepted >= (1 - tol) * v && accepted <= v / (1 - tol)));
      if (v < (1 - tol) * clean && !corroborated) continue;
      verified = corroborated || v > eff || v >= (1 - tol) * this.anchor;
      if (corroborated || v > eff) this.anchor = v;
      chosen = v;
      break;
    }
    if (contradicted === candidates.length) this.overruledAbove = Math.min(this.overruledAbove, accepted / (1 - tol));
    if (Number.isNaN(chosen)) {
      // Nothing applicable this tick: the last applied hint stays, unless this tick's 429s contradict it.
      if (this.trusted !== null) this.keep(x, accepted, eff);
      return;
    }
    if (!(this.trusted !== null && Math.abs(chosen - this.value) <= tol * this.value)) this.consistentCap = Infinity;
    this.value = chosen;
    this.lastHintTick = x.tick;
    this.trusted = { tps: Math.min(chosen, this.consistentCap), verified };
    if (throttled) this.capAt(accepted, eff);
  }

  /** The last applied hint, for a tick that brings none applicable: dropped when contradicted or too old. */
  private keep(x: HintEvidence, accepted: number, eff: number): void {
    if (this.contradicts(this.value, x, accepted) || (x.tick - this.lastHintTick) * (x.tickS ?? 1) > this.ttlS) this.drop();
    else if (x.throttledTps > 0) this.capAt(accepted, eff);
  }

  /**
   * Rule 5: 429s under the hinted value, with the pool at or under it for two
   * ticks (not the aftermath of running above it), cap it at what was accepted.
   */
  private capAt(accepted: number, eff: number): void {
    if (accepted < this.value && eff <= this.value && this.prevEff <= this.value) {
      this.consistentCap = Math.min(this.consistentCap, accepted);
    }
    if (this.trusted !== null) this.trusted = { tps: Math.min(this.value, this.consistentCap), verified: this.trusted.verified };
  }

  private drop(): void {
    this.trusted = null;
    this.value = NaN;
    this.anchor = NaN;
    this.consistentCap = Infinity;
  }
}
