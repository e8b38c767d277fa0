// The PPO model the inference and tick micro-benchmarks run: the shipped
// config/model.json when it loads, otherwise a freshly initialised network of
// the trainer's default shape (24, 24 hidden) written to a temporary file.
// Inference costs the same whatever the weights are (dense layers, no
// branches on values), so the figures hold either way; the case names say
// which was used.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolObservation, ServiceObservation } from '../src/ppo/observation.ts';
import { DEFAULT_MODEL_PATH, ModelError, PpoModel } from '../src/ppo/model.ts';
import { Rng } from '../src/ppo/rng.ts';

export interface BenchModel {
  model: PpoModel;
  /** A file the daemon's code can load (Controller, PpoPool). */
  path: string;
  /** e.g. "shipped model 24-24" or "untrained 24-24". */
  label: string;
}

export function benchModel(): BenchModel {
  const shape = (m: PpoModel) => m.policy.sizes.slice(1, -1).join('-');
  try {
    const model = PpoModel.load(DEFAULT_MODEL_PATH);
    return { model, path: DEFAULT_MODEL_PATH, label: `shipped model ${shape(model)}` };
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
  }
  const model = PpoModel.create([24, 24]);
  const rng = new Rng(7);
  model.policy.init(rng, 0.01);
  model.value.init(rng);
  const path = join(mkdtempSync(join(tmpdir(), 'tpsd-bench-model-')), 'model.json');
  writeFileSync(path, JSON.stringify(model.toJson({ note: 'native-bench: untrained' }, {})));
  return { model, path, label: `untrained ${shape(model)}` };
}

/** A pool of `n` services with varied priorities, bounds, demands and limits (seeded). */
export function benchPool(n: number, seed = 1): PoolObservation {
  const rng = new Rng(seed);
  const eff = 10_000;
  const services: ServiceObservation[] = Array.from({ length: n }, (_, i) => {
    const demand = rng.uniform(0, (2 * eff) / n);
    return {
      bucket: i + 1, key: `p/s${i}`, priority: i % 4, minTps: rng.next() < 0.3 ? eff / n / 4 : 0, maxTps: eff,
      demandTps: demand, grantedTps: demand * 0.9, deniedTps: demand * 0.1, throttledTps: 0, queue: rng.int(0, 20),
      inFlight: rng.int(0, 50), latencyMs: rng.uniform(1, 50), limitTps: rng.uniform(0, (2 * eff) / n),
      forecastTps: demand, trendTps: rng.uniform(-10, 10), active: true,
    };
  });
  const total = services.reduce((a, s) => a + s.demandTps, 0);
  return {
    bucket: 0, key: 'p', tick: 1, capacityTps: eff, effectiveTps: eff, totalDemandTps: total, throttledTps: 0,
    grantedTps: total * 0.9, stepCap: 1.8, stepFloorTps: Math.max(0.05 * eff, eff / n), services,
  };
}
