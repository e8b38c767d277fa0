// baseline: the best non-learned policy we can write, the one a learned
// policy has to beat (issue 14). It sees only what the daemon sees (the
// pool's observation, tick by tick) and adds to what every policy already
// gets from capacity discovery (429s, hints, and with upstream.slo_ms the
// AIMD / gradient latency rule of latency-limit.ts) a periodicity detector:
//   - Each tick with 429s beyond a probe's (more than `onsetShare` of the
//     granted rate) after a tick without is an onset of throttling. Onsets
//     are kept in a ring of the last `historyTicks` ticks, with what the
//     upstream accepted in each throttled tick (granted - throttled).
//   - The period is the lag, between minLagTicks and half the history,
//     whose autocorrelation of the onset series is highest: the number of
//     onsets that had another one exactly that lag before (a tick either
//     side allowed, for jitter; exact repeats break ties), kept when at least `minRepeats` onsets
//     repeat and they are at least `minMatch` of all onsets since the first
//     that could.
//   - While a period P holds, the capacity for the coming tick t is capped at
//     what the upstream accepted at t - P (the same phase of the last
//     cycle), less `margin`: the pool steps down when
//     the throttling is due instead of after its first 429s. Where the last
//     cycle had no throttling, nothing is capped, so recovery stays
//     discovery's. A capped tick without 429s stays in the throttled phase
//     (so the period is not forgotten because anticipation worked) only on
//     evidence: discovery's own capacity, which follows the upstream's
//     rate-limit headers, came down to within `lift` of the cap too. It is
//     remembered that much higher, so each cycle tests whether the
//     throttling is still as deep. Without evidence (a period that was not
//     one, or an upstream without headers) the tick is forgotten: a false
//     period costs one capped tick per cycle, not a lasting cut.
// The split among services is fair's (priority-ordered water-filling), so a
// lower capacity is taken from the lowest priority first.

import type { PoolObservation } from '../../ppo/observation.ts';
import { waterFill } from '../water-fill.ts';
import type { AllocationPolicy } from './types.ts';

export interface BaselineOptions {
  readonly historyTicks: number;
  readonly minLagTicks: number;
  readonly minRepeats: number;
  readonly minMatch: number;
  readonly onsetShare: number;
  readonly margin: number;
  /** How much higher a capped tick that met no 429 is remembered, for the next cycle. */
  readonly lift: number;
}

export const DEFAULT_BASELINE: BaselineOptions = {
  historyTicks: 720, minLagTicks: 8, minRepeats: 2, minMatch: 0.6, onsetShare: 0.02, margin: 0.02, lift: 0.04,
};

/** One pool's throttling history: onsets and accepted rates per tick, in rings. */
export class ThrottleHistory {
  readonly onset: Uint8Array;
  /** What the upstream accepted in a throttled tick, tokens/s; Infinity in a tick without 429s. */
  readonly accepted: Float64Array;
  ticks = 0;
  private phaseBefore = false;

  constructor(readonly size: number) {
    this.onset = new Uint8Array(size);
    this.accepted = new Float64Array(size).fill(Infinity);
  }

  /** The tick just observed; `capTps`: the cap the policy set for it (Infinity: none). */
  push(obs: PoolObservation, onsetShare: number, capTps: number, lift: number): void {
    const i = this.ticks % this.size;
    const throttled = obs.throttledTps > onsetShare * Math.max(1, obs.grantedTps);
    // A capped tick without 429s belongs to the throttled phase only on evidence: discovery (which follows
    // the upstream's own headers) came down to about the cap too. Its level is remembered a little higher
    // than what worked, so each cycle tests whether the throttling is still as deep.
    const upper = capTps * (1 + lift);
    const evidence = !throttled && Number.isFinite(capTps) && obs.effectiveTps <= upper;
    const phase = throttled || evidence;
    this.onset[i] = phase && !this.phaseBefore ? 1 : 0;
    this.accepted[i] = throttled ? Math.max(0, obs.grantedTps - obs.throttledTps) : evidence ? Math.min(obs.effectiveTps, upper) : Infinity;
    this.phaseBefore = phase;
    this.ticks++;
  }

  /** Value of ring `r` for the tick `ago` ticks before the last one pushed (0: the last). */
  at<T extends Uint8Array | Float64Array>(r: T, ago: number): number {
    return r[(((this.ticks - 1 - ago) % this.size) + this.size) % this.size];
  }
}

/** The period (ticks) of the onsets in `h`, or 0 when none holds. */
export function detectPeriod(h: ThrottleHistory, o: BaselineOptions): number {
  const n = Math.min(h.ticks, h.size);
  const ages: number[] = [];
  for (let ago = 0; ago < n; ago++) if (h.at(h.onset, ago) === 1) ages.push(ago);
  if (ages.length <= o.minRepeats) return 0;
  let best = 0;
  let bestScore = 0;
  for (let lag = o.minLagTicks; lag <= n / 2; lag++) {
    let repeats = 0;
    let exact = 0;
    let candidates = 0;
    for (const ago of ages) {
      if (ago + lag + 1 >= n) break;
      candidates++;
      if (h.at(h.onset, ago + lag)) { repeats++; exact++; } else if (h.at(h.onset, ago + lag - 1) || h.at(h.onset, ago + lag + 1)) repeats++;
    }
    if (repeats < o.minRepeats || repeats < o.minMatch * candidates) continue;
    // Exact repeats break ties between neighbouring lags; the shortest lag explains multiples of itself.
    const score = (repeats + 1e-3 * exact) / candidates;
    if (score > bestScore + 1e-9) { best = lag; bestScore = score; }
  }
  return best;
}

export class BaselinePolicy implements AllocationPolicy {
  readonly name = 'baseline';
  private readonly pools = new Map<number, ThrottleHistory>();
  /** The period found at the last tick per pool (0: none), for tests and logs. */
  readonly periods = new Map<number, number>();
  /** The cap set for the coming tick per pool (Infinity: none). */
  private readonly capped = new Map<number, number>();

  constructor(private readonly o: BaselineOptions = DEFAULT_BASELINE) {}

  /** The capacity for the coming tick: discovery's, capped where the last cycle of a periodic throttling was throttled. */
  capacityTps(obs: PoolObservation): number {
    let h = this.pools.get(obs.bucket);
    if (h === undefined) { h = new ThrottleHistory(this.o.historyTicks); this.pools.set(obs.bucket, h); }
    h.push(obs, this.o.onsetShare, this.capped.get(obs.bucket) ?? Infinity, this.o.lift);
    const period = detectPeriod(h, this.o);
    this.periods.set(obs.bucket, period);
    // The coming tick is `period` after the tick `period - 1` ago.
    const level = period > 0 ? h.at(h.accepted, period - 1) : Infinity;
    const cap = level * (1 - this.o.margin);
    // Only a cap under discovery's capacity counts as one (the upstream's phase, not discovery's own level).
    this.capped.set(obs.bucket, cap < obs.effectiveTps ? cap : Infinity);
    return Math.min(obs.effectiveTps, cap);
  }

  allocate(obs: PoolObservation): Float64Array {
    return waterFill(obs, obs.services.map((s) => s.demandTps));
  }
}
