// The control loop's tick (main thread only). Each tick it refills every
// bucket (keeping lazy refill times fresh), turns the I/O threads' counters into
// per-second figures in the STATS region, and writes each key's refill rate.
// The simulator drives the same class with a ManualClock.

import type { TpsdConfig } from '../config/types.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import type { Clock } from '../shm/clock.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import {
  C_DENIED_INDEX, C_GRANTED_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX,
  C_RELEASED_FAILED_INDEX, C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX, MODE_INDEX, MODE_NAMES,
  STAT_CAPACITY_INDEX, STAT_DEMAND_TPS_INDEX, STAT_DENIED_TPS_INDEX, STAT_EFFECTIVE_CAPACITY_INDEX,
  STAT_FAILED_TPS_INDEX, STAT_LATENCY_AVG_US_INDEX, STAT_THROTTLED_TPS_INDEX, STAT_TPS_INDEX,
  TICK_SEQ_INDEX, statsBase, type ShmViews,
} from '../shm/layout.ts';
import { CounterDeltas } from './counter-deltas.ts';

export function modeIndex(mode: TpsdConfig['policy']['mode']): number {
  const name = mode === 'fair' ? 'fallback' : mode;
  return MODE_NAMES.indexOf(name);
}

export class Controller {
  readonly table: BucketTable;
  readonly deltas: CounterDeltas;
  private readonly views: ShmViews;
  private readonly keys: KeyIndex;
  private readonly clock: Clock;
  private lastTickMs: number;

  constructor(views: ShmViews, keys: KeyIndex, config: TpsdConfig, clock: Clock) {
    this.views = views;
    this.keys = keys;
    this.clock = clock;
    this.table = new BucketTable(views, clock, null);
    this.deltas = new CounterDeltas(views);
    this.lastTickMs = clock.nowMs();
    Atomics.store(views.header, MODE_INDEX, modeIndex(config.policy.mode));
    for (const spec of keys.specs) {
      if (spec.depth === 0) {
        const s = statsBase(spec.index);
        views.stats[s + STAT_CAPACITY_INDEX] = spec.maxTps;
        views.stats[s + STAT_EFFECTIVE_CAPACITY_INDEX] = spec.maxTps;
      }
    }
  }

  tick(): void {
    const now = this.clock.nowMs();
    const dtS = Math.max(1, (now - this.lastTickMs) | 0) / 1000;
    this.lastTickMs = now;
    for (let b = 0; b < this.table.size; b++) this.table.refill(b, now);
    this.deltas.read();
    const stats = this.views.stats;
    const d = this.deltas;
    for (const spec of this.keys.specs) {
      const b = spec.index;
      const s = statsBase(b);
      stats[s + STAT_TPS_INDEX] = d.delta(b, C_GRANTED_INDEX) / dtS;
      stats[s + STAT_DEMAND_TPS_INDEX] = d.delta(b, C_REQUESTED_INDEX) / dtS;
      stats[s + STAT_DENIED_TPS_INDEX] = d.delta(b, C_DENIED_INDEX) / dtS;
      stats[s + STAT_THROTTLED_TPS_INDEX] = d.delta(b, C_RELEASED_THROTTLED_INDEX) / dtS;
      stats[s + STAT_FAILED_TPS_INDEX] = d.delta(b, C_RELEASED_FAILED_INDEX) / dtS;
      const n = d.delta(b, C_LATENCY_COUNT_INDEX);
      stats[s + STAT_LATENCY_AVG_US_INDEX] = n > 0 ? d.delta(b, C_LATENCY_SUM_US_INDEX) / n : 0;
    }
    Atomics.add(this.views.header, TICK_SEQ_INDEX, 1);
  }
}
