// `tpsd decisions`: the audit trail from the telemetry database: the
// controller's per-tick decisions (policy, fallbacks, allocation changes,
// safety clamps and why, shadow regret) and every live limit change.

import { readAudit, type AuditEntry } from '../storage/overrides.ts';
import { readDecisions, type DecisionRecord } from '../storage/queries.ts';
import { UsageError, runVerb, type VerbSpec } from './args.ts';
import { DB_FLAGS, openHistory } from './data-source.ts';
import { EXIT, EXIT_HELP_DB, Progress, formatTime, num, parseSince } from './terminal.ts';

export const SPEC: VerbSpec = {
  name: 'decisions',
  summary: 'Show the audit trail: the controller\'s decisions per tick and every live limit change.',
  flags: {
    since: { type: 'string', value: 'WHEN', help: 'start: a duration back from now (15m, 1h, 2d) or a date/time (default 1h)' },
    until: { type: 'string', value: 'WHEN', help: 'end, same forms (default now)' },
    pool: { type: 'string', value: 'POOL', help: 'only this pool\'s decisions (limit changes of its keys)' },
    kind: { type: 'string', value: 'KIND', help: 'decisions, limits or all (default all)' },
    limit: { type: 'integer', value: 'N', min: 0, help: 'the newest N decisions and the newest N limit changes (default 50; 0: all in the window)' },
    verbose: { type: 'boolean', help: 'one line per service: limit before -> after, proposal, clamps' },
    json: { type: 'boolean', help: 'print the entries as JSON' },
    ...DB_FLAGS,
  },
  details: 'A decision line: time, tick, pool, mode and the policy applied (with the fallback reason\n' +
    'if the policy\'s output was unusable), effective/configured capacity, demand, how many\n' +
    'limits moved of the services the row carries (a pool\'s first row carries every service,\n' +
    'later rows those whose figures changed since its previous row), and safety clamps by reason\n' +
    '(max_tps, step_cap, min_tps, capacity, invalid).\n\n' +
    EXIT_HELP_DB.replace(', 4 unknown key', '') + '.',
};

type Entry = { tsMs: number; decision?: DecisionRecord; audit?: AuditEntry };

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const kind = args.string('kind') ?? 'all';
    if (!['decisions', 'limits', 'all'].includes(kind)) throw new UsageError(`--kind must be decisions, limits or all, found ${JSON.stringify(kind)}`);
    const now = Date.now();
    const since = parseSince(args.string('since') ?? '1h', now);
    const until = args.has('until') ? parseSince(args.string('until')!, now, 'until') : now + 1;
    const pool = args.string('pool') ?? null;
    const db = openHistory(args, 'decisions');
    if (typeof db === 'number') return db;
    try {
      const progress = new Progress('tpsd decisions');
      progress.note('reading');
      const limit = args.number('limit') ?? 50;
      const entries: Entry[] = [];
      if (kind !== 'limits') for (const d of readDecisions(db, since, until, pool, limit)) entries.push({ tsMs: d.tsMs, decision: d });
      if (kind !== 'decisions') {
        for (const a of readAudit(db, since, until, { pool, limit })) entries.push({ tsMs: a.tsMs, audit: a });
      }
      entries.sort((a, b) => a.tsMs - b.tsMs);
      progress.done(`read ${entries.length} entries`);
      if (args.boolean('json')) {
        process.stdout.write(`${JSON.stringify(entries.map((e) => e.decision ? { type: 'decision', ...e.decision } : { type: 'limit', ...e.audit }), null, 2)}\n`);
      } else {
        for (const e of entries) process.stdout.write(e.decision ? decisionText(e.decision, args.boolean('verbose')) : auditText(e.audit!));
      }
      if (entries.length === 0) {
        process.stderr.write(`tpsd decisions: nothing between ${formatTime(since)} and ${formatTime(Math.min(until, now))}\n`);
        return EXIT.NO_DATA;
      }
      return EXIT.OK;
    } finally {
      db.close();
    }
  });
}

export function decisionText(d: DecisionRecord, verbose: boolean): string {
  const moved = d.services.filter((s) => Math.abs(s.after - s.before) > 1e-3 * Math.max(1, s.before)).length;
  const why = new Map<string, number>();
  for (const c of d.clamps) why.set(c.why, (why.get(c.why) ?? 0) + 1);
  const clamps = why.size === 0 ? 'no clamps' : `clamped: ${[...why].map(([w, n]) => `${w} x${n}`).join(', ')}`;
  const policy = d.fallbackReason === null ? d.policy : `${d.policy} (FALLBACK: ${d.fallbackReason})`;
  const regret = d.shadowRegret === null ? '' : `  shadow regret ${d.shadowRegret.toFixed(4)}`;
  let out = `${formatTime(d.tsMs)}  tick ${d.tick}  ${d.pool}  mode ${d.mode}  policy ${policy}  capacity ${num(d.effectiveTps)}/${num(d.capacityTps)}` +
    `  demand ${num(d.demandTps)}  ${moved} limits moved of ${d.services.length} services recorded  ${clamps}${regret}\n`;
  if (verbose) {
    for (const s of d.services) {
      const cs = d.clamps.filter((c) => c.key === s.key).map((c) => `${c.why} ${num(c.from)}->${num(c.to)}`);
      const shadow = s.shadow === undefined ? '' : `, ppo shadow ${num(s.shadow)}`;
      out += `    ${s.key}: ${num(s.before)} -> ${num(s.after)} (proposed ${num(s.proposed)}${shadow})${cs.length ? `; ${cs.join('; ')}` : ''}\n`;
    }
  }
  return out;
}

export function auditText(a: AuditEntry): string {
  const v = (x: unknown) => (x === null || x === undefined ? '-' : String(x));
  const change = a.action === 'rejected' || a.action === 'skipped'
    ? `${a.field ?? ''} ${a.newValue === null ? '' : `-> ${v(a.newValue)} `}(${a.detail ?? ''})`
    : `${a.field} ${v(a.oldValue)} -> ${v(a.newValue)}${a.action === 'set' || a.action === 'rm' ? '' : ` (${a.detail ?? ''})`}`;
  return `${formatTime(a.tsMs)}  LIMIT ${a.action.toUpperCase()}  ${a.key}  ${change}  by ${a.actor}\n`;
}
