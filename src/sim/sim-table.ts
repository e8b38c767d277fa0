// `npm run sim:table`: runs every policy on every example scenario
// (test/fixtures/scenarios, copies of the shared examples, then
// test/fixtures/scenarios/throttling, throttling upstreams with and without
// rate-limit headers, then test/fixtures/scenarios/latency, upstreams that
// slow past their SLO; or the files given as arguments) with the shipped model
// and writes the comparison table into docs/allocator.md between the
// sim-table markers. Each scenario's last row is the simulator-only oracle
// (oracle-policy.ts: baseline's split under the upstream's true limit), the
// most a capacity-only policy could reach, beside the fluid bound. Main
// thread, deterministic.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { POLICY_NAMES } from '../control/policies/registry.ts';
import type { SimMetrics } from './metrics.ts';
import { PpoModel } from '../ppo/model.ts';
import { parseScenario } from './scenario.ts';
import { ORACLE } from './oracle-policy.ts';
import { simulate, type SimPolicyName } from './simulator.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = join(ROOT, 'docs/allocator.md');
const START = '<!-- sim-table:start -->';
const END = '<!-- sim-table:end -->';

export async function simTable(files: string[]): Promise<string> {
  const model = PpoModel.load();
  const lines: string[] = [
    `Model \`${model.version}\`; \`tpsd sim --scenario FILE --policy all\` with each scenario's own seed.`,
    'of bound: reward / fluid_bound. violations: initial / late (initial: the first 2 ticks of the run, and the tick',
    'of each upstream drop and the 2 after it). wait_p99_ms and fulfillment per class: C, H, M, L.',
    'slo_met / timeouts: for a latency-limited upstream, the share of ticks whose served p95 latency was within slo_ms,',
    'and the requests it did not answer within timeout_ms (\`-\` without upstream_latency).',
    'oracle: simulator only, baseline\'s split under the upstream\'s true limit (told each tick; not a daemon policy).',
    '',
    '| scenario | policy | reward | fluid_bound | of bound | utilization | served_ratio | violations | min_guarantee_met | queue_p99_ms | wait_p99_ms | fulfillment | slo_met / timeouts |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|',
  ];
  for (const file of files) {
    const scenario = parseScenario(JSON.parse(readFileSync(file, 'utf8')), file);
    const rows: SimMetrics[] = [];
    const policies: SimPolicyName[] = [...POLICY_NAMES, ORACLE];
    for (const policy of policies) rows.push((await simulate(scenario, { policy, model })).metrics);
    const fair = rows.find((r) => r.policy === 'fair')!;
    for (const r of rows) {
      const mark = r.policy === 'ppo' ? (r.reward >= fair.reward ? ' (>= fair)' : ' (< fair)') : r.policy === ORACLE ? ' (told the limit)' : '';
      const ful = Object.entries(r.fulfillment).map(([k, v]) => `${k[0]} ${v.toFixed(3)}`).join(', ');
      const waits = Object.entries(r.wait_p99_ms).map(([k, v]) => `${k[0]} ${v}`).join(', ');
      const share = r.fluid_bound > 0 ? `${((100 * r.reward) / r.fluid_bound).toFixed(1)}%` : '-';
      lines.push(`| ${basename(file, '.json')} | ${r.policy} | ${r.reward.toFixed(1)}${mark} | ${r.fluid_bound.toFixed(1)} | ${share} | ` +
        `${r.utilization.toFixed(3)} | ${r.served_ratio.toFixed(3)} | ${r.violations_initial} / ${r.violations_late} | ` +
        `${r.min_guarantee_met.toFixed(3)} | ${r.queue_p99_ms} | ${waits} | ${ful} | ` +
        `${r.slo_met === undefined ? '-' : `${r.slo_met.toFixed(3)} / ${r.timeouts ?? 0}`} |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dirs = ['', 'throttling', 'latency'].map((d) => join(ROOT, 'test/fixtures/scenarios', d));
  const files = args.length > 0 ? args
    : dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f)));
  const table = await simTable(files);
  const doc = readFileSync(DOC, 'utf8');
  const i = doc.indexOf(START);
  const j = doc.indexOf(END);
  if (i < 0 || j < i) throw new Error(`${DOC} lacks the ${START} ... ${END} markers`);
  writeFileSync(DOC, `${doc.slice(0, i + START.length)}\n${table}\n${doc.slice(j)}`);
  process.stdout.write(`${table}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
