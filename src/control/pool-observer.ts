// One awake pool's observation for a tick (main thread only, inside the
// controller's tick; it reads the per-tick counter deltas the tick took and
// the hint board the I/O threads write, and writes only the pool's STATS
// effective capacity and its gate's drain). It observes the pool's services
// (observation.ts, service-observations.ts), turns the pool's counter deltas
// into capacity discovery's inputs (granted, 429s, timeouts, RELEASE hints,
// mean latency, late share, services left short) and updates the effective
// capacity (capacity-discovery.ts), capped by the cluster hook (pool-gate.ts)
// and by what the policy plans (policy-runner.ts). Kept apart from
// controller.ts because it is the tick's largest step and the one place the
// counters become discovery's inputs.

import type { BucketTable } from '../shm/bucket-table.ts';
import { HintBoard } from '../shm/hint-board.ts';
import {
  C_GRANTED_INDEX, C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX, C_RELEASED_LATE_INDEX, C_RELEASED_THROTTLED_INDEX, C_RELEASED_TIMEOUT_INDEX,
  STAT_EFFECTIVE_CAPACITY_INDEX, statsBase, type ShmViews,
} from '../shm/layout.ts';
import type { PoolObservation, ServiceObservation } from '../ppo/observation.ts';
import type { CounterDeltas } from './counter-deltas.ts';
import type { KeyLimits } from './key-limits.ts';
import { ObservationBuilder, poolHints } from './observation.ts';
import type { PolicyRunner } from './policy-runner.ts';
import type { PoolGate } from './pool-gate.ts';
import type { PoolState } from './pool-rest.ts';
import { stepFloorTps, type SafetyOptions } from './safety.ts';
import type { ServiceObservations } from './service-observations.ts';
import type { TouchedKeys } from './touched-keys.ts';

/** The mean latency the pool's RELEASEs reported this tick, ms (NaN: none reported). */
export function poolLatencyMs(d: CounterDeltas, pool: number): number {
  const n = d.delta(pool, C_LATENCY_COUNT_INDEX);
  return n > 0 ? d.delta(pool, C_LATENCY_SUM_US_INDEX) / n / 1000 : NaN;
}

/** The share of the pool's RELEASEs with a latency that came back past slo_ms this tick (NaN: none reported). */
export function poolLateShare(d: CounterDeltas, pool: number): number {
  const n = d.delta(pool, C_LATENCY_COUNT_INDEX);
  return n > 0 ? d.delta(pool, C_RELEASED_LATE_INDEX) / n : NaN;
}

/**
 * Services whose demand went partly unmet in the tick observed (denied tokens, or a queue left): the latency rule's
 * pressing test (capacity-discovery.ts). A pass over every service, so only for a pool whose latency limit is in force.
 */
export function shortServices(services: readonly ServiceObservation[]): number {
  let n = 0;
  for (const s of services) if (s.deniedTps > 0 || s.queue > 0) n++;
  return n;
}

/** What the observer reads and writes: the controller's own parts, shared, not copied. */
export interface PoolObserverParts {
  views: ShmViews;
  table: BucketTable;
  deltas: CounterDeltas;
  /** Per bucket, the limits in force. */
  limits: readonly KeyLimits[];
  safety: SafetyOptions;
  runner: PolicyRunner;
  gate: PoolGate;
  observations: ServiceObservations;
  touched: TouchedKeys;
  /** false: every service is observed every tick (the controller's full tick). */
  incremental: boolean;
}

export class PoolObserver {
  private readonly parts: PoolObserverParts;
  private readonly builder: ObservationBuilder;
  private readonly hints: HintBoard;

  constructor(parts: PoolObserverParts, keyCount: number) {
    this.parts = parts;
    this.builder = new ObservationBuilder(keyCount);
    this.hints = new HintBoard(parts.views);
  }

  /** The pool's services observed: every one in a full tick, else those that may have moved (service-observations.ts). */
  private observeServices(pool: PoolState, dtS: number): { services: ServiceObservation[]; totalDemandTps: number } {
    const { limits, table, deltas } = this.parts;
    if (this.parts.incremental) return this.parts.observations.observe(pool, this.builder, limits, table, deltas, dtS, this.parts.touched);
    const services = pool.services.map((s) => this.builder.service(s, limits[s.index], table, deltas, dtS, true));
    let totalDemandTps = 0;
    for (const s of services) totalDemandTps += s.demandTps;
    return { services, totalDemandTps };
  }

  /** Observes awake pool `pool` at tick number `tick`, `dtS` seconds after the last tick; updates its effective capacity. */
  observe(pool: PoolState, dtS: number, tick: number): PoolObservation {
    const { views, deltas, limits, safety, gate } = this.parts;
    const { services, totalDemandTps } = this.observeServices(pool, dtS);
    const p = pool.spec.index;
    const grantedTps = deltas.delta(p, C_GRANTED_INDEX) / dtS;
    const throttledTps = deltas.delta(p, C_RELEASED_THROTTLED_INDEX) / dtS;
    const capacityTps = limits[p].maxTps;
    // A pool pressing its effective capacity is granted about all of it (PoolGate.shortfallTps).
    const beforeTps = views.stats[statsBase(p) + STAT_EFFECTIVE_CAPACITY_INDEX]; // last tick's, as applied
    const reserveTps = gate.shortfallTps(p, pool.discovery.effectiveTps);
    const discoveredTps = pool.discovery.update({ tick, capacityTps, grantedTps, throttledTps, demandTps: totalDemandTps,
      reserveTps, tickS: dtS, timeoutsTps: deltas.delta(p, C_RELEASED_TIMEOUT_INDEX) / dtS,
      hints: poolHints(this.hints, deltas, p, dtS), sloMs: pool.sloMs, latencyMs: poolLatencyMs(deltas, p),
      lateShare: poolLateShare(deltas, p),
      shortServices: pool.sloMs !== null && Number.isFinite(pool.discovery.latency.limitTps) ? shortServices(services) : 0 });
    const discovered = gate.capped(pool.spec.key, discoveredTps);
    const obs = { bucket: p, key: pool.spec.key, tick, capacityTps, effectiveTps: discovered, totalDemandTps,
      throttledTps, grantedTps, stepCap: safety.stepCap, stepFloorTps: stepFloorTps(safety, discovered, services.length), services };
    // A policy that plans the capacity itself (baseline's periodicity detector) may lower it, never raise it.
    const effectiveTps = this.parts.runner.capacityTps(obs);
    // A token-bucket gate's stored tokens assume the upstream's burst is there: not after a 429 (spent), nor after
    // the capacity came down (the ticks above the upstream's new rate spent it).
    if (throttledTps > 0 || effectiveTps < beforeTps) this.parts.table.drainGate(p);
    pool.effectiveTps = effectiveTps;
    views.stats[statsBase(p) + STAT_EFFECTIVE_CAPACITY_INDEX] = effectiveTps;
    return effectiveTps === discovered ? obs
      : { ...obs, effectiveTps, stepFloorTps: stepFloorTps(safety, effectiveTps, services.length) };
  }
}
