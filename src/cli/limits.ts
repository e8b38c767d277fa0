// `tpsd limits get|set|rm`: reads and changes live limits of a running daemon
// through protocol op 16 LIMITS (an admin op: with auth on, the token must
// be an admin token). A change is validated by the daemon, persisted in its
// database, audit-logged, applied from the next tick without a restart, and
// re-applied when the daemon starts again.

import type { PendingView } from '../daemon/governance.ts';
import type { LimitEntry } from '../daemon/live-limits.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { OP_LIMITS } from '../protocol/opcodes.ts';
import { ADMIN_FLAGS, DaemonError, UnreachableError, adminCall } from './admin-call.ts';
import { changeText } from './approvals.ts';
import { UsageError, runVerb, type VerbSpec } from './args.ts';
import { DEFAULT_URL } from './status.ts';
import { EXIT, Progress, formatTime, num, table } from './terminal.ts';

export const SPEC: VerbSpec = {
  name: 'limits',
  summary: 'Read or change the live limits of a running daemon (persisted, audited, applied next tick).',
  positionals: [
    { name: 'ACTION', help: 'get, set or rm', required: true },
    { name: 'KEY', help: 'a pool, service or endpoint key (get without KEY lists every key)' },
  ],
  flags: {
    'min-tps': { type: 'number', value: 'N', min: 0, help: 'set: a service\'s guaranteed rate' },
    'max-tps': { type: 'number', value: 'N', min: 0, help: 'set: a service\'s or endpoint\'s ceiling' },
    priority: { type: 'string', value: 'P', help: 'set: a service\'s class: CRITICAL, HIGH, MEDIUM or LOW' },
    'capacity-tps': { type: 'number', value: 'N', min: 0, help: 'set: a pool\'s capacity (the upstream\'s limit)' },
    field: { type: 'string', value: 'FIELD', multiple: true, help: 'rm: drop only this override (min_tps, max_tps, priority, capacity_tps); repeatable' },
    ...ADMIN_FLAGS,
    timeout: { type: 'number', value: 'SECONDS', min: 0.1, max: 600, help: 'reply timeout (default 5)' },
  },
  details: 'Examples:\n' +
    '  tpsd limits get payments/checkout\n' +
    '  tpsd limits set payments/checkout --max-tps 800 --priority HIGH\n' +
    '  tpsd limits set payments --capacity-tps 1200\n' +
    '  tpsd limits rm payments/checkout --field max_tps\n\n' +
    'With governance.approve_above in the config, a change by more than that factor is held for approval\n' +
    '(exit 0, the old limits stay; see tpsd approvals --help).\n\n' +
    'Exit status: 0 ok, 1 unexpected error, 2 wrong usage, 3 daemon unreachable, 4 unknown key,\n' +
    '5 refused (invalid value, no admin token, daemon stopping).',
};

const SET_FLAGS = [['min-tps', 'min_tps'], ['max-tps', 'max_tps'], ['priority', 'priority'], ['capacity-tps', 'capacity_tps']] as const;

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const [action, key] = args.positionals;
    if (action !== 'get' && action !== 'set' && action !== 'rm') throw new UsageError(`ACTION must be get, set or rm, found ${JSON.stringify(action)}`);
    if (action !== 'get' && key === undefined) throw new UsageError(`${action} needs a KEY`);
    const changes: Record<string, unknown> = {};
    for (const [flag, field] of SET_FLAGS) {
      if (!args.has(flag)) continue;
      if (action !== 'set') throw new UsageError(`--${flag} is for "set"`);
      changes[field] = flag === 'priority' ? args.string(flag) : args.number(flag);
    }
    if (action === 'set' && Object.keys(changes).length === 0) {
      throw new UsageError('set needs at least one of --min-tps, --max-tps, --priority, --capacity-tps');
    }
    const fields = args.strings('field');
    if (fields.length > 0 && action !== 'rm') throw new UsageError('--field is for "rm"');
    const request = action === 'get' ? (key === undefined ? ['get'] : ['get', key])
      : action === 'set' ? ['set', key, changes] : fields.length > 0 ? ['rm', key, fields] : ['rm', key];
    const url = args.string('url') ?? DEFAULT_URL;
    const progress = new Progress('tpsd limits');
    progress.note(`asking ${url}`);
    let reply: unknown[];
    try {
      reply = await adminCall(url, OP_LIMITS, request, {
        token: args.string('token') ?? process.env.TPSD_TOKEN, name: 'tpsd limits', timeoutMs: (args.number('timeout') ?? 5) * 1000,
      });
    } catch (err) {
      process.stderr.write(`tpsd limits: ${(err as Error).message}\n`);
      if (err instanceof UnreachableError) return EXIT.UNREACHABLE;
      if (err instanceof DaemonError) return err.code === ErrorCode.UNKNOWN_KEY ? EXIT.NOT_FOUND : err.code === ErrorCode.OVERLOADED ? EXIT.FAILURE : EXIT.REFUSED;
      throw err;
    }
    progress.done('answered');
    const body = reply[0] as (LimitEntry & { persisted?: boolean; held?: PendingView }) | { keys: LimitEntry[] };
    if (args.boolean('json')) {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    } else if ('keys' in body) {
      process.stdout.write(renderAll(body.keys));
    } else {
      process.stdout.write(renderEntry(body));
      if (body.held !== undefined) {
        process.stdout.write(`\nheld for approval as ${body.held.id} (${changeText(body.held)}: a step of ` +
          `${body.held.step === null ? 'from or to 0' : `x${body.held.step}`}); the limits above stay in force until ` +
          `\`tpsd approvals approve ${body.held.id}\`\n`);
      } else if (action !== 'get') {
        process.stdout.write(`\n${action === 'set' ? 'set' : 'removed'}: applies from the daemon's next tick; ` +
          `${body.persisted ? 'persisted (kept across restarts)' : 'NOT persisted (telemetry.enabled is false): lost at restart'}\n`);
      }
    }
    return EXIT.OK;
  });
}

const show = (v: unknown) => (typeof v === 'number' ? num(v) : String(v));

export function renderEntry(e: LimitEntry): string {
  const rows = [['FIELD', 'EFFECTIVE', 'CONFIGURED', 'OVERRIDE']];
  for (const field of Object.keys(e.configured)) {
    const o = e.overrides[field];
    rows.push([field, show(e.effective[field]), show(e.configured[field]),
      o === undefined ? '-' : `${show(o.value)} (set ${formatTime(o.set_at_ms)} by ${o.set_by})`]);
  }
  return `${e.key} (${e.kind}${e.kind === 'pool' ? '' : ` in pool ${e.pool}`})\n${table(rows, new Set([1, 2]))}`;
}

function renderAll(entries: LimitEntry[]): string {
  const rows = [['KEY', 'KIND', 'CAPACITY', 'MIN', 'MAX', 'PRIO', 'OVERRIDDEN']];
  for (const e of entries) {
    const v = e.effective;
    rows.push([e.key, e.kind, v.capacity_tps === undefined ? '' : show(v.capacity_tps), v.min_tps === undefined ? '' : show(v.min_tps),
      v.max_tps === undefined ? '' : show(v.max_tps), v.priority === undefined ? '' : String(v.priority),
      Object.keys(e.overrides).join(',') || '-']);
  }
  return table(rows, new Set([2, 3, 4]));
}
