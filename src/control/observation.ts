// What the policy sees each tick (built on the main thread by the controller,
// plain data so it can be posted to a Piscina worker): per service the last
// tick's demand, outcome counters, queue, in-flight, latency, current limit,
// priority, bounds and a Holt (double exponential smoothing) demand forecast;
// per pool the configured and effective capacity and the total demand; and,
// for capacity discovery, the upstream's rate-limit headers clients reported
// (RELEASE hints, taken from shared memory by poolHints).

import { BucketTable } from '../shm/bucket-table.ts';
import type { HintBoard } from '../shm/hint-board.ts';
import type { BucketSpec } from '../shm/key-index.ts';
import {
  C_DENIED_INDEX, C_GRANTED_INDEX, C_HINTS_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX,
  C_RELEASED_THROTTLED_INDEX, C_REQUESTED_INDEX,
} from '../shm/layout.ts';
import type { PoolObservation, ServiceObservation } from '../ppo/observation.ts';
import type { CounterDeltas } from './counter-deltas.ts';
import type { KeyLimits } from './key-limits.ts';
import type { HintInput } from './upstream-hints.ts';

/** Ticks a service stays "active" (its min_tps guaranteed) after its last request. */
export const ACTIVE_TICKS = 5;
const HOLT_ALPHA = 0.5;
const HOLT_BETA = 0.3;
/**
 * A forecast that has decayed below this (a thousandth of a request per second, level and trend) with no
 * demand is zero: Holt's series would otherwise take some 2 000 ticks to
 * underflow, and an idle service is at rest (pool-rest.ts) only once its
 * forecast is exactly zero.
 */
const FORECAST_FLOOR_TPS = 1e-3;

/** Holt's linear trend method over one series per bucket. */
export class DemandForecast {
  private readonly level: Float64Array;
  private readonly trend: Float64Array;
  private readonly seen: Uint8Array;

  constructor(size: number) {
    this.level = new Float64Array(size);
    this.trend = new Float64Array(size);
    this.seen = new Uint8Array(size);
  }

  update(b: number, x: number): void {
    if (!this.seen[b]) { this.level[b] = x; this.trend[b] = 0; this.seen[b] = 1; return; }
    const prev = this.level[b];
    this.level[b] = HOLT_ALPHA * x + (1 - HOLT_ALPHA) * (prev + this.trend[b]);
    this.trend[b] = HOLT_BETA * (this.level[b] - prev) + (1 - HOLT_BETA) * this.trend[b];
    if (x === 0 && Math.abs(this.level[b]) < FORECAST_FLOOR_TPS && Math.abs(this.trend[b]) < FORECAST_FLOOR_TPS) this.level[b] = this.trend[b] = 0;
  }

  forecast(b: number): number { return Math.max(0, this.level[b] + this.trend[b]); }
  /** True when b's series was seen and is exactly zero: update(b, 0) leaves it as it is. */
  isZero(b: number): boolean { return this.seen[b] === 1 && this.level[b] === 0 && this.trend[b] === 0; }
  trendOf(b: number): number { return this.trend[b]; }
}

/** Builds PoolObservations from the counter deltas of one tick. */
export class ObservationBuilder {
  private readonly forecast: DemandForecast;
  private readonly idleTicks: Int32Array;
  /** Per service, its last observation when that was at rest (serviceAtRest), else undefined. */
  private readonly resting: (ServiceObservation | undefined)[];

  constructor(size: number) {
    this.forecast = new DemandForecast(size);
    this.idleTicks = new Int32Array(size).fill(ACTIVE_TICKS);
    this.resting = new Array<ServiceObservation | undefined>(size);
  }

  /**
   * `limits`: the key's limits in force (key-limits.ts), which may differ
   * from the config's `spec`. `moved`: the key was visited this tick
   * (touched-keys.ts). A service at rest that did not move observes what it
   * observed last tick (its deltas are zero, its forecast stays zero, its
   * queue and leases change only with a touch): the same object is returned
   * while its limits and rate are those it carries (observations are never
   * mutated), so an awake pool's idle services cost no allocation.
   */
  service(spec: BucketSpec, limits: KeyLimits, table: BucketTable, d: CounterDeltas, dtS: number, moved = true): ServiceObservation {
    const b = spec.index;
    const rest = this.resting[b];
    if (!moved && rest !== undefined && rest.limitTps === table.rateTps(b) && rest.priority === limits.priority
      && rest.maxTps === limits.maxTps && rest.minTps === Math.min(limits.minTps, limits.maxTps)) {
      this.forecast.update(b, 0); // stays zero, and marks the series seen as a full observation would
      this.idleTicks[b]++;
      return rest;
    }
    const obs = this.build(spec, limits, table, d, dtS);
    if (!serviceAtRest(obs)) { this.resting[b] = undefined; return obs; }
    return this.resting[b] = restingCopy(obs);
  }

