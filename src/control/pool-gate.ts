// A pool's gate as the controller sizes it (main thread only, inside the
// controller's constructor and tick; no I/O thread calls any of it). What
// the gate may run at and hold: the effective capacity capacity discovery
// allows, capped by the optional cluster hook (PoolCapProvider: a shared
// pool runs on this node's share), and the burst that goes with it; what a
// window gate withholds of it; the gate's first write before any tick; and
// which sleeping pools a moved cap wakes. Kept apart from controller.ts so
// that the tick reads as its steps while the gate's arithmetic, which the
// constructor, each observation and each write all need, lives in one place.
// The hook is called in the tick and must answer at once from what it knows.

import type { BucketTable } from '../shm/bucket-table.ts';
import type { BucketSpec, KeyIndex } from '../shm/key-index.ts';
import type { KeyLimits } from './key-limits.ts';
import { asleep, wake, type PoolState } from './pool-rest.ts';

/**
 * A per-pool cap the controller consults wherever a pool's effective
 * capacity feeds its bucket (at construction and in each tick's
 * observation, before the policy divides it). Called on the main thread, in
 * the tick: it must answer at once from what it already knows.
 */
export interface PoolCapProvider {
  /** The capacity pool `poolKey` may run at this tick, given what capacity discovery allows. */
  capTps(poolKey: string, effectiveTps: number): number;
  /** The burst pool `poolKey`'s bucket may hold, given the configured one (absent: the configured one). */
  burstTokens?(poolKey: string, burst: number): number;
}

export class PoolGate {
  private readonly table: BucketTable;
  private readonly keys: KeyIndex;
  /** Per bucket, the limits in force (the controller's own array: its changes show here). */
  private readonly limits: readonly KeyLimits[];
  private readonly poolCap: PoolCapProvider | null;

  constructor(table: BucketTable, keys: KeyIndex, limits: readonly KeyLimits[], poolCap: PoolCapProvider | null) {
    this.table = table;
    this.keys = keys;
    this.limits = limits;
    this.poolCap = poolCap;
  }

  /** Whether a cluster cap hook is in force. */
  get hasCap(): boolean { return this.poolCap !== null; }

  /** The pool cap hook (ControllerOptions.poolCap): what pool `key` may run at, never above what discovery allows. */
  capped(key: string, effectiveTps: number): number {
    if (this.poolCap === null) return effectiveTps;
    const cap = this.poolCap.capTps(key, effectiveTps);
    return Number.isNaN(cap) ? 0 : Math.max(0, Math.min(effectiveTps, cap));
  }

  /**
   * The pool's burst: the configured one, or this node's part of it when the
   * pool is shared (the cap hook; n nodes' bursts add up). A token-bucket
   * gate's burst shrinks with the effective capacity: an upstream that
   * throttles to a fraction of its rate holds no more than that fraction of
   * its burst, so stored tokens never burst past it (a window gate's burst
   * bounds only the shared bucket).
   */
  gateBurst(pool: number, effectiveTps: number): number {
    const configured = this.limits[pool].burst;
    let burst = this.poolCap?.burstTokens === undefined ? configured
      : Math.min(configured, this.poolCap.burstTokens(this.keys.specs[pool].key, configured));
    const capacityTps = this.limits[pool].maxTps;
    if (!this.table.isWindowGate(pool) && effectiveTps < capacityTps) burst = Math.floor((burst * effectiveTps) / capacityTps);
    return Math.max(1, burst);
  }

  /**
   * What a pool pressing its gate is not granted per second of its effective
   * capacity: a window gate gives each take back a whole second later, one
   * millisecond more on a running clock (window-rings.ts); a token bucket
   * gate, nothing.
   */
  shortfallTps(pool: number, effectiveTps: number): number {
    if (!this.table.isWindowGate(pool)) return 0;
    return effectiveTps * (1 - 1000 / this.table.windowMs);
  }

  /**
   * Before the first tick: the gate at the configured capacity, the shared
   * bucket lending what the services' initial rates leave of it (their
   * allocation comes with the first tick).
   */
  writeInitialPool(pool: number, services: readonly BucketSpec[], capacityTps: number, nowMs: number): void {
    const burst = this.gateBurst(pool, capacityTps);
    this.table.setBurst(pool, burst);
    this.table.setRate(pool, capacityTps, nowMs);
    let assuredTps = 0;
    for (const s of services) assuredTps += this.table.rateTps(s.index);
    this.table.setLoan(pool, Math.max(0, capacityTps - assuredTps), burst, nowMs);
  }

  /** Wakes every sleeping pool whose cluster cap (capacity or burst) moved since its last evaluation. */
  wakeCapped(pools: readonly PoolState[]): void {
    for (const p of pools) {
      if (!asleep(p)) continue;
      if (this.capped(p.spec.key, p.discovery.effectiveTps) !== p.effectiveTps || this.gateBurst(p.spec.index, p.effectiveTps) !== p.burst) wake(p);
    }
  }
}
