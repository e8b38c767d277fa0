// Divides each tenant service's share among its tiers (main thread, each
// tick, after the pools' allocations are written): the tiers are the members
// of a water-fill exactly as a pool's services are (water-fill.ts, the code
// that divides a pool), with the service's reach as the capacity: its
// assured rate or, when the pool can lend it more, up to its max_tps within
// the pool's effective capacity. Each tier claims the demand it saw last tick;
// higher priorities are filled first, what is left goes to every tier by
// priority weight, so the tiers' caps always add up to the service's reach
// and no rate is held back from a tier that asks while others are idle
// (work-conserving). A tier's `min_tps`-like guarantee is its priority: the
// water-fill gives a CRITICAL tier its demand before a LOW one gets any.
// Revenue-aware: where tiers set `value_per_request`, it orders the tiers of
// one priority class (the more valuable one's demand filled first) and
// divides the class's part of what is left in proportion to value, instead
// of evenly; the classes still come in priority order and share the rest by
// their class weights (water-fill.ts fillByValue, valueFactors). A service
// none of whose tiers sets one is divided exactly as before.
// Each tier's bucket (`pool/service/~tier`) is then a cap at its part; a
// tenant takes from its own bucket, its tier's, its service's and its pool's.
//
// With governance on, a gate (TierGate, daemon/governance.ts) sees each
// tier's new cap before it is written and may hold a rise back; what it
// holds back is not handed to the other tiers that tick.
//
// Threads: main thread only (the controller's tick), like bucket-writes.ts.

import type { PoolObservation, ServiceObservation } from '../ppo/observation.ts';
import type { BucketTable } from '../shm/bucket-table.ts';
import type { BucketSpec, KeyIndex } from '../shm/key-index.ts';
import { C_REQUESTED_INDEX } from '../shm/layout.ts';
import type { CounterDeltas } from './counter-deltas.ts';
import { waterFill } from './water-fill.ts';

interface TierGroup {
  readonly service: BucketSpec;
  readonly tiers: readonly BucketSpec[];
  /** Each tier's value per request (tierValues), or null when no tier of the service has one. */
  readonly values: Float64Array | null;
}

/**
 * Each tier's `value_per_request`, a tier without one counting as the
 * lowest value its service's tiers set (neither favoured nor starved for
 * lack of a figure); null when none sets one (the split is then by priority
 * alone, as for services).
 */
export function tierValues(tiers: readonly BucketSpec[]): Float64Array | null {
  const set = tiers.map((t) => t.tier?.value_per_request).filter((v): v is number => v !== undefined);
  if (set.length === 0) return null;
  const lowest = Math.min(...set);
  return Float64Array.from(tiers, (t) => t.tier?.value_per_request ?? lowest);
}

/** Sees each tier's proposed cap before it is written; returns the cap to write (governance). */
export interface TierGate {
  admit(tier: number, proposedTps: number): number;
}

/** The tier buckets of every service with tenants, and how to divide each service among them. */
export class TierSplit {
  readonly groups: TierGroup[] = [];
  /** null: every proposed cap is written as it is. */
  gate: TierGate | null = null;

  constructor(keys: KeyIndex) {
    this.group(keys);
  }

  private group(keys: KeyIndex): void {
    this.groups.length = 0;
    for (const s of keys.specs) {
      if (s.tenants === null) continue;
      const tiers = keys.specs.filter((t) => t.tier !== null && t.parent === s.index);
      this.groups.push({ service: s, tiers, values: tierValues(tiers) });
    }
  }

  /**
   * A reloaded config's keys (the same key set, daemon/reload.ts): the tiers'
   * priorities, bursts and values per request apply from the next write; a
   * tier's priority is written to its bucket now, so every I/O thread orders
   * the tier's waiters by it at once.
   */
  reconfigure(next: KeyIndex, table: BucketTable): void {
    this.group(next);
    for (const g of this.groups) for (const t of g.tiers) table.setPriority(t.index, t.priority);
  }

  /** The split of `reachTps` among a group's tiers, given each tier's demand (tokens/s) last tick. */
  static divide(group: TierGroup, reachTps: number, demandTps: ArrayLike<number>, limitTps: ArrayLike<number>): Float64Array {
    const services: ServiceObservation[] = group.tiers.map((t, i) => ({
      bucket: t.index, key: t.key, priority: t.priority, minTps: 0, maxTps: reachTps, demandTps: demandTps[i], grantedTps: 0,
      deniedTps: 0, throttledTps: 0, queue: 0, inFlight: 0, latencyMs: 0, limitTps: limitTps[i], forecastTps: demandTps[i],
      trendTps: 0, active: demandTps[i] > 0,
    }));
    const obs: PoolObservation = {
      bucket: group.service.index, key: group.service.key, tick: 0, capacityTps: reachTps, effectiveTps: reachTps,
      totalDemandTps: 0, throttledTps: 0, grantedTps: 0, stepCap: Number.MAX_VALUE, stepFloorTps: reachTps, services,
    };
    return waterFill(obs, demandTps, group.values);
  }

  /** Writes every tier's cap for the coming tick; `reachOf(service)` is what the service may be granted per second. */
  write(table: BucketTable, deltas: CounterDeltas, dtS: number, reachOf: (service: number) => number, now: number): void {
    for (const g of this.groups) {
      const demand = g.tiers.map((t) => deltas.delta(t.index, C_REQUESTED_INDEX) / dtS);
      const limit = g.tiers.map((t) => table.rateTps(t.index));
      const split = TierSplit.divide(g, reachOf(g.service.index), demand, limit);
      g.tiers.forEach((t, i) => {
        table.setBurst(t.index, t.burst);
        table.setRate(t.index, this.gate === null ? split[i] : this.gate.admit(t.index, split[i]), now);
      });
    }
  }
}
