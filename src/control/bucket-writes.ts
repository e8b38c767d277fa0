// How a tick's allocation reaches the buckets (main thread: the controller's
// tick; the simulator and the tests drive the same function). The scheme the
// buckets run is in src/shm/bucket-table.ts; in short, per pool:
//   - the gate refills at the effective capacity (a sliding window of it, or
//     a token bucket with the pool's burst): the upstream's bound, no reserve;
//   - each service's assured bucket at its allocation (the policy's output
//     after the safety layer), with its configured burst, so an acquire that
//     fits the config stays grantable whatever the allocation;
//   - each service's ceiling at max_tps, with its burst: every take of the
//     service, assured or borrowed, passes it, so together they never
//     exceed max_tps and one burst;
//   - the pool's shared bucket at the effective capacity less every
//     allocation: what nobody is assured of (plus, as they happen, the
//     spills of full service buckets), lent in priority order;
//   - each service's reservation at its min_tps, as far as its allocation
//     covers it (drawn on only while the gate is short: min_tps holds
//     whatever higher classes ask);
//   - endpoints at their own max_tps (caps; their service's buckets decide).
// Gates and assured rates that decrease are written before those that
// increase, so their sum never overshoots mid-rebalance; the loans follow.

import type { BucketTable } from '../shm/bucket-table.ts';
import type { KeyLimits } from './key-limits.ts';

/** One pool's allocation for the coming tick. */
export interface PoolAllocation {
  readonly pool: number;
  readonly effectiveTps: number;
  /** The gate's burst, tokens (the configured one, or a cluster node's part of it). */
  readonly burst: number;
  /** Bucket index of each service, in the order of `alloc`. */
  readonly services: readonly number[];
  /** Bucket indices of each service's endpoints. */
  readonly endpoints: readonly (readonly number[])[];
  /** Assured tokens/s per service. */
  readonly alloc: ArrayLike<number>;
}

/** Writes every pool's allocation; `limits[b]` are key b's limits in force (bursts, max_tps). */
export function writeAllocations(table: BucketTable, limits: readonly KeyLimits[], pools: readonly PoolAllocation[], now: number): void {
  const shrink: [number, number, number][] = [];
  const grow: [number, number, number][] = [];
  const loans: [number, number, number][] = [];
  const reserves: [number, number][] = [];
  const plan = (b: number, tps: number, burst: number): void => {
    (tps < table.rateTps(b) ? shrink : grow).push([b, tps, burst]);
  };
  for (const p of pools) {
    plan(p.pool, p.effectiveTps, p.burst);
    let assuredTps = 0;
    p.services.forEach((s, i) => {
      const l = limits[s];
      plan(s, p.alloc[i], l.burst);
      loans.push([s, l.maxTps, l.burst]);
      reserves.push([s, Math.max(0, Math.min(l.minTps, p.alloc[i]))]);
      assuredTps += p.alloc[i];
      for (const e of p.endpoints[i]) plan(e, limits[e].maxTps, limits[e].burst);
    });
    loans.push([p.pool, Math.max(0, p.effectiveTps - assuredTps), p.burst]);
  }
  for (const [b, tps, burst] of shrink) { table.setRate(b, tps, now); table.setBurst(b, burst); }
  for (const [b, tps, burst] of grow) { table.setBurst(b, burst); table.setRate(b, tps, now); }
  for (const [b, tps, burst] of loans) table.setLoan(b, tps, burst, now);
  for (const [b, tps] of reserves) table.setReserve(b, tps, now);
}
