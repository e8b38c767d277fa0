// The daemon config the macro benchmarks run tpsd with: one pool "bench"
// with services s0..s{N-1} (the keys `tpsd bench --keys N` uses), every
// limit at the largest value the schema allows (2 M tokens/s), so that what
// is measured is the cost of a decision, not the limits: nearly every acquire
// is granted, as with rate-limiter-flexible at 2 M points per second.
//
// - the policy is the default one (ppo: the shipped model, its inference in
//   a worker thread), as an operator's daemon runs: its tick, its inference
//   thread and their memory are part of every figure. `policy` sets another
//   mode for an experiment that needs it (say so in its header);
// - the lease TTL and every limit are the defaults (none is set here): the
//   load generator never RELEASEs (rate-limiter-flexible has no leases), so
//   at these rates each I/O thread's lease table (limits.max_leases_per_thread,
//   1 048 576) is full within seconds at the default 30 s TTL and stays full;
//   each grant then ends the oldest lease holding no concurrency slot, in
//   O(1) (src/io/lease-table.ts). That is what production sees from an
//   acquire-only client, so it is measured, not avoided. `leaseTtlMs` exists
//   for experiments only.

import { DEFAULTS } from '../src/config/defaults.ts';
import { MAX_BURST, MAX_TPS } from '../src/config/schema.ts';
import type { POLICY_MODES } from '../src/config/types.ts';

/** The lease TTL the macro benchmarks run with: the default. */
export const BENCH_LEASE_TTL_MS = DEFAULTS.lease_ttl_ms;

export interface BenchConfigOptions {
  keys: number;
  ioThreads: number;
  /** Not for published figures: they run on the default (BENCH_LEASE_TTL_MS). */
  leaseTtlMs?: number;
  logLevel?: string;
  /**
   * Adds service `bench/t` with tenants (one tier, every limit at the
   * largest) and 16 configured endpoints e0..e15: bench:compare's tenant
   * scenario acquires tenant keys `bench/t/cN` beside the endpoints
   * `bench/t/eN`, so both go through the same service and pool.
   */
  tenants?: boolean;
  /** A policy mode other than the default (ppo); not for published figures unless the benchmark's header says why. */
  policy?: (typeof POLICY_MODES)[number];
}

export function benchConfig(o: BenchConfigOptions): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    io_threads: o.ioThreads,
    tick_ms: 1000,
    ...(o.policy === undefined ? {} : { policy: { mode: o.policy } }),
    ...(o.leaseTtlMs === undefined ? {} : { lease_ttl_ms: o.leaseTtlMs }),
    log: { level: o.logLevel ?? 'info' },
    pools: [{
      name: 'bench', capacity_tps: MAX_TPS, burst: MAX_BURST,
      services: [
        ...Array.from({ length: o.keys }, (_, i) => ({ name: `s${i}`, priority: 'HIGH', max_tps: MAX_TPS, burst: MAX_BURST })),
        ...(o.tenants === true ? [{ name: 't', priority: 'HIGH', max_tps: MAX_TPS, burst: MAX_BURST,
          endpoints: Array.from({ length: 16 }, (_, i) => ({ name: `e${i}`, max_tps: MAX_TPS, burst: MAX_BURST })), tenants: {
          tiers: [{ name: 'all', priority: 'HIGH', tps: MAX_TPS, burst: MAX_BURST }], max: 1000 } }] : []),
      ],
    }],
  };
}

/**
 * A config with `total` buckets for the memory benchmark: pools of one pool
 * bucket and 999 services (the last pool smaller), nothing else changed from
 * the bench config.
 */
export function manyKeysConfig(total: number, ioThreads: number): Record<string, unknown> {
  const pools: Record<string, unknown>[] = [];
  let left = total;
  for (let p = 0; left > 0; p++) {
    const services = Math.min(999, left - 1);
    if (services < 1) break;
    pools.push({
      name: `p${p}`, capacity_tps: 1_000_000,
      services: Array.from({ length: services }, (_, i) => ({ name: `s${i}`, priority: 'MEDIUM', max_tps: 1000 })),
    });
    left -= services + 1;
  }
  return { ...benchConfig({ keys: 1, ioThreads }), pools };
}
