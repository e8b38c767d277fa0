// Micro-benchmark of the PPO policy's inference (src/control/policies/ppo.ts
// over src/ppo/model.ts): one pool's allocation from its observation, for 4,
// 16 and 64 services: features, normalisation, the policy MLP's forward
// pass, claims and the priority water-fill.
//
// Cases:
//   - PpoPolicy.allocate inline (as the simulator runs it; the compute of one
//     inference), for 4, 16 and 64 services; target for 64: under 200 us;
//   - PpoPool (scores) + allocation for 64 services: the same through the daemon's Piscina
//     worker (structured clone of the observation there and the allocation
//     back), awaited one after the other: the latency a tick waits for.
// Baselines, same process: FairPolicy.allocate (the fallback every mode ends
// in: water-fill over demand, no network) on the same observations.
//
// Run: node --import tsx native-bench/policy-infer.ts [--json] [--seconds S]

import { FairPolicy } from '../src/control/policies/fair.ts';
import { PpoPolicy, pooledPpo } from '../src/control/policies/ppo.ts';
import { PpoPool } from '../src/ppo/ppo-pool.ts';
import { benchModel, benchPool } from './bench-model.ts';
import { type CaseResult, benchArgs, lastCpuOpsPerSec, measure, measureAsync, report } from './harness.ts';

const args = benchArgs();
const { model, path, label } = benchModel();
const ppo = new PpoPolicy(model);
const fair = new FairPolicy();
const SIZES = [4, 16, 64];

const cases: CaseResult[] = [];
for (const n of SIZES) {
  const obs = benchPool(n);
  const name = `PpoPolicy.allocate inline, ${n} services (${label})`;
  const target = n === 64 ? { text: 'under 200 us per inference', maxUsPerOp: 200 } : undefined;
  const allocate = (k: number) => { let s = 0; for (let i = 0; i < k; i++) s += ppo.allocate(obs)[0]; return s; };
  cases.push({ case: name, opsPerSec: measure(allocate, args.seconds), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false, target });
  cases.push({
    case: `FairPolicy.allocate, ${n} services`, baseline: true, baselineOf: name,
    opsPerSec: measure((k) => { let s = 0; for (let i = 0; i < k; i++) s += fair.allocate(obs)[0]; return s; }, args.seconds), cpuOpsPerSec: lastCpuOpsPerSec(),
  });
}

const pool = new PpoPool(path, model.version);
const source = pooledPpo(pool);
try {
  const obs = benchPool(64);
  cases.push({
    case: `PpoPool (scores) + allocation, 64 services, Piscina round trip (${label})`, baseline: false,
    opsPerSec: await measureAsync(async () => (await source.infer(obs))[0], args.seconds), cpuOpsPerSec: lastCpuOpsPerSec(),
  });
} finally {
  await pool.close();
}
report({ name: 'policy-infer', cases }, args);
