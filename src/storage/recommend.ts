// Suggested limits from history (`tpsd recommend`), a pure function of a
// key's stored points (queries.ts).
//
// Only time when demand pressed the key's limit tells what the upstream can
// take: a stretch counts when every point of it pressed (the key had
// denials or waiters, or its demand reached its limit, over the whole point),
// its rows follow each other without an idle gap, and the upstream answered
// no 429. Sustained goodput is the highest average goodput (granted minus
// failed minus upstream-429'd calls, per second) over any such stretch of at
// least `sustainMs`. From it: conservative 85 %, optimal 95 %, maximum 99 %.
//
// The verdict says what the history can support:
//   measured                 429s were seen and a pressed 429-free stretch
//                            exists: set the optimal figure (applyTps).
//   upstream-limit-not-seen  demand pressed the limit but the upstream never
//                            answered 429: the figures are a floor; no change.
//   demand-limited           demand never pressed the limit for a whole
//                            stretch (bursts, idle gaps): the history does not
//                            show the upstream's limit; no change.
// A cut is suggested only when 429s show where the upstream's limit is.

import type { Point } from './queries.ts';

export const FRACTIONS = { conservative: 0.85, optimal: 0.95, maximum: 0.99 } as const;

/** Demand within 3 % of the limit presses it (per-tick counts are whole tokens); also the limit-bound threshold. */
const PRESS_FRACTION = 0.97;
/** Rows further apart than half a row's span leave an idle gap between them. */
const GAP_FRACTION = 0.5;

export type Verdict = 'measured' | 'upstream-limit-not-seen' | 'demand-limited';

export interface Recommendation {
  verdict: Verdict;
  /** Best average goodput over a pressed 429-free stretch; null when demand-limited (so are the three figures). */
  sustainedTps: number | null;
  conservativeTps: number | null;
  optimalTps: number | null;
  maximumTps: number | null;
  /** The limit to set (the optimal figure) when the verdict is `measured`; null: no change suggested. */
  applyTps: number | null;
  evidence: {
    fromMs: number;
    toMs: number;
    samples: number;
    cleanSamples: number;
    throttledSamples: number;
    /** Points where demand pressed the limit. */
    pressedSamples: number;
    sustainMs: number;
    /** The best pressed 429-free stretch (null when demand-limited). */
    bestFromMs: number | null;
    bestToMs: number | null;
    /** Highest average goodput over any 429-free stretch of sustainMs, pressed or not, idle gaps counted as no traffic. */
    busiestTps: number;
    /** The last limit in force (null when unknown). */
    limitTps: number | null;
    /** Lowest granted rate of a sample that drew 429s (null: none seen). */
    throttledAtTps: number | null;
    /** The best stretch ran at >= 97 % of tpsd's limit: the upstream was not the bound. */
    limitBound: boolean;
    note: string;
  };
}

const goodput = (p: Point) => Math.max(0, p.granted - p.failed - p.throttled);
const start = (p: Point) => p.tsMs - p.spanMs;
const limitOf = (p: Point) => (Number.isFinite(p.limitTps) ? p.limitTps : 0);

/** Demand pressed the key's limit over the whole point. */
export function pressed(p: Point): boolean {
  if (p.coveredMs < PRESS_FRACTION * p.spanMs) return false; // idle ticks inside a roll-up minute
  if (p.denied > 0 || p.queueMax > 0) return true;
  const limit = limitOf(p);
  return limit > 0 && p.requested * 1000 >= PRESS_FRACTION * limit * p.spanMs;
}

interface Stretch { rateTps: number; fromMs: number; toMs: number; limitTps: number }

/**
 * The highest average goodput over a run of usable points lasting at least
 * sustainMs; a point that is not usable ends the run, and so does a gap
 * between points when `contiguous`.
 */
