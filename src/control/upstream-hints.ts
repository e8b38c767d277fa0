// Judging the upstream's rate-limit headers (RELEASE hints) against what the
// upstream did (main thread, once per pool per tick, for capacity-discovery.ts).
// Hints are evidence, not commands: a client may be stale (it reports a limit
// from before a change), misconfigured (it reports an endpoint's limit, or a
// window it did not say) or lying, and all a client can fake is its own
// hints. What no single client can fake is the pool's own record: the 429s
// and the 429-free throughput of every client together. So, per tick, with
// the lowest and highest hinted rate (limit / window) of the tick and a
// relative tolerance `tol`:
//   1. 429s at an accepted rate well below a hint (accepted < (1 - tol) x
//      hint) contradict it. When they contradict every hint of the tick,
//      hints above accepted / (1 - tol) are overruled until 429-free
//      throughput has reached them (the pool recovers by probing, as without
//      hints). A hint consistent with the tick's 429s (the upstream changed,
//      and the hint says so) is not contradicted.
//   2. A hint well below what the pool was granted without 429s in the same
//      tick (granted > hint / (1 - tol)) is ignored: the upstream plainly took
//      more. (Evidence of the same tick only: an upstream that declines, its
//      hints saying so, is not contradicted by what it took before.)
//   3. Of the tick's lowest and highest hint, the lowest not ruled out by
//      1-2 is used: a low liar among honest clients is outvoted by the
//      throughput the others got; a stale high one by the 429s.
//   4. A hint is verified when the tick's 429s corroborate it, when it
//      raises E, or when it is within `tol` below the last value so
//      verified. Any other (one that lowers E on its word alone: a quiet
//      pool has no throughput to contradict it) is unverified: it lowers E,
//      and the discovery's one-request probe checks it once demand presses:
//      a 429 verifies it, a 429-free probe above it refutes it (hints at or
//      below the probe's rate are ignored until the next tick with 429s).
//      A liar cannot walk E down by steps of less than `tol`: each is
//      measured against the last verified value, not the last step.
//   5. A verified hint is the upstream's known limit (never above
//      capacity_tps, which the discovery applies). 429s consistent with it but
//      a little below (another consumer shares the quota, a window edge) cap
//      it at what was accepted until the hinted value changes.
// A trusted hint is kept for `ttlTicks` without new hints (a quiet pool
// sends none). State is plain numbers.

/** One tick's hints of a pool: how many carried a limit, the lowest and highest hinted rate (tokens/s). */
export interface HintInput {
  readonly count: number;
  readonly lowTps: number;
  readonly highTps: number;
}

export interface HintVerdict {
  /** The upstream's limit as the hints say and the evidence allows, tokens/s. */
  readonly tps: number;
  /** Corroborated by 429s, or not lowering E: the discovery does not probe above it. */
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

export class HintJudge {
  /** Hints above this are overruled by 429s (rule 1). */
  private overruledAbove = Infinity;
  /** Hints at or below this were refuted by a 429-free probe (rule 4). */
  private refutedBelow = -Infinity;
  /** What the upstream accepted in a tick with 429s consistent with the hint in force (rule 5). */
  private consistentCap = Infinity;
  private trusted: HintVerdict | null = null;
  /** The hinted value in force, before consistentCap. */
  private value = NaN;
  private lastHintTick = -Infinity;
  /** The last value verified by 429s or by raising E; values within tol below it need no new verification. */
  private anchor = NaN;

  constructor(private readonly tol: number, private readonly ttlTicks: number) {}

  /** This tick's verdict; `eff` is the effective capacity in force during the tick. */
  judge(x: HintEvidence, eff: number): HintVerdict | null {
    const throttled = x.throttledTps > 0;
    const accepted = Math.max(0, x.grantedTps - x.throttledTps);
    this.refute(x, throttled);
    if (throttled) this.refutedBelow = -Infinity;
    // 429-free throughput makes hints up to tol above it plausible again.
    else if (this.overruledAbove < Infinity) this.overruledAbove = Math.max(this.overruledAbove, x.grantedTps / (1 - this.tol));
    const clean = throttled ? 0 : x.grantedTps;
    const h = x.hints;
    if (h !== undefined && h.count > 0 && Number.isFinite(h.lowTps)) {
      this.choose(h, throttled, accepted, clean, eff, x.tick);
    } else if (this.trusted !== null) {
      if ((throttled && accepted < (1 - this.tol) * this.value) || x.tick - this.lastHintTick > this.ttlTicks) this.drop();
      else if (throttled) this.capAt(accepted);
    }
    return this.trusted;
  }

  /** Rule 4: a 429-free tick above an unverified hint refutes it. */
  private refute(x: HintEvidence, throttled: boolean): void {
    const t = this.trusted;
    if (t === null || t.verified || throttled) return;
    if (x.grantedTps > t.tps + 0.5 / (x.tickS ?? 1)) {
      this.refutedBelow = Math.max(this.refutedBelow, x.grantedTps);
      this.drop();
    }
  }

  private choose(h: HintInput, throttled: boolean, accepted: number, clean: number, eff: number, tick: number): void {
    const tol = this.tol;
    const candidates = h.highTps > h.lowTps * (1 + tol) ? [h.lowTps, h.highTps] : [h.lowTps];
    let chosen = NaN;
    let contradicted = 0;
    for (const v of candidates) {
      if (v > this.overruledAbove || v <= this.refutedBelow) continue;
      if (throttled && accepted < (1 - tol) * v) { contradicted++; continue; }
      const corroborated = throttled && accepted <= v / (1 - tol);
      if (v < (1 - tol) * clean && !corroborated) continue;
      chosen = v;
      break;
    }
    if (contradicted === candidates.length) this.overruledAbove = Math.min(this.overruledAbove, accepted / (1 - tol));
    if (Number.isNaN(chosen)) { this.drop(); return; }
    const same = this.trusted !== null && Math.abs(chosen - this.value) <= tol * this.value;
    if (!same) this.consistentCap = Infinity;
    const corroborated = throttled && accepted <= chosen / (1 - tol);
    const verified = corroborated || chosen > eff || chosen >= (1 - tol) * this.anchor;
    if (corroborated || chosen > eff) this.anchor = chosen;
    this.value = chosen;
    this.lastHintTick = tick;
    if (throttled) this.capAt(accepted);
    this.trusted = { tps: Math.min(chosen, this.consistentCap), verified };
  }

  /** Rule 5: 429s at or under the hinted value cap it at what the upstream accepted. */
  private capAt(accepted: number): void {
    if (accepted < this.value) this.consistentCap = Math.min(this.consistentCap, accepted);
    if (this.trusted !== null) this.trusted = { tps: Math.min(this.value, this.consistentCap), verified: this.trusted.verified };
  }

  private drop(): void {
    this.trusted = null;
    this.value = NaN;
    this.anchor = NaN;
    this.consistentCap = Infinity;
  }
}
