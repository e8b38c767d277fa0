// Per bucket, the latency past which a RELEASE is late: its pool's
// upstream.slo_ms in microseconds (RELEASE's unit), Infinity for a pool
// without one. Pure: built from the config and the key table, by each I/O
// thread for itself (request-handler.ts: at start and on every reload) and by
// the simulator's traffic (sim/traffic.ts), so both count C_RELEASED_LATE
// with the same one compare per release.
//
// Why a thread-local array and not a field in shared memory written by the
// controller: the threshold is configuration, not a per-tick figure. Every
// I/O thread already receives the reloaded config (RequestHandler.reconfigure)
// in the same step as the controller, so a reload that changes slo_ms applies
// with no new writer, no window in which a zeroed shared field would count
// every release late, and no cross-thread read on the release path; the
// array is read only by the thread that built it. Its size is the key
// count, fixed for the daemon's life (a reload keeps the key set).

import type { TpsdConfig } from '../config/types.ts';

/** What the thresholds need of a key table (KeyIndex gives it). */
export interface PoolKeys {
  readonly size: number;
  key(i: number): string;
  poolOf(i: number): number;
}

/** lateUs[b]: bucket b's pool's slo_ms x 1000, or Infinity (nothing is ever late) when the pool has none. */
export function lateThresholdsUs(config: Pick<TpsdConfig, 'pools'>, keys: PoolKeys): Float64Array {
  const sloByPool = new Map<string, number | null>();
  for (const p of config.pools) sloByPool.set(p.name, p.upstream.slo_ms ?? null);
  const out = new Float64Array(keys.size).fill(Infinity);
  for (let b = 0; b < keys.size; b++) {
    const slo = sloByPool.get(keys.key(keys.poolOf(b)));
    if (slo != null && slo > 0) out[b] = slo * 1000;
  }
  return out;
}
