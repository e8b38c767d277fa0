import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Controller } from '../../../src/control/controller.ts';
import type { PpoSource } from '../../../src/control/policy-runner.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { parseScenario } from '../../../src/sim/scenario.ts';
import { scenarioConfig } from '../../../src/sim/simulator.ts';
import { BucketTable } from '../../../src/shm/bucket-table.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm, C_REQUESTED_INDEX, C_GRANTED_INDEX } from '../../../src/shm/layout.ts';
import { guarantees } from '../../../src/control/water-fill.ts';

const scenario = parseScenario({
  name: 't', duration_s: 10, capacity_tps: 1000,
  services: [
    { name: 'a', priority: 'CRITICAL', min_tps: 100, demand: { kind: 'constant', tps: 300 } },
    { name: 'b', priority: 'LOW', demand: { kind: 'constant', tps: 900 } },
  ],
});

function setup(mode: TpsdConfig['policy']['mode'], ppo?: PpoSource | null, model?: string) {
  let config = scenarioConfig(scenario, mode);
  if (model !== undefined) config = { ...config, policy: { ...config.policy, model } };
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const clock = new ManualClock();
  BucketTable.initialize(views, keys, 0);
  const io = new BucketTable(views, clock, 0);
  const warnings: string[] = [];
  const controller = new Controller(views, keys, config, clock, {
    inference: 'inline', ppo, logger: { warn: (o, m) => warnings.push(`${m} ${JSON.stringify(o)}`), info: () => {} },
  });
  const a = keys.lookup('sim/a');
  const b = keys.lookup('sim/b');
  /** One second of demand as an I/O thread would count it (tokens asked and granted per service). */
  const second = async (demand = { a: [300, 300], b: [900, 700] }): Promise<void> => {
    io.count(a, C_REQUESTED_INDEX, demand.a[0]); io.count(a, C_GRANTED_INDEX, demand.a[1]);
    io.count(b, C_REQUESTED_INDEX, demand.b[0]); io.count(b, C_GRANTED_INDEX, demand.b[1]);
    clock.advance(1000);
    await controller.tick();
  };
  return { controller, second, warnings, table: controller.table, a, b, pool: keys.lookup('sim'), keys, config };
}

test('NaN from the policy: fair applies for that tick and the reason is logged', async () => {
  const { controller, second, warnings } = setup('ppo', { version: 't', infer: (obs) => new Float64Array(obs.services.length).fill(NaN) });
  await second();
  await second();
  assert.equal(controller.last[0].decision.applied, 'fair');
  assert.equal(controller.status().fallbacks['NaN in allocation'], 2);
  assert.deepEqual(controller.last[0].decision.fallback, { kind: 'invalid_output', reason: 'NaN in allocation' });
  assert.deepEqual(controller.runner.fallbacksByKind, { missing_model: 0, deadline: 0, busy: 0, invalid_output: 2, error: 0 });
  assert.equal(warnings.length, 1, 'logged once, then counted');
  assert.match(warnings[0], /NaN in allocation/);
});

test('a late inference misses the deadline and fair applies', async () => {
  const slow: PpoSource = { version: 't', infer: (obs) => new Promise((r) => setTimeout(() => r(new Float64Array(obs.services.length).fill(1)), 300)) };
  const { controller, second } = setup('ppo', slow);
  await second();
  assert.equal(controller.last[0].decision.applied, 'fair');
  assert.match(Object.keys(controller.status().fallbacks)[0], /deadline/);
  assert.equal(controller.last[0].decision.fallback?.kind, 'deadline');
  assert.equal(controller.runner.fallbacksByKind.deadline, 1);
});

test('a missing model file: fair with reason "missing model"', async () => {
  const { controller, second, warnings } = setup('ppo', undefined, '/nonexistent/model.json');
  await second();
  assert.equal(controller.modelVersion, 'none');
  assert.equal(controller.status().fallbacks['missing model'], 1);
  assert.equal(controller.runner.fallbacksByKind.missing_model, 1);
  assert.ok(warnings.some((w) => w.includes('no usable PPO model')));
});

