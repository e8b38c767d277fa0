// `node --import tsx src/sim/oracle-headroom.ts [--generated N] [--duration S] [--rows FILE] | --report FILE`:
// how much a capacity-only policy could win (issue 14 item 1, docs/allocator.md
// "How much knowing the limit is worth"). Plays fair, baseline and the oracle
// (oracle-policy.ts: baseline's split under the upstream's true limit, told
// each tick) at several shares of that limit on the shared upstream-dynamics
// scenarios (test/fixtures/scenarios/throttling and latency) and on N
// generated ones (scenario-gen.ts generateDynamics: drop, flapping, periodic
// throttling, moving knee, degrade and recovery; seeds from
// HEADROOM_SEED_BASE, which neither training nor checkpoint selection draws),
// and prints per scenario and on average, under the default reward and the
// paid one (reward.ts), the oracle's gain over baseline and over the better
// of fair and baseline. Main thread, deterministic (each scenario's seed).

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RewardKind } from './reward.ts';
import { generateDynamics } from './scenario-gen.ts';
import { parseScenario, type Scenario } from './scenario.ts';
import { simulate, type SimOptions } from './simulator.ts';

/** Generated scenarios' seeds: above the trainer's (< 2^31) and its held-out selection's (2^31 + a few). */
export const HEADROOM_SEED_BASE = 0xa0000000;
/** The shares of the true limit the oracle is played at: 1 is "the limit"; the best of all bounds what a margin adds. */
export const ORACLE_SCALES = [0.94, 0.97, 1, 1.03] as const;
/** The limit over a tick as the oracle takes it: the tick's mean (the fluid bound's), or its lowest point. */
export const ORACLE_LIMITS = ['lowest', 'mean'] as const;
/** The oracle variants, in the order HeadroomRow.scaled lists them. */
export const ORACLE_VARIANTS = ORACLE_LIMITS.flatMap((l) => ORACLE_SCALES.map((x) => `${l} x${x}`));
const KINDS: readonly RewardKind[] = ['default', 'paid'];
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/scenarios/', import.meta.url));

export interface HeadroomRow {
  name: string;
  shared: boolean;
  fluidBound: number;
  /** Per reward kind: fair, baseline, the oracle (lowest limit, scale 1), and each of ORACLE_VARIANTS. */
  fair: Record<RewardKind, number>;
  baseline: Record<RewardKind, number>;
  oracle: Record<RewardKind, number>;
  scaled: Record<RewardKind, number[]>;
  /** slo_met of baseline and the oracle (latency-limited upstreams only). */
  sloMet?: { baseline: number; oracle: number; variants: number[] };
}

/** The shared upstream-dynamics scenarios: every file of test/fixtures/scenarios/throttling and latency. */
export function sharedDynamics(): Scenario[] {
  return ['throttling', 'latency'].flatMap((dir) => readdirSync(join(FIXTURES, dir)).filter((f) => f.endsWith('.json')).sort()
    .map((f) => parseScenario(JSON.parse(readFileSync(join(FIXTURES, dir, f), 'utf8')), join(dir, f))));
}

export async function headroom(s: Scenario, shared: boolean): Promise<HeadroomRow> {
  const play = async (o: SimOptions) => simulate(s, o);
  const fair = await play({ policy: 'fair' });
  const baseline = await play({ policy: 'baseline' });
  const scaled: Awaited<ReturnType<typeof play>>[] = [];
  for (const oracleLimit of ORACLE_LIMITS) for (const oracleScale of ORACLE_SCALES) scaled.push(await play({ policy: 'oracle', oracleScale, oracleLimit }));
  const one = scaled[ORACLE_SCALES.indexOf(1)]; // the oracle itself: the lowest limit, all of it
  const per = (f: (k: RewardKind) => number): Record<RewardKind, number> => ({ default: f('default'), paid: f('paid') });
  return {
    name: s.name, shared, fluidBound: fair.metrics.fluid_bound,
    fair: per((k) => fair.rewardTotals[k]), baseline: per((k) => baseline.rewardTotals[k]), oracle: per((k) => one.rewardTotals[k]),
    scaled: { default: scaled.map((r) => r.rewardTotals.default), paid: scaled.map((r) => r.rewardTotals.paid) },
    ...(one.metrics.slo_met !== undefined ? { sloMet: { baseline: baseline.metrics.slo_met!, oracle: one.metrics.slo_met,
      variants: scaled.map((x) => x.metrics.slo_met!) } } : {}),
  };
}

/** a / b - 1, with b kept away from 0 (rewards are per capacity-second; an episode scores up to its ticks). */
export const gain = (a: number, b: number): number => (a - b) / Math.max(1, Math.abs(b));
const best = (r: HeadroomRow, k: RewardKind): number => Math.max(r.fair[k], r.baseline[k]);
/** The SLO share a variant must meet to count (issue 14: the SLO met in >= 95 % of ticks). */
export const SLO_MET_MIN = 0.95;

