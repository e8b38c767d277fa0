// The service observations of each awake pool, visiting only the services
// whose observation can have changed since the pool's last evaluation (main
// thread, inside the controller's tick; nothing here is shared).
//
// A service is "quiet" when its last observation was the resting one
// (observation.ts: nothing moving, a zero forecast) and its demand forecast
// is exactly zero, so the next visit with no touch would return the same
// object and change no state that an observation can show. Such a service
// is not visited again until one of these happens:
//   - an I/O thread touches it or one of its endpoints (touched-keys.ts);
//   - its limits or rate change: a live limit change (invalidate) or an
//     allocation written to the pool's buckets (invalidate, by the
//     controller), after which the pool's next evaluation visits every service.
// Every other service (touched, or not quiet last time) goes through
// ObservationBuilder.service exactly as a full visit would, in pool order,
// and the pool's total demand adds only their demands (a quiet service's is
// 0, which leaves a sum unchanged): the observation is the one a visit of
// every service builds (test/unit/control/idle-keys.test.ts compares both).
// An awake pool of 1 000 services with 10 moving then costs 10 visits and
// one copy of an array of 1 000 references, not 1 000 visits, each a few
// cache misses (spec, limits, observation, shared memory, forecast).

import type { BucketTable } from '../shm/bucket-table.ts';
import type { KeyLimits } from './key-limits.ts';
import type { ServiceObservation } from '../ppo/observation.ts';
import type { CounterDeltas } from './counter-deltas.ts';
import type { ObservationBuilder } from './observation.ts';
import type { PoolState } from './pool-rest.ts';
import type { TouchedKeys } from './touched-keys.ts';
import type { Rebuilt } from './decision.ts';
import { dropColumns, handOver } from './service-columns.ts';

export interface PoolServices {
  services: ServiceObservation[];
  totalDemandTps: number;
}

const NONE: readonly number[] = Object.freeze([]) as readonly number[];

export class ServiceObservations {
  /** positionOf[b]: b's place in its pool's services; -1 for pools, endpoints and tiers. */
  private readonly positionOf: Int32Array;
  private readonly poolOf: Int32Array;
  /** Per pool ordinal: its last evaluation's service observations; null: visit every service next time. */
  private readonly observed: (ServiceObservation[] | null)[];
  /** Per pool ordinal: the positions not quiet after its last evaluation, ascending. */
  private readonly live: (readonly number[])[];
  /** Per pool ordinal: the positions touched this tick (any order, may repeat). */
  private readonly visits: number[][];
  /** Per pool ordinal: what its last observe() rebuilt, from which list; null: every entry. */
  private readonly rebuiltOf: (Rebuilt | null)[];
  /** Per pool ordinal: 1 when its last evaluation may have changed some service's `active` flag (pool-decisions.ts). */
  private readonly flipped: Uint8Array;
  /** The ordinals with visits this tick (cleared at the next noteTouched). */
  private dirty: number[] = [];

  constructor(pools: readonly PoolState[], poolOf: Int32Array) {
    this.poolOf = poolOf;
    this.positionOf = new Int32Array(poolOf.length).fill(-1);
    for (const p of pools) p.services.forEach((s, i) => { this.positionOf[s.index] = i; });
    this.observed = pools.map(() => null);
    this.live = pools.map(() => NONE);
    this.visits = pools.map(() => []);
    this.flipped = new Uint8Array(pools.length).fill(1);
    this.rebuiltOf = pools.map(() => null);
  }

  /** The entries pool `ordinal`'s last observe() rebuilt, and the list the others came from; null: it rebuilt every entry. */
  rebuilt(ordinal: number): Rebuilt | null { return this.rebuiltOf[ordinal]; }

  /** True when pool `ordinal`'s last observe() visited every service or saw some service's `active` flag change. */
  activeMoved(ordinal: number): boolean { return this.flipped[ordinal] === 1; }

  /** Call once a tick after TouchedKeys.collect(): which services of which pools were touched. */
  noteTouched(t: TouchedKeys): void {
    for (const o of this.dirty) this.visits[o].length = 0;
    this.dirty = [];
    for (let k = 0; k < t.count; k++) {
      const b = t.list[k];
      const i = this.positionOf[b];
      if (i < 0) continue;
      const o = this.poolOf[b];
      if (this.visits[o].length === 0) this.dirty.push(o);
      this.visits[o].push(i);
    }
  }

  /** The limits or rates of pool `ordinal`'s services may have moved: its next evaluation visits every service. */
  invalidate(ordinal: number): void {
    this.observed[ordinal] = null;
  }

  /** Pool `ordinal` sleeps: its columns are not kept meanwhile (its next evaluation makes them again from its list). */
  rest(ordinal: number): void {
    const list = this.observed[ordinal];
    if (list !== null) dropColumns(list);
  }

  /** Pool's service observations this tick (`touched`: the keys visited this tick). */
  observe(pool: PoolState, builder: ObservationBuilder, limits: readonly KeyLimits[], table: BucketTable, d: CounterDeltas,
    dtS: number, touched: TouchedKeys): PoolServices {
    const o = pool.ordinal;
    const prev = this.observed[o];
    const positions = prev === null ? null : this.positions(o);
    const services = prev === null ? new Array<ServiceObservation>(pool.services.length) : prev.slice();
    const live: number[] = [];
    let flipped = prev === null;
    let totalDemandTps = 0;
    const n = positions === null ? services.length : positions.length;
    for (let k = 0; k < n; k++) {
      const i = positions === null ? k : positions[k];
      const s = pool.services[i];
      const obs = builder.service(s, limits[s.index], table, d, dtS, touched.has(s.index));
      if (!flipped && services[i].active !== obs.active) flipped = true;
      services[i] = obs;
      totalDemandTps += obs.demandTps;
      if (!builder.quiet(s.index, obs)) live.push(i);
    }
    this.observed[o] = services;
    handOver(prev, services, positions); // the water-fill and the policies read their figures from the columns (service-columns.ts)
    this.live[o] = live;
    this.flipped[o] = flipped ? 1 : 0;
    this.rebuiltOf[o] = prev === null || positions === null ? null : { from: prev, positions };
    return { services, totalDemandTps };
  }

  /** The positions to visit: last time's live ones and this tick's touched ones, ascending, each once. */
  private positions(o: number): Int32Array {
    const live = this.live[o];
    const visits = this.visits[o];
    const all = new Int32Array(live.length + visits.length);
    all.set(live);
    for (let k = 0; k < visits.length; k++) all[live.length + k] = visits[k];
    all.sort();
    let m = 0;
    for (let k = 0; k < all.length; k++) if (m === 0 || all[k] !== all[m - 1]) all[m++] = all[k];
    return all.subarray(0, m);
  }
}
