// The figures of a pool's service observations that the water-fill, fair,
// PPO's claims and the drift of PPO's features read, one typed array per figure (main thread, or wherever a
// policy runs; nothing here is shared between threads).
//
// Reading `priority`, `minTps`, ... from 1 000 observation objects is a few
// cache misses each; an awake pool of 1 000 services paid that several times
// a tick in the water-fill alone, although about 10 of the objects change
// from one tick to the next (service-observations.ts keeps the others). The
// columns of a list of observations are the same figures in the same order;
// for a list that ServiceObservations made from the last one by rebuilding a
// few entries, it patches the last list's columns at those entries only and
// hands them over (handOver), so reading a pool's figures costs the entries
// that moved, not the services that exist. Any other list (a full tick, the
// simulator's tests, the tier split) gets columns made from its objects on
// each call (columnsOf), the same figures, never cached: nothing may then go
// stale if a caller reuses a list with changed objects.
// Columns are never written after they are handed over, except by the
// ServiceObservations that owns them, and then only after they were taken
// from the list they described (that list then reads its objects again).
// Two summaries let a reader skip the services that did not move: `moving`
// flags the entries with any traffic figure other than 0 (the others read 0
// in every one of them), and `limitsVersion` changes whenever an entry's
// priority, min_tps, max_tps or rate changes, so what a reader computed from
// those alone stays right while it is the same (model-drift.ts).

import type { ServiceObservation } from '../ppo/observation.ts';

export class ServiceColumns {
  readonly priority: Float64Array;
  /** 1 when the service is active (asked for tokens in the last few ticks). */
  readonly active: Uint8Array;
  readonly minTps: Float64Array;
  readonly maxTps: Float64Array;
  readonly limitTps: Float64Array;
  readonly demandTps: Float64Array;
  readonly queue: Float64Array;
  // The rest of what the PPO features read (model-drift.ts folds every service's features in each tick).
  readonly grantedTps: Float64Array;
  readonly deniedTps: Float64Array;
  readonly throttledTps: Float64Array;
  readonly forecastTps: Float64Array;
  readonly trendTps: Float64Array;
  readonly latencyMs: Float64Array;
  /**
   * 1 where some traffic figure (demand, forecast, trend, granted, denied,
   * queue, throttled, latency) is not 0 (NaN counts as not 0); where it is 0,
   * every one of them is 0 (or -0).
   */
  readonly moving: Uint8Array;
  /** Changes whenever set() changes an entry's priority, minTps, maxTps or limitTps (never for the same figures). */
  limitsVersion = 0;

  constructor(readonly length: number) {
    this.priority = new Float64Array(length);
    this.active = new Uint8Array(length);
    this.minTps = new Float64Array(length);
    this.maxTps = new Float64Array(length);
    this.limitTps = new Float64Array(length);
    this.demandTps = new Float64Array(length);
    this.queue = new Float64Array(length);
    this.grantedTps = new Float64Array(length);
    this.deniedTps = new Float64Array(length);
    this.throttledTps = new Float64Array(length);
    this.forecastTps = new Float64Array(length);
    this.trendTps = new Float64Array(length);
    this.latencyMs = new Float64Array(length);
    this.moving = new Uint8Array(length);
  }

  /** Entry i takes observation s's figures. */
  set(i: number, s: ServiceObservation): void {
    if (!Object.is(this.priority[i], s.priority) || !Object.is(this.minTps[i], s.minTps) || !Object.is(this.maxTps[i], s.maxTps)
      || !Object.is(this.limitTps[i], s.limitTps)) this.limitsVersion++;
    this.priority[i] = s.priority;
    this.active[i] = s.active ? 1 : 0;
    this.minTps[i] = s.minTps;
    this.maxTps[i] = s.maxTps;
    this.limitTps[i] = s.limitTps;
    this.demandTps[i] = s.demandTps;
    this.queue[i] = s.queue;
    this.grantedTps[i] = s.grantedTps;
    this.deniedTps[i] = s.deniedTps;
    this.throttledTps[i] = s.throttledTps;
    this.forecastTps[i] = s.forecastTps;
    this.trendTps[i] = s.trendTps;
    this.latencyMs[i] = s.latencyMs;
    this.moving[i] = s.demandTps === 0 && s.forecastTps === 0 && s.trendTps === 0 && s.grantedTps === 0 && s.deniedTps === 0
      && s.queue === 0 && s.throttledTps === 0 && s.latencyMs === 0 ? 0 : 1;
  }

  /** The positions of the moving entries, ascending, in out[0 .. returned count) (out at least `length` long). */
  movingPositions(out: Int32Array): number {
    const moving = this.moving;
    let m = 0;
    for (let i = 0; i < moving.length; i++) if (moving[i] !== 0) out[m++] = i;
    return m;
  }

  static from(services: readonly ServiceObservation[]): ServiceColumns {
    const c = new ServiceColumns(services.length);
    for (let i = 0; i < services.length; i++) c.set(i, services[i]);
    return c;
  }
}

/** The lists whose columns ServiceObservations keeps (its latest list per pool). */
const kept = new WeakMap<readonly ServiceObservation[], ServiceColumns>();

/** The columns of `services`: the kept ones, or made from its objects now. */
export function columnsOf(services: readonly ServiceObservation[]): ServiceColumns {
  return kept.get(services) ?? ServiceColumns.from(services);
}

/** The columns kept for `services`, if any (tests). */
export function keptColumns(services: readonly ServiceObservation[]): ServiceColumns | undefined {
  return kept.get(services);
}

/** Stops keeping the columns of `services` (a pool that sleeps: 105 bytes a service, 10 MB at 100 000). */
export function dropColumns(services: readonly ServiceObservation[]): void {
  kept.delete(services);
}

/**
 * `to` is `from` with the entries at `positions` replaced (ascending, or
 * null: every entry). Returns its columns: `from`'s, patched at those entries
 * and taken from `from`, or made anew when `from` has none (or a different
 * length). The caller must not change `to` afterwards.
 */
export function handOver(from: readonly ServiceObservation[] | null, to: readonly ServiceObservation[],
  positions: ArrayLike<number> | null): ServiceColumns {
  const c = from === null ? undefined : kept.get(from);
  let columns: ServiceColumns;
  if (c === undefined || positions === null || c.length !== to.length) columns = ServiceColumns.from(to);
  else {
    kept.delete(from!);
    for (let k = 0; k < positions.length; k++) c.set(positions[k], to[positions[k]]);
    columns = c;
  }
  kept.set(to, columns);
  return columns;
}