  /**
   * True when `obs`, service b's observation this tick, is its resting one and
   * its forecast is exactly zero: visited again with no touch and the same
   * limits and rate, it would observe the same object and change nothing an
   * observation shows (its idle count only grows past ACTIVE_TICKS), so the
   * visit may be skipped (service-observations.ts).
   */
  quiet(b: number, obs: ServiceObservation): boolean {
    return obs === this.resting[b] && this.forecast.isZero(b);
  }

  private build(spec: BucketSpec, limits: KeyLimits, table: BucketTable, d: CounterDeltas, dtS: number): ServiceObservation {
    const b = spec.index;
    const demand = d.delta(b, C_REQUESTED_INDEX) / dtS;
    const queue = table.queue(b);
    this.forecast.update(b, demand);
    this.idleTicks[b] = demand > 0 || queue > 0 ? 0 : this.idleTicks[b] + 1;
    const n = d.delta(b, C_LATENCY_COUNT_INDEX);
    return {
      bucket: b,
      key: spec.key,
      priority: limits.priority,
      minTps: Math.min(limits.minTps, limits.maxTps),
      maxTps: limits.maxTps,
      demandTps: demand,
      grantedTps: d.delta(b, C_GRANTED_INDEX) / dtS,
      deniedTps: d.delta(b, C_DENIED_INDEX) / dtS,
      throttledTps: d.delta(b, C_RELEASED_THROTTLED_INDEX) / dtS,
      queue,
      inFlight: table.inFlight(b),
      latencyMs: n > 0 ? d.delta(b, C_LATENCY_SUM_US_INDEX) / n / 1000 : 0,
      limitTps: table.rateTps(b),
      forecastTps: this.forecast.forecast(b),
      trendTps: this.forecast.trendOf(b),
      active: this.idleTicks[b] < ACTIVE_TICKS,
    };
  }
}

/** A whole number as a small integer (V8 then stores it in the object, not in a 16-byte box of its own). */
function small(x: number): number {
  return x === (x | 0) ? x | 0 : x;
}

/**
 * The observation of a service at rest, as kept between ticks (one per idle
 * service of an awake pool: 100 000 at 100 000 keys). Equal to `obs`, made
 * by a literal of its own field order, so V8 gives it its own hidden class
 * whose zero fields stay small integers: a full observation's class holds
 * its rates as doubles, each boxed (some 180 bytes per observation).
 */
function restingCopy(obs: ServiceObservation): ServiceObservation {
  return {
    active: false, queue: 0, inFlight: 0, demandTps: 0, grantedTps: 0, deniedTps: 0, throttledTps: 0, latencyMs: 0,
    forecastTps: 0, trendTps: 0, bucket: obs.bucket, key: obs.key, priority: obs.priority,
    minTps: small(obs.minTps), maxTps: small(obs.maxTps), limitTps: small(obs.limitTps),
  };
}

/** True when a service observation shows nothing moving: no traffic, queue, lease, latency or forecast, and not active. */
export function serviceAtRest(s: ServiceObservation): boolean {
  return s.demandTps === 0 && s.grantedTps === 0 && s.deniedTps === 0 && s.throttledTps === 0 && s.queue === 0 && s.inFlight === 0
    && s.latencyMs === 0 && s.forecastTps === 0 && s.trendTps === 0 && !s.active;
}

/** The pool's RELEASE hints since the last tick (hint-board.ts), for capacity discovery; takes them. */
export function poolHints(board: HintBoard, d: CounterDeltas, pool: number, dtS: number): HintInput {
  const range = board.take(pool, { lowTps: NaN, highTps: NaN });
  return { perS: d.delta(pool, C_HINTS_INDEX) / dtS, lowTps: range.lowTps, highTps: range.highTps };
}
