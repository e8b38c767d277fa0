// Builders of observations for control tests.
import type { PoolObservation, ServiceObservation } from '../../../src/ppo/observation.ts';
import { Rng } from '../../../src/ppo/rng.ts';

export function service(over: Partial<ServiceObservation> & { priority: number }): ServiceObservation {
  return {
    bucket: 1, key: 'p/s', minTps: 0, maxTps: 1e6, demandTps: 0, grantedTps: 0, deniedTps: 0, throttledTps: 0,
    queue: 0, inFlight: 0, latencyMs: 0, limitTps: 0, forecastTps: 0, trendTps: 0, active: true, ...over,
  };
}

export function pool(effectiveTps: number, services: ServiceObservation[], over: Partial<PoolObservation> = {}): PoolObservation {
  return {
    bucket: 0, key: 'p', tick: 1, capacityTps: effectiveTps, effectiveTps, totalDemandTps: services.reduce((a, s) => a + s.demandTps, 0),
    throttledTps: 0, grantedTps: 0, stepCap: 1.8, stepFloorTps: Math.max(0.05 * effectiveTps, effectiveTps / services.length),
    services, ...over,
  };
}

/** A random pool of 1..64 services with random bounds, demands and previous limits. */
export function randomPool(rng: Rng): PoolObservation {
  const n = rng.int(1, 64);
  const eff = rng.uniform(10, 5000);
  const services = Array.from({ length: n }, (_, i) => {
    const min = rng.next() < 0.4 ? rng.uniform(0, (eff / n) * 1.5) : 0;
    const max = rng.next() < 0.5 ? 1e6 : min + rng.uniform(1, eff);
    return service({
      bucket: i + 1, priority: rng.int(0, 3), minTps: min, maxTps: max, demandTps: rng.uniform(0, eff),
      limitTps: rng.next() < 0.2 ? 0 : rng.uniform(0, eff), active: rng.next() < 0.9, queue: rng.int(0, 100),
    });
  });
  return pool(eff, services);
}
