// Writes each key's per-tick figures into the STATS region (main thread, once
// per tick, for the keys it visits); I/O threads read them for STATUS and /metrics.

import type { KeyIndex } from '../shm/key-index.ts';
import {
  C_DENIED_INDEX, C_GRANTED_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX, C_RELEASED_FAILED_INDEX,
  C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX, STAT_DEMAND_TPS_INDEX, STAT_DENIED_TPS_INDEX,
  STAT_FAILED_TPS_INDEX, STAT_LATENCY_AVG_US_INDEX, STAT_THROTTLED_TPS_INDEX, STAT_TPS_INDEX, statsBase,
} from '../shm/layout.ts';
import type { CounterDeltas } from './counter-deltas.ts';

export function writeStats(stats: Float64Array, keys: KeyIndex, d: CounterDeltas, dtS: number): void {
  for (const spec of keys.specs) writeKeyStats(stats, spec.index, d, dtS);
}

/** writeStats for keys list[0 .. count) only (the keys the controller visits: every other key's figures are unchanged zeros). */
export function writeStatsFor(stats: Float64Array, list: Int32Array, count: number, d: CounterDeltas, dtS: number): void {
  for (let k = 0; k < count; k++) writeKeyStats(stats, list[k], d, dtS);
}

function writeKeyStats(stats: Float64Array, b: number, d: CounterDeltas, dtS: number): void {
  const s = statsBase(b);
  stats[s + STAT_TPS_INDEX] = d.delta(b, C_GRANTED_INDEX) / dtS;
  stats[s + STAT_DEMAND_TPS_INDEX] = d.delta(b, C_REQUESTED_INDEX) / dtS;
  stats[s + STAT_DENIED_TPS_INDEX] = d.delta(b, C_DENIED_INDEX) / dtS;
  stats[s + STAT_THROTTLED_TPS_INDEX] = d.delta(b, C_RELEASED_THROTTLED_INDEX) / dtS;
  stats[s + STAT_FAILED_TPS_INDEX] = d.delta(b, C_RELEASED_FAILED_INDEX) / dtS;
  const n = d.delta(b, C_LATENCY_COUNT_INDEX);
  stats[s + STAT_LATENCY_AVG_US_INDEX] = n > 0 ? d.delta(b, C_LATENCY_SUM_US_INDEX) / n : 0;
}
