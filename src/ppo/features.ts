// The per-service input of the PPO networks: the service's own figures and the
// pool context, scaled by the effective capacity so one model serves pools of
// any size (1 to 64 services, any capacity, any priority mix). Pure; runs
// wherever the policy runs (main thread, inference or rollout workers).

import type { PoolObservation } from './observation.ts';

export const FEATURE_NAMES = [
  'prio_critical', 'prio_high', 'prio_medium', 'prio_low',
  'demand', 'forecast', 'trend', 'granted', 'denied', 'queue', 'throttled', 'limit',
  'min', 'max', 'demand_above', 'demand_total', 'eff_over_capacity', 'latency', 'log_services',
] as const;
export const FEATURE_COUNT = FEATURE_NAMES.length;

const clip = (x: number, hi = 5): number => (Number.isFinite(x) ? Math.max(-hi, Math.min(hi, x)) : 0);

/**
 * n x FEATURE_COUNT raw features of the pool's services, in obs.services order.
 * `poolServices`: how many services the pool has, when obs.services is only
 * a part of them (every other one with no demand: PPO scores only the
 * services that can claim, ../control/policies/ppo.ts); the rows are then
 * the ones the whole pool's observation gives those services.
 */
export function serviceFeatures(obs: PoolObservation, poolServices = obs.services.length): Float32Array {
  const n = obs.services.length;
  const F = FEATURE_COUNT;
  const x = new Float32Array(n * F);
  const eff = Math.max(1, obs.effectiveTps);
  const byClass = [0, 0, 0, 0];
  for (const s of obs.services) byClass[Math.min(3, Math.max(0, s.priority))] += s.demandTps;
  for (let i = 0; i < n; i++) {
    const s = obs.services[i];
    const o = i * F;
    const p = Math.min(3, Math.max(0, s.priority));
    x[o + p] = 1;
    let above = 0;
    for (let q = 0; q < p; q++) above += byClass[q];
    x[o + 4] = clip(s.demandTps / eff);
    x[o + 5] = clip(s.forecastTps / eff);
    x[o + 6] = clip((s.trendTps / eff) * 10);
    x[o + 7] = clip(s.grantedTps / eff);
    x[o + 8] = clip(s.deniedTps / eff);
    x[o + 9] = clip(s.queue / eff);
    x[o + 10] = clip(s.throttledTps / eff);
    x[o + 11] = clip(s.limitTps / eff);
    x[o + 12] = clip(s.minTps / eff);
    x[o + 13] = clip(s.maxTps / eff);
    x[o + 14] = clip(above / eff);
    x[o + 15] = clip(obs.totalDemandTps / eff);
    x[o + 16] = clip(obs.effectiveTps / Math.max(1, obs.capacityTps));
    x[o + 17] = clip(s.latencyMs / 100);
    x[o + 18] = Math.log(poolServices) / Math.log(64);
  }
  return x;
}
