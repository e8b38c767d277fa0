// The daemon config the macro benchmarks run tpsd with: one pool "bench"
// with services s0..s{N-1} (the keys `tpsd bench --keys N` uses), every
// limit at the largest value the schema allows (2 M tokens/s), so that what
// is measured is the cost of a decision, not the limits: nearly every acquire
// is granted, as with rate-limiter-flexible at 2 M points per second.
//
// - policy "static": the capacity split is fixed (the controller still ticks
//   every tick_ms, reading counters and writing rates, as in production);
// - lease_ttl_ms 100: the load generator never RELEASEs (rate-limiter-flexible
//   has no leases), so leases end by TTL, and an I/O thread holds up to
//   (grants/s x TTL) of them, at most limits.max_leases_per_thread (1 048 576)
//   before it answers OVERLOADED. With the default 30 s that is reached within
//   seconds at these rates, and at 1 s by batched load (about 1 M grants/s per
//   thread); 100 ms keeps the table well below it.

import { MAX_BURST, MAX_TPS } from '../src/config/schema.ts';

export interface BenchConfigOptions {
  keys: number;
  ioThreads: number;
  leaseTtlMs?: number;
  logLevel?: string;
}

export function benchConfig(o: BenchConfigOptions): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    io_threads: o.ioThreads,
    tick_ms: 1000,
    policy: { mode: 'static' },
    lease_ttl_ms: o.leaseTtlMs ?? 100,
    log: { level: o.logLevel ?? 'info' },
    pools: [{
      name: 'bench', capacity_tps: MAX_TPS, burst: MAX_BURST,
      services: Array.from({ length: o.keys }, (_, i) => ({ name: `s${i}`, priority: 'HIGH', max_tps: MAX_TPS, burst: MAX_BURST })),
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
