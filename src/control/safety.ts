// The safety layer (main thread): every allocation, whichever policy made it,
// passes through here before it reaches the buckets. It enforces, in order:
//   1. each value is finite and within [0, max_tps];
//   2. guarantees first: an active service gets at least its min_tps (in
//      priority order when even the minimums do not fit);
//   3. the per-tick step cap: no service grows beyond max(previous x
//      step_cap, its guarantee, a floor: its equal share eff / n or 5% of
//      eff, so a service squeezed to 0 can come back at once to its share);
//   4. the sum stays within the pool's effective capacity: what exceeds it is
//      taken from the part above the guarantees, in proportion.
// validateAllocation() tells why a policy's raw output is unusable (NaN, Inf,
// negative, wrong length); the controller then uses fair for that tick.

import type { PoolObservation } from '../ppo/observation.ts';
import { guarantees } from './water-fill.ts';

export interface SafetyOptions {
  /** Growth cap per tick, a multiplier (config policy.step_cap). */
  readonly stepCap: number;
  /** A service may always grow to this fraction of the effective capacity (or its equal share, if more). */
  readonly stepFloor: number;
}

/** What any service may grow to in one tick whatever its previous limit: max(stepFloor x eff, eff / n). */
export function stepFloorTps(o: SafetyOptions, effectiveTps: number, services: number): number {
  return Math.max(o.stepFloor * effectiveTps, effectiveTps / Math.max(1, services));
}

export const DEFAULT_SAFETY: SafetyOptions = { stepCap: 1.8, stepFloor: 0.05 };

/** null when usable, else the reason it is not. */
export function validateAllocation(raw: unknown, n: number): string | null {
  if (!(raw instanceof Float64Array || raw instanceof Float32Array || Array.isArray(raw))) return 'not an array';
  if (raw.length !== n) return `length ${raw.length}, expected ${n}`;
  for (let i = 0; i < n; i++) {
    const v = raw[i];
    if (typeof v !== 'number' || Number.isNaN(v)) return 'NaN in allocation';
    if (!Number.isFinite(v)) return 'Infinity in allocation';
    if (v < 0) return 'negative allocation';
  }
  return null;
}

/** The allocation the buckets get; `prev` is the one in force, `g` the tick's guarantees if already known. */
export function applySafety(
  obs: PoolObservation, raw: ArrayLike<number>, prev: ArrayLike<number>, o: SafetyOptions = DEFAULT_SAFETY,
  g: ArrayLike<number> = guarantees(obs),
): Float64Array {
  const n = obs.services.length;
  const eff = Math.max(0, obs.effectiveTps);
  const out = new Float64Array(n);
  const floor = stepFloorTps(o, eff, n);
  for (let i = 0; i < n; i++) {
    const s = obs.services[i];
    let v = raw[i];
    if (!Number.isFinite(v) || v < 0) v = 0;
    v = Math.min(v, s.maxTps);
    const p = Number.isFinite(prev[i]) && prev[i] > 0 ? prev[i] : 0;
    v = Math.min(v, Math.max(p * o.stepCap, floor));
    out[i] = Math.max(v, g[i]);
  }
  let sum = 0;
  let above = 0;
  let gsum = 0;
  for (let i = 0; i < n; i++) { sum += out[i]; above += out[i] - g[i]; gsum += g[i]; }
  if (sum > eff && above > 0) {
    const f = Math.max(0, eff - gsum) / above;
    for (let i = 0; i < n; i++) out[i] = g[i] + (out[i] - g[i]) * f;
  }
  return out;
}
