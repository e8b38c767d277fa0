// `tpsd recommend [KEY]`: suggested limits from history. For each key with
// traffic (or the one given): conservative (85 %), optimal (95 %) and
// maximum (99 %) of the highest goodput sustained while demand pressed the
// limit without any upstream 429 (storage/recommend.ts), with the evidence
// and a verdict; the command that applies it only when 429s show where the
// upstream's limit is (otherwise it says why no change is suggested).
// A tier or a tenant key is analysed when named (its figures show what the
// upstream took through it), with no command: a tier's share is the
// controller's, a tenant's rate its tier's tps. Without a key, tenants are
// left out (there may be many thousands; docs/tenants.md).

import { allKeys, findKey, readPoints, type KeyInfo } from '../storage/queries.ts';
import { recommend, type Recommendation } from '../storage/recommend.ts';
import { runVerb, type VerbSpec } from './args.ts';
import { DB_FLAGS, openHistory } from './data-source.ts';
import { EXIT, EXIT_HELP_DB, Progress, formatDuration, formatTime, num, parseDuration, parseSince, table } from './terminal.ts';

export const SPEC: VerbSpec = {
  name: 'recommend',
  summary: 'Suggest limits from history: 85/95/99 % of the goodput sustained at the limit without upstream 429s.',
  positionals: [{ name: 'KEY', help: 'one pool, service, endpoint, tier or tenant key (default: every configured key and tier with traffic)' }],
  flags: {
    since: { type: 'string', value: 'WHEN', help: 'history to use: a duration back from now or a date/time (default 24h)' },
    sustain: { type: 'string', value: 'DURATION', help: 'how long demand must press the limit without 429s to count (default 1m)' },
    json: { type: 'boolean', help: 'print the recommendations and their evidence as JSON' },
    ...DB_FLAGS,
  },
  details: 'Goodput is granted minus failed minus upstream-429 calls. Only stretches where demand pressed\n' +
    'the key\'s limit (denials, waiters, or demand at the limit, with no idle gap) and the upstream\n' +
    'answered no 429 count. Verdicts: measured (429s were seen: apply the optimal figure);\n' +
    'upstream-limit-not-seen (no 429s: the figures are a floor, no change suggested); demand-limited\n' +
    '(demand never pressed the limit for a whole stretch: the history does not show the upstream\'s\n' +
    'limit, no change suggested). For a pool the figures are a capacity_tps, for a service or\n' +
    'endpoint a max_tps. A tier or a tenant (named as KEY) gets the figures and no command.\n\n' + EXIT_HELP_DB + '.',
};

interface Result { key: string; kind: string; recommendation: Recommendation | null }

/** Kinds of key whose limit no operator sets (a tier's share is the controller's; a tenant's rate is its tier's tps). */
const NO_LIMIT_KINDS = new Set(['tier', 'tenant']);

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const now = Date.now();
    const since = parseSince(args.string('since') ?? '24h', now);
    const sustainMs = parseDuration(args.string('sustain') ?? '1m', 'sustain');
    const db = openHistory(args, 'recommend');
    if (typeof db === 'number') return db;
    try {
      const wanted = args.positionals[0];
      let keys: KeyInfo[];
      if (wanted !== undefined) {
        const k = findKey(db, wanted);
        if (k === undefined) { process.stderr.write(`tpsd recommend: no history for key "${wanted}"\n`); return EXIT.NOT_FOUND; }
        keys = [k];
      } else {
        keys = allKeys(db).filter((k) => k.kind !== 'tenant');
      }
      const progress = new Progress('tpsd recommend');
      const results: Result[] = [];
      keys.forEach((k, i) => {
        progress.update(i, keys.length);
        const recommendation = recommend(readPoints(db, k.id, since, now + 1), sustainMs);
        // No limit of a tier or a tenant is set by hand: nothing to apply.
        if (recommendation !== null && NO_LIMIT_KINDS.has(k.kind)) recommendation.applyTps = null;
        results.push({ key: k.key, kind: k.kind, recommendation });
      });
      progress.done(`analysed ${keys.length} keys`);
      const found = results.filter((r) => r.recommendation !== null);
      if (args.boolean('json')) process.stdout.write(`${JSON.stringify(wanted === undefined ? found : results, null, 2)}\n`);
      else process.stdout.write(render(found, sustainMs));
      if (found.length === 0) {
        process.stderr.write(`tpsd recommend: no stretch of ${formatDuration(sustainMs)} with traffic and without 429s since ${formatTime(since)}` +
          `${wanted === undefined ? '' : ` for ${wanted}`}\n`);
        return EXIT.NO_DATA;
      }
      return EXIT.OK;
    } finally {
      db.close();
    }
  });
}

function render(results: Result[], sustainMs: number): string {
  if (results.length === 0) return '';
  const rows = [['KEY', 'SUSTAINED', 'CONSERVATIVE 85%', 'OPTIMAL 95%', 'MAXIMUM 99%', 'SAMPLES 429-FREE/ALL', 'VERDICT']];
  for (const { key, recommendation: r } of results) {
    rows.push([key, num(r!.sustainedTps), num(r!.conservativeTps), num(r!.optimalTps), num(r!.maximumTps),
      `${r!.evidence.cleanSamples}/${r!.evidence.samples}`, r!.verdict]);
  }
  let out = `${table(rows, new Set([1, 2, 3, 4, 5]))}\nEvidence (sustained = best average over ${formatDuration(sustainMs)} ` +
    'while demand pressed the limit, without 429s):\n';
  for (const { key, kind, recommendation: r } of results) {
    const e = r!.evidence;
    const best = e.bestFromMs === null ? '' : `best stretch ${formatTime(e.bestFromMs)} .. ${formatTime(e.bestToMs!)}; `;
    out += `  ${key}: window ${formatTime(e.fromMs)} .. ${formatTime(e.toMs)}, ${e.samples} samples (${e.throttledSamples} with 429s, ` +
      `${e.pressedSamples} pressing the limit); ${best}${e.note}\n`;
    if (NO_LIMIT_KINDS.has(kind) && r!.verdict !== 'measured') continue;
    if (kind === 'tier') out += '    (a tier\'s share is set by the controller each tick; its tenants\' rate is the tier\'s tps in the config)\n';
    else if (kind === 'tenant') out += '    (a tenant\'s rate is its tier\'s tps: move it with tpsd tenants set, or change the tier in the config)\n';
    else if (r!.applyTps !== null) out += `    apply: tpsd limits set ${key} --${kind === 'pool' ? 'capacity-tps' : 'max-tps'} ${Math.floor(r!.applyTps)}\n`;
  }
  return out;
}