function bestStretch(points: readonly Point[], sustainMs: number, usable: (p: Point) => boolean, contiguous: boolean): Stretch | null {
  let best: Stretch | null = null;
  let i = 0, sum = 0, limitTime = 0;
  for (let j = 0; j < points.length; j++) {
    const pj = points[j];
    if (!usable(pj)) { i = j + 1; sum = 0; limitTime = 0; continue; }
    if (contiguous && j > i && start(pj) - points[j - 1].tsMs > GAP_FRACTION * pj.spanMs) { i = j; sum = 0; limitTime = 0; }
    sum += goodput(pj);
    limitTime += limitOf(pj) * pj.spanMs;
    // Shrink from the left while the stretch stays at least sustainMs long.
    while (i < j && pj.tsMs - start(points[i + 1]) >= sustainMs) {
      sum -= goodput(points[i]);
      limitTime -= limitOf(points[i]) * points[i].spanMs;
      i++;
    }
    const durationMs = pj.tsMs - start(points[i]);
    if (durationMs < sustainMs) continue;
    const rateTps = (sum / durationMs) * 1000;
    if (best === null || rateTps > best.rateTps) best = { rateTps, fromMs: start(points[i]), toMs: pj.tsMs, limitTps: limitTime / durationMs };
  }
  return best;
}

/** null when no stretch of `sustainMs` with traffic and without 429s exists. */
export function recommend(points: readonly Point[], sustainMs: number): Recommendation | null {
  const busiest = bestStretch(points, sustainMs, (p) => p.throttled === 0, false);
  if (busiest === null || busiest.rateTps <= 0) return null;
  const best = bestStretch(points, sustainMs, (p) => p.throttled === 0 && pressed(p), true);
  const throttled = points.filter((p) => p.throttled > 0);
  const throttledAtTps = throttled.length === 0 ? null : Math.min(...throttled.map((p) => (p.granted / p.spanMs) * 1000));
  const lastLimit = [...points].reverse().find((p) => Number.isFinite(p.limitTps))?.limitTps ?? null;
  const verdict: Verdict = best === null || best.rateTps <= 0 ? 'demand-limited' : throttled.length === 0 ? 'upstream-limit-not-seen' : 'measured';
  const sustained = verdict === 'demand-limited' ? null : best!.rateTps;
  const limitBound = best !== null && best.limitTps > 0 && best.rateTps >= PRESS_FRACTION * best.limitTps;
  const evidence = {
    fromMs: start(points[0]), toMs: points[points.length - 1].tsMs,
    samples: points.length, cleanSamples: points.length - throttled.length, throttledSamples: throttled.length,
    pressedSamples: points.filter(pressed).length, sustainMs,
    bestFromMs: sustained === null ? null : best!.fromMs, bestToMs: sustained === null ? null : best!.toMs,
    busiestTps: busiest.rateTps, limitTps: lastLimit, throttledAtTps, limitBound,
    note: noteFor(verdict, sustained, busiest.rateTps, lastLimit, throttledAtTps, limitBound, sustainMs),
  };
  const of = (f: number) => (sustained === null ? null : sustained * f);
  return {
    verdict, sustainedTps: sustained, conservativeTps: of(FRACTIONS.conservative), optimalTps: of(FRACTIONS.optimal),
    maximumTps: of(FRACTIONS.maximum), applyTps: verdict === 'measured' ? of(FRACTIONS.optimal) : null, evidence,
  };
}

const tps = (x: number) => `${Math.round(x * 10) / 10} tps`;
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

function noteFor(verdict: Verdict, sustained: number | null, busiest: number, limit: number | null, throttledAt: number | null,
  limitBound: boolean, sustainMs: number): string {
  if (verdict === 'demand-limited') {
    return `demand-limited: demand pressed the limit for no ${seconds(sustainMs)} on end without 429s (the busiest ${seconds(sustainMs)} ` +
      `averaged ${tps(busiest)}${limit === null ? '' : ` against a limit of ${tps(limit)}`}, idle time included); ` +
      'the history does not show the upstream\'s limit, no change suggested';
  }
  if (verdict === 'upstream-limit-not-seen') {
    return `no 429s in the window: the upstream took ${tps(sustained!)} while demand pressed tpsd's limit, and its own limit does not show ` +
      'in the history, so these figures are a floor; no change suggested';
  }
  return limitBound
    ? `the best stretch ran at tpsd's own limit (the upstream may accept more); 429s were seen from ${tps(throttledAt!)}`
    : `429s were seen from ${tps(throttledAt!)}; the figures stay below the best 429-free stretch`;
}