/** The best oracle variant's reward and index, among those meeting the SLO in SLO_MET_MIN of ticks (all, without latency). */
export function bestVariant(r: HeadroomRow, k: RewardKind): { reward: number; at: number } {
  let at = -1;
  r.scaled[k].forEach((x, i) => {
    if (r.sloMet !== undefined && r.sloMet.variants[i] < SLO_MET_MIN) return;
    if (at < 0 || x > r.scaled[k][at]) at = i;
  });
  return at < 0 ? { reward: r.oracle[k], at: ORACLE_SCALES.indexOf(1) } : { reward: r.scaled[k][at], at };
}
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)} %`;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length === 0 ? 0 : v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/** The table (markdown) and the means, per reward kind. */
export function report(rows: HeadroomRow[]): string {
  const out = [
    'oracle: baseline\'s split under the true limit (its lowest point over each tick); best variant: ' +
      `the best for that scenario of the tick's mean or lowest limit times ${ORACLE_SCALES.join(', ')}, ` +
      `among those meeting the SLO in ${100 * SLO_MET_MIN} % of ticks. Gains: reward / reward - 1.`,
    '',
    '| scenario | fluid_bound | reward | fair | baseline | oracle | oracle / baseline | oracle / best(fair, baseline) | best variant / baseline | slo_met baseline, oracle, best variant |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    for (const k of KINDS) {
      const { reward: top, at } = bestVariant(r, k);
      const scale = ORACLE_VARIANTS[at];
      out.push(`| ${k === 'default' ? `${r.name}${r.shared ? '' : ' (gen)'}` : ''} | ${k === 'default' ? r.fluidBound.toFixed(1) : ''} | ${k} | ` +
        `${r.fair[k].toFixed(1)} | ${r.baseline[k].toFixed(1)} | ${r.oracle[k].toFixed(1)} | ${pct(gain(r.oracle[k], r.baseline[k]))} | ` +
        `${pct(gain(r.oracle[k], best(r, k)))} | ${pct(gain(top, r.baseline[k]))} (${scale}) | ` +
        `${r.sloMet === undefined ? '-' : `${r.sloMet.baseline.toFixed(3)}, ${r.sloMet.oracle.toFixed(3)}, ${r.sloMet.variants[at].toFixed(3)}`} |`);
    }
  }
  out.push('', 'Means (median in brackets) over each set; throttling: 429-limited upstreams, latency: latency-limited ones.', '',
    '| set | reward | n | oracle / baseline | oracle / best(fair, baseline) | best variant / baseline | fluid_bound / baseline | baseline / fair |',
    '|---|---|---:|---:|---:|---:|---:|---:|');
  const throttling = (r: HeadroomRow): boolean => r.sloMet === undefined;
  const sets: [string, HeadroomRow[]][] = [['shared', rows.filter((r) => r.shared)], ['generated', rows.filter((r) => !r.shared)],
    ['throttling', rows.filter(throttling)], ['latency', rows.filter((r) => !throttling(r))], ['all', rows]];
  const cell = (xs: number[]): string => `${pct(mean(xs))} (${pct(median(xs))})`;
  for (const [name, set] of sets) {
    if (set.length === 0) continue;
    for (const k of KINDS) {
      out.push(`| ${name} | ${k} | ${set.length} | ${cell(set.map((r) => gain(r.oracle[k], r.baseline[k])))} | ` +
        `${cell(set.map((r) => gain(r.oracle[k], best(r, k))))} | ${cell(set.map((r) => gain(bestVariant(r, k).reward, r.baseline[k])))} | ` +
        `${cell(set.map((r) => gain(r.fluidBound, r.baseline[k])))} | ${cell(set.map((r) => gain(r.baseline[k], r.fair[k])))} |`);
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--report') { reprint(args[1]); return; }
  const opt = (name: string, dflt: number): number => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : dflt; };
  const generated = opt('--generated', 25);
  const durationS = opt('--duration', 600);
  const save = args.indexOf('--rows');
  const rows: HeadroomRow[] = [];
  for (const s of sharedDynamics()) rows.push(await headroom(s, true));
  for (let i = 0; i < generated; i++) {
    rows.push(await headroom(generateDynamics(HEADROOM_SEED_BASE + i, { durationS }), false));
    process.stderr.write(`\r${i + 1}/${generated} generated`);
  }
  process.stderr.write('\n');
  if (save >= 0) writeFileSync(args[save + 1], JSON.stringify(rows));
  process.stdout.write(`${report(rows)}\n`);
}

/** `--report FILE`: the table again from rows saved with --rows (no simulation). */
function reprint(file: string): void {
  process.stdout.write(`${report(JSON.parse(readFileSync(file, 'utf8')) as HeadroomRow[])}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
