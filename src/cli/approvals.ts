// `tpsd approvals list|approve ID|reject ID`: the limit changes a running
// daemon holds for approval (config `governance.approve_above`), through
// protocol op 18 APPROVALS (an admin op: with auth on, the token must be an
// admin token). Approve applies the change at once (re-validated against the
// limits in force then); reject drops it. Both are audited with who decided.

import type { PendingView } from '../daemon/governance.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { OP_APPROVALS } from '../protocol/opcodes.ts';
import { ADMIN_FLAGS, DaemonError, UnreachableError, adminCall } from './admin-call.ts';
import { UsageError, runVerb, type VerbSpec } from './args.ts';
import { DEFAULT_URL } from './status.ts';
import { EXIT, formatTime, table } from './terminal.ts';

export const SPEC: VerbSpec = {
  name: 'approvals',
  summary: 'List, approve or reject the limit changes a running daemon holds for approval (governance).',
  positionals: [
    { name: 'ACTION', help: 'list, approve or reject', required: true },
    { name: 'ID', help: 'approve/reject: a pending change\'s id, as list shows it' },
  ],
  flags: {
    ...ADMIN_FLAGS,
    timeout: { type: 'number', value: 'SECONDS', min: 0.1, max: 600, help: 'reply timeout (default 5)' },
  },
  details: 'With governance.approve_above in the config (docs/governance.md), an operator\'s limit change by more\n' +
    'than that factor (tpsd limits set/rm) and a tier allocation\'s rise above it wait here; the old limit\n' +
    'stays in force meanwhile. Pending changes survive a restart.\n\n' +
    'Examples:\n' +
    '  tpsd approvals list\n' +
    '  tpsd approvals approve chg_3yQ0c1Z8m4XbW2aP6kLr\n' +
    '  tpsd approvals reject chg_3yQ0c1Z8m4XbW2aP6kLr\n\n' +
    'Exit status: 0 ok, 1 unexpected error, 2 wrong usage, 3 daemon unreachable, 4 no pending change with that id,\n' +
    '5 refused (the change no longer fits the limits in force, no admin token, daemon stopping).',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const [action, id] = args.positionals;
    if (action !== 'list' && action !== 'approve' && action !== 'reject') {
      throw new UsageError(`ACTION must be list, approve or reject, found ${JSON.stringify(action)}`);
    }
    if (action === 'list' && id !== undefined) throw new UsageError('list takes no ID');
    if (action !== 'list' && id === undefined) throw new UsageError(`${action} needs an ID (tpsd approvals list shows them)`);
    let reply: unknown[];
    try {
      reply = await adminCall(args.string('url') ?? DEFAULT_URL, OP_APPROVALS, action === 'list' ? ['list'] : [action, id], {
        token: args.string('token') ?? process.env.TPSD_TOKEN, name: 'tpsd approvals', timeoutMs: (args.number('timeout') ?? 5) * 1000,
      });
    } catch (err) {
      process.stderr.write(`tpsd approvals: ${(err as Error).message}\n`);
      if (err instanceof UnreachableError) return EXIT.UNREACHABLE;
      if (err instanceof DaemonError) return err.code === ErrorCode.UNKNOWN_KEY ? EXIT.NOT_FOUND : err.code === ErrorCode.OVERLOADED ? EXIT.FAILURE : EXIT.REFUSED;
      throw err;
    }
    const body = reply[0] as Record<string, unknown>;
    if (args.boolean('json')) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else if (action === 'list') process.stdout.write(renderList(body as unknown as ListBody));
    else {
      const p = (body.approved ?? body.rejected) as PendingView;
      process.stdout.write(`${p.id} ${action === 'approve' ? 'approved: applies from the daemon\'s next tick' : 'rejected: dropped'} ` +
        `(${p.key}: ${changeText(p)})\n`);
    }
    return EXIT.OK;
  });
}

interface ListBody { approve_above: number | null; max: number; persisted: boolean; pending: PendingView[] }

/** "max_tps 1000 -> 40" for each field that changes. */
export function changeText(p: PendingView): string {
  return Object.keys(p.new).map((f) => `${f} ${String(p.old[f] ?? '-')} -> ${String(p.new[f])}`).join(', ');
}

export function renderList(b: ListBody): string {
  const head = `governance ${b.approve_above === null ? 'off (changes held before stay until decided)' : `on: changes by more than x${b.approve_above} wait`}; ` +
    `${b.pending.length} pending (at most ${b.max})${b.persisted ? '' : '; NOT persisted (telemetry.enabled is false)'}\n`;
  if (b.pending.length === 0) return head;
  const rows = [['ID', 'KEY', 'SOURCE', 'CHANGE', 'STEP', 'ASKED', 'BY']];
  for (const p of b.pending) {
    rows.push([p.id, p.key, p.source, changeText(p), p.step === null ? 'from/to 0' : `x${p.step}`, formatTime(p.requested_at_ms), p.requested_by]);
  }
  return head + table(rows, new Set([4]));
}