test('rates are written: decreases before increases; the gate gets the effective capacity, the loans the rest', async () => {
  const { controller, second, table, a, b, pool } = setup('fallback');
  for (let i = 0; i < 3; i++) await second();
  const before = [table.rateTps(a), table.rateTps(b)];
  const writes: [string, number, number][] = [];
  const name = (k: number) => (k === a ? 'a' : k === b ? 'b' : k === pool ? 'pool' : String(k));
  const setRate = table.setRate.bind(table);
  table.setRate = (k: number, tps: number, now: number) => { writes.push([name(k), table.rateTps(k), tps]); setRate(k, tps, now); };
  // Demand shifts: a (CRITICAL) now asks for 900 and b (LOW) for 100, so in one tick a's rate goes up and b's down.
  await second({ a: [900, 300], b: [100, 100] });
  const shrinks = writes.filter(([, from, to]) => to < from).map(([k]) => k);
  const grows = writes.filter(([, from, to]) => to > from).map(([k]) => k);
  assert.deepEqual([shrinks, grows], [['b'], ['a']], `b goes down and a up in the same tick: ${JSON.stringify(writes)}`);
  const firstGrow = writes.findIndex(([, from, to]) => to > from);
  const lastShrink = writes.map(([, from, to]) => to < from).lastIndexOf(true);
  assert.ok(lastShrink < firstGrow, `every decrease is written before any increase: ${JSON.stringify(writes)}`);
  const alloc = controller.last[0].alloc;
  assert.ok(alloc[0] > before[0] && alloc[1] < before[1], `the allocation moved: ${JSON.stringify(before)} -> ${JSON.stringify([...alloc])}`);
  assert.ok(Math.abs(table.rateTps(a) - alloc[0]) < 1e-3 && Math.abs(table.rateTps(b) - alloc[1]) < 1e-3);
  assert.ok(alloc[0] + alloc[1] <= 1000 + 1e-6);
  assert.ok(table.isWindowGate(pool), 'the default upstream window is a sliding second');
  assert.equal(table.rateTps(pool), 1000, 'no reserve: a window gate admits the capacity in any second, exactly');
  assert.ok(Math.abs(table.loanTps(pool) - (1000 - alloc[0] - alloc[1])) < 1e-3, 'the pool lends what nobody is assured of');
  assert.ok(table.loanTps(a) === 1000 && table.loanTps(b) === 1000, 'each service\'s ceiling is its max_tps, which its assured and borrowed takes share');
});

test('shadow mode applies fair, records PPO and accumulates regret', async () => {
  const greedy: PpoSource = { version: 't', infer: (obs) => Float64Array.from(obs.services, (s) => (s.priority === 0 ? 1000 : 0)) };
  const { controller, second } = setup('shadow', greedy);
  for (let i = 0; i < 3; i++) await second();
  assert.equal(controller.last[0].decision.applied, 'fair');
  assert.ok(controller.last[0].decision.shadow !== null);
  assert.ok(Number.isFinite(controller.status().shadowRegret));
  assert.ok(controller.status().shadowRegret < 0, 'starving LOW serves less than fair');
});

test('the decision record carries the shadow regret judged each tick; the controller sums them', async () => {
  const greedy: PpoSource = { version: 't', infer: (obs) => Float64Array.from(obs.services, (s) => (s.priority === 0 ? 1000 : 0)) };
  const { controller, second } = setup('shadow', greedy);
  const regrets: (number | null)[] = [];
  for (let i = 0; i < 4; i++) {
    await second();
    regrets.push(controller.last[0].shadowRegret);
  }
  assert.equal(regrets[0], null, 'the first tick has no earlier proposal to judge');
  let sum = 0;
  for (const r of regrets.slice(1)) { assert.ok(typeof r === 'number' && Number.isFinite(r)); sum += r; }
  assert.equal(controller.status().shadowRegret, sum);
  const { obs, guarantees: g, alloc } = controller.last[0];
  assert.deepEqual([...g], [...guarantees(obs)]);
  assert.ok(alloc[0] >= g[0] && alloc[1] >= g[1], 'the allocation honours the recorded guarantees');
});

test('live limits are the controller\'s: setLimits and reconfigure leave the KeyIndex as the config built it', async () => {
  const { controller, second, table, keys, config, a, b } = setup('fallback');
  const specs = structuredClone(keys.specs);
  controller.setLimits(a, { minTps: 50, maxTps: 200 });
  controller.setLimits(b, { priority: 2 });
  await second();
  const [sa, sb] = controller.last[0].obs.services;
  assert.deepEqual([sa.minTps, sa.maxTps, sb.priority], [50, 200, 2], 'the observation sees the live limits');
  assert.equal(table.priority(b), 2);
  const bigger = { ...config, pools: [{ ...config.pools[0], services: config.pools[0].services.map((s) => ({ ...s, burst: s.burst + 7 })) }] };
  controller.reconfigure(KeyIndex.fromConfig(bigger), bigger);
  assert.equal(controller.limitsOf(b).burst, keys.specs[b].burst + 7);
  assert.equal(controller.limitsOf(a).maxTps, keys.specs[a].maxTps, 'reconfigure takes the new config\'s values');
  assert.deepEqual(keys.specs, specs, 'nothing wrote through the read-only specs');
});
