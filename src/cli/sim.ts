// `tpsd sim --scenario FILE --policy NAME|all [--seed N] [--json]`: replays a
// traffic scenario (docs/scenarios.md) against the daemon's controller on a
// virtual clock and prints the metrics, as JSON or a side-by-side table.
// `--policy oracle` (simulator only, src/sim/oracle-policy.ts) is baseline's
// split under the upstream's true limit, told each tick; `--reward paid`
// scores with the paid-upstream reward (src/sim/reward.ts).

import { readFileSync } from 'node:fs';
import { isPolicyName, POLICY_NAMES } from '../control/policies/registry.ts';
import type { SimMetrics } from '../sim/metrics.ts';
import { ModelError, PpoModel } from '../ppo/model.ts';
import { parseScenario, ScenarioError, type Scenario } from '../sim/scenario.ts';
import { ORACLE } from '../sim/oracle-policy.ts';
import { REWARD_KINDS, type RewardKind } from '../sim/reward.ts';
import { simulate, type SimPolicyName } from '../sim/simulator.ts';
import { runVerb, UsageError, type VerbSpec } from './args.ts';

export const SPEC: VerbSpec = {
  name: 'sim',
  summary: 'Replay a traffic scenario against the controller and compare allocation policies.',
  flags: {
    scenario: { type: 'string', value: 'FILE', help: 'scenario file (JSON; the format: docs/scenarios.md)' },
    policy: { type: 'string', value: 'NAME', help: `${POLICY_NAMES.join(', ')} or all (default all); ` +
      'or oracle: baseline\'s split under the upstream\'s true limit, which only the simulator knows' },
    reward: { type: 'string', value: 'KIND', help: 'default, or paid: a 429 or timeout costs 2, an answer beyond slo_ms earns nothing and costs 0.25' },
    seed: { type: 'integer', min: 0, max: 4294967295, help: 'random seed (default: the scenario\'s seed)' },
    model: { type: 'string', value: 'FILE', help: 'PPO model file (default: config/model.json)' },
    'step-cap': { type: 'number', min: 1, max: 100, help: 'per-tick growth cap (default 1.8)' },
    json: { type: 'boolean', help: 'print JSON: one object, or an array for --policy all' },
  },
  details: 'The same seed gives the same output. Metrics are described in docs/allocator.md.',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const file = args.string('scenario');
    if (file === undefined) throw new UsageError('missing --scenario FILE');
    const which = args.string('policy') ?? 'all';
    if (which !== 'all' && which !== ORACLE && !isPolicyName(which)) {
      throw new UsageError(`--policy: expected ${POLICY_NAMES.join(', ')}, ${ORACLE} or all, found ${JSON.stringify(which)}`);
    }
    const reward = args.string('reward') ?? 'default';
    if (!(reward in REWARD_KINDS)) throw new UsageError(`--reward: expected ${Object.keys(REWARD_KINDS).join(' or ')}, found ${JSON.stringify(reward)}`);
    let scenario: Scenario;
    try {
      scenario = parseScenario(JSON.parse(readFileSync(file, 'utf8')), file);
    } catch (e) {
      if (e instanceof ScenarioError || e instanceof SyntaxError || (e as NodeJS.ErrnoException).code !== undefined) {
        process.stderr.write(`tpsd sim: ${(e as Error).message}\n`);
        return 1;
      }
      throw e;
    }
    const policies: SimPolicyName[] = which === 'all' ? [...POLICY_NAMES] : [which as SimPolicyName];
    let model: PpoModel | undefined;
    if (policies.includes('ppo')) {
      try { model = PpoModel.load(args.string('model')); } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        process.stderr.write(`tpsd sim: ${e.message}; ppo falls back to fair\n`);
      }
    }
    const results: SimMetrics[] = [];
    for (const policy of policies) {
      const r = await simulate(scenario, { policy, seed: args.number('seed'), model, stepCap: args.number('step-cap'), reward: reward as RewardKind,
        ppoSource: policy === 'ppo' && model === undefined ? null : undefined });
      results.push(r.metrics);
    }
    if (args.boolean('json')) process.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
    else process.stdout.write(formatTable(results));
    return 0;
  });
}

/** Metrics as rows, policies as columns. */
export function formatTable(results: SimMetrics[]): string {
  if (results.length === 0) return '';
  const classes = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'].filter((c) => results.some((r) => c in r.fulfillment));
  const rows: [string, (r: SimMetrics) => string][] = [
    ['utilization', (r) => r.utilization.toFixed(3)],
    ['served_ratio', (r) => r.served_ratio.toFixed(3)],
    ['violations', (r) => String(r.violations)],
    ['violations_initial', (r) => String(r.violations_initial)],
    ['violations_late', (r) => String(r.violations_late)],
    ...classes.map((c): [string, (r: SimMetrics) => string] => [`fulfillment ${c}`, (r) => (r.fulfillment[c] ?? 0).toFixed(3)]),
    ['min_guarantee_met', (r) => r.min_guarantee_met.toFixed(3)],
    ['queue_p99_ms', (r) => String(r.queue_p99_ms)],
    ...classes.map((c): [string, (r: SimMetrics) => string] => [`wait_p99_ms ${c}`, (r) => String(r.wait_p99_ms[c] ?? 0)]),
    ['reward', (r) => r.reward.toFixed(1)],
    ['fluid_bound', (r) => r.fluid_bound.toFixed(1)],
    ['fallback_ticks', (r) => String(r.fallback_ticks)],
    // A latency-limited upstream (scenario upstream_latency) adds its timeouts and the share of ticks within the SLO.
    ...(results[0].slo_met === undefined ? [] : [
      ['timeouts', (r) => String(r.timeouts ?? 0)],
      ['slo_met', (r) => (r.slo_met ?? 0).toFixed(3)],
    ] as [string, (r: SimMetrics) => string][]),
  ];
  const head = [`scenario ${results[0].scenario} (seed ${results[0].seed})`, ...results.map((r) => r.policy)];
  const table = [head, ...rows.map(([name, f]) => [name, ...results.map(f)])];
  const widths = head.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  return `${table.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n')}\n`;
}
