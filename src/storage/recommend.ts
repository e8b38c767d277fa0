// Suggested limits from history (`tpsd recommend`), a pure function of a
// key's stored points (queries.ts).
//
// Sustained goodput: the highest average goodput (granted minus failed minus
// upstream-429'd calls, per second) over any stretch of at least
// `sustainMs` during which the upstream answered no 429 at all. Idle gaps
// between stored rows count as time with no traffic. From it:
//   conservative 85 %, optimal 95 %, maximum 99 %.
// The evidence goes with it: the window looked at, how many samples (429-free
// and not), where the best stretch was, the lowest rate at which 429s were
// seen, and whether tpsd's own limit (not the upstream) capped the stretch,
// in which case the upstream may take more than the figures say.

import type { Point } from './queries.ts';

export const FRACTIONS = { conservative: 0.85, optimal: 0.95, maximum: 0.99 } as const;

export interface Recommendation {
  sustainedTps: number;
  conservativeTps: number;
  optimalTps: number;
  maximumTps: number;
  evidence: {
    fromMs: number;
    toMs: number;
    samples: number;
    cleanSamples: number;
    throttledSamples: number;
    sustainMs: number;
    bestFromMs: number;
    bestToMs: number;
    /** Lowest granted rate of a sample that drew 429s (null: none seen). */
    throttledAtTps: number | null;
    /** The best stretch ran at >= 97 % of tpsd's limit: the upstream was not the bound. */
    limitBound: boolean;
    note: string;
  };
}

const goodput = (p: Point) => Math.max(0, p.granted - p.failed - p.throttled);

/** null when no stretch of `sustainMs` without 429s and with traffic exists. */
export function recommend(points: readonly Point[], sustainMs: number): Recommendation | null {
  if (points.length === 0) return null;
  const start = (p: Point) => p.tsMs - p.spanMs;
  let best = -1, bestFrom = 0, bestTo = 0, bestLimit = 0;
  let i = 0, sum = 0, limitTime = 0, dirty = 0;
  for (let j = 0; j < points.length; j++) {
    const pj = points[j];
    sum += goodput(pj);
    limitTime += (Number.isFinite(pj.limitTps) ? pj.limitTps : 0) * pj.spanMs;
    if (pj.throttled > 0) dirty++;
    // Shrink from the left while the window stays at least sustainMs long.
    while (i < j && pj.tsMs - start(points[i + 1]) >= sustainMs) {
      const pi = points[i];
      sum -= goodput(pi);
      limitTime -= (Number.isFinite(pi.limitTps) ? pi.limitTps : 0) * pi.spanMs;
      if (pi.throttled > 0) dirty--;
      i++;
    }
    const duration = pj.tsMs - start(points[i]);
    if (dirty > 0 || duration < sustainMs) continue;
    const rate = (sum / duration) * 1000;
    if (rate > best) { best = rate; bestFrom = start(points[i]); bestTo = pj.tsMs; bestLimit = (limitTime / duration); }
  }
  const throttled = points.filter((p) => p.throttled > 0);
  const throttledAtTps = throttled.length === 0 ? null : Math.min(...throttled.map((p) => (p.granted / p.spanMs) * 1000));
  if (best <= 0) return null;
  const limitBound = bestLimit > 0 && best >= 0.97 * bestLimit;
  const note = throttled.length === 0
    ? 'no 429s in the window: the upstream\'s limit was never reached, so these figures are a floor'
    : limitBound ? 'the best stretch ran at tpsd\'s own limit: the upstream may accept more'
      : `429s were seen from ${Math.round(throttledAtTps!)} tps; the figures stay below the best 429-free stretch`;
  return {
    sustainedTps: best,
    conservativeTps: best * FRACTIONS.conservative,
    optimalTps: best * FRACTIONS.optimal,
    maximumTps: best * FRACTIONS.maximum,
    evidence: {
      fromMs: start(points[0]), toMs: points[points.length - 1].tsMs,
      samples: points.length, cleanSamples: points.length - throttled.length, throttledSamples: throttled.length,
      sustainMs, bestFromMs: bestFrom, bestToMs: bestTo, throttledAtTps, limitBound, note,
    },
  };
}
