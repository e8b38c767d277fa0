// `tpsd tenants get|set|rm|list|import`: a running daemon's tenant tiers
// through protocol op 17 TENANTS (an admin op: with auth on, the token must
// be an admin token). A change is validated by the daemon, persisted in its
// database, audited, applied on the tenant's next acquire and re-applied when
// the daemon starts again. `import FILE` reads `tenant,tier` lines (the
// tenant as a full key `pool/service/TENANT`, or a bare name with
// --service) and sends them on one connection, a window at a time.

import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { normalizeUrl } from '../client/options.ts';
import { MsgWriter, decodeAll } from '../protocol/codec.ts';
import { ErrorCode, errorCodeName } from '../protocol/errors.ts';
import { OP_HELLO, OP_TENANTS, PROTOCOL_VERSION } from '../protocol/opcodes.ts';
import { ADMIN_FLAGS, DaemonError, UnreachableError, adminCall } from './admin-call.ts';
import { UsageError, runVerb, type VerbSpec } from './args.ts';
import { DEFAULT_URL } from './status.ts';
import { EXIT, Progress, table } from './terminal.ts';

export const SPEC: VerbSpec = {
  name: 'tenants',
  summary: 'Read or change the tiers of a running daemon\'s tenants (persisted, audited, applied on the next acquire).',
  positionals: [
    { name: 'ACTION', help: 'get, set, rm, list or import', required: true },
    { name: 'KEY', help: 'get/set/rm: pool/service/TENANT; list: pool/service; import: a file of tenant,tier lines', required: true },
    { name: 'TIER', help: 'set: the tier' },
  ],
  flags: {
    tier: { type: 'string', value: 'TIER', help: 'list: only this tier' },
    limit: { type: 'number', value: 'N', min: 1, max: 10_000, help: 'list: at most N tenants (default 100)' },
    service: { type: 'string', value: 'KEY', help: 'import: the service (pool/service) of lines that name a bare tenant' },
    ...ADMIN_FLAGS,
    timeout: { type: 'number', value: 'SECONDS', min: 0.1, max: 600, help: 'reply timeout (default 5; import: per window)' },
  },
  details: 'Examples:\n' +
    '  tpsd tenants set payments/api/acme pro\n' +
    '  tpsd tenants get payments/api/acme\n' +
    '  tpsd tenants rm payments/api/acme          (back to the default tier)\n' +
    '  tpsd tenants list payments/api --tier pro\n' +
    '  tpsd tenants import tiers.csv --service payments/api\n\n' +
    'Exit status: 0 ok, 1 unexpected error, 2 wrong usage, 3 daemon unreachable, 4 unknown key,\n' +
    '5 refused (unknown tier, bad name, no admin token, daemon stopping; import: any line refused).',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const [action, key, tier] = args.positionals;
    const options = { token: args.string('token') ?? process.env.TPSD_TOKEN, name: 'tpsd tenants', timeoutMs: (args.number('timeout') ?? 5) * 1000 };
    const url = args.string('url') ?? DEFAULT_URL;
    if (action === 'import') return importFile(url, key, args.string('service'), options, args.boolean('json'));
    let request: unknown[];
    if (action === 'get' || action === 'rm') request = [action, key];
    else if (action === 'set') {
      if (tier === undefined) throw new UsageError('set needs a TIER: tpsd tenants set pool/service/TENANT TIER');
      request = ['set', key, { tier }];
    } else if (action === 'list') {
      const opts: Record<string, unknown> = {};
      if (args.has('tier')) opts.tier = args.string('tier');
      if (args.has('limit')) opts.limit = args.number('limit');
      request = ['list', key, opts];
    } else {
      throw new UsageError(`ACTION must be get, set, rm, list or import, found ${JSON.stringify(action)}`);
    }
    let reply: unknown[];
    try {
      reply = await adminCall(url, OP_TENANTS, request, options);
    } catch (err) {
      return failed(err);
    }
    const body = reply[0] as Record<string, unknown>;
    if (args.boolean('json')) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else if (action === 'list') process.stdout.write(renderList(body as unknown as ListBody));
    else process.stdout.write(`${body.key}: tier ${body.tier}${body.assigned ? '' : ' (the default)'}${body.live ? `, live, ${body.remaining} tokens` : ''}\n`);
    return EXIT.OK;
  });
}

function failed(err: unknown): number {
  process.stderr.write(`tpsd tenants: ${(err as Error).message}\n`);
  if (err instanceof UnreachableError) return EXIT.UNREACHABLE;
  if (err instanceof DaemonError) return err.code === ErrorCode.UNKNOWN_KEY ? EXIT.NOT_FOUND : err.code === ErrorCode.OVERLOADED ? EXIT.FAILURE : EXIT.REFUSED;
  throw err;
}

interface ListBody { service: string; total: number; truncated: boolean; tenants: { tenant: string; tier: string; assigned: boolean; live: boolean }[]; tiers: Record<string, number> }

function renderList(b: ListBody): string {
  const rows = [['TENANT', 'TIER', 'ASSIGNED', 'LIVE']];
  for (const t of b.tenants) rows.push([t.tenant, t.tier, t.assigned ? 'yes' : '-', t.live ? 'yes' : '-']);
  const tiers = Object.entries(b.tiers).map(([n, c]) => `${n} ${c}`).join(', ');
  return `${b.service}: ${b.total} tenants${b.truncated ? ` (first ${b.tenants.length} shown)` : ''}; live per tier: ${tiers}\n${table(rows, new Set())}`;
}

/** `tenant,tier` lines: blank lines and # comments skipped; a bare tenant needs `service`. */
export function parseImport(text: string, service: string | undefined): { key: string; tier: string }[] {
  const out: { key: string; tier: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(',').map((p) => p.trim());
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new UsageError(`line ${i + 1}: expected "tenant,tier", found ${JSON.stringify(raw)}`);
    const key = parts[0].includes('/') ? parts[0] : service === undefined ? null : `${service}/${parts[0]}`;
    if (key === null) throw new UsageError(`line ${i + 1}: "${parts[0]}" is a bare tenant name: give --service pool/service, or write pool/service/${parts[0]}`);
    out.push({ key, tier: parts[1] });
  });
  return out;
}

/** Requests in flight at once on the import's connection (well under limits.max_outstanding_per_connection). */
const WINDOW = 256;

async function importFile(url: string, file: string, service: string | undefined, options: { token?: string; name: string; timeoutMs: number },
  json: boolean): Promise<number> {
  let lines: { key: string; tier: string }[];
  try { lines = parseImport(readFileSync(file, 'utf8'), service); } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const progress = new Progress('tpsd tenants');
  let refused: { key: string; error: string }[];
  try {
    refused = await sendAll(url, lines, options, (done) => progress.note(`${done}/${lines.length} set`));
  } catch (err) {
    return failed(err);
  }
  progress.done(`${lines.length - refused.length} of ${lines.length} set`);
  if (json) process.stdout.write(`${JSON.stringify({ set: lines.length - refused.length, refused }, null, 2)}\n`);
  else for (const r of refused) process.stderr.write(`tpsd tenants: ${r.key}: ${r.error}\n`);
  return refused.length === 0 ? EXIT.OK : EXIT.REFUSED;
}

/** Sends every set on one connection, WINDOW at a time; resolves with the refused ones. */
function sendAll(url: string, lines: { key: string; tier: string }[], options: { token?: string; timeoutMs: number },
  onProgress: (done: number) => void): Promise<{ key: string; error: string }[]> {
  const target = normalizeUrl(url);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, { handshakeTimeout: options.timeoutMs });
    ws.binaryType = 'nodebuffer';
    const refused: { key: string; error: string }[] = [];
    let sent = 0;
    let answered = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null) => { clearTimeout(timer); ws.close(); if (err) reject(err); else resolve(refused); };
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => finish(new UnreachableError(`no answer from ${target} within ${options.timeoutMs} ms`)), options.timeoutMs); };
    const sendWindow = () => {
      const w = new MsgWriter();
      const end = Math.min(lines.length, answered + WINDOW);
      for (; sent < end; sent++) w.value([OP_TENANTS, sent + 2, 'set', lines[sent].key, { tier: lines[sent].tier }]);
      if (w.length > 0) ws.send(w.take(), { binary: true });
    };
    ws.on('open', () => {
      const hello: Record<string, unknown> = { v: PROTOCOL_VERSION, name: 'tpsd tenants import' };
      if (options.token !== undefined) hello.token = options.token;
      const w = new MsgWriter();
      w.value([OP_HELLO, 1, hello]);
      ws.send(w.take(), { binary: true });
      arm();
      if (lines.length === 0) finish(null); else sendWindow();
    });
    ws.on('message', (data: Buffer) => {
      arm();
      for (const v of decodeAll(new Uint8Array(data)) as unknown[][]) {
        const [, id, status] = v as [number, number, number];
        if (id === 1) { if (status !== 0) { finish(new DaemonError(status, String(v[3]))); return; } continue; }
        answered++;
        if (status !== 0) refused.push({ key: lines[id - 2]?.key ?? `#${id}`, error: `${errorCodeName(status)}: ${String(v[3])}` });
      }
      onProgress(answered);
      if (answered >= lines.length) finish(null);
      else if (sent - answered < WINDOW / 2) sendWindow();
    });
    ws.on('error', (err) => finish(new UnreachableError(`${target}: ${err.message}`)));
    ws.on('close', () => { if (answered < lines.length) finish(new UnreachableError(`${target} closed the connection`)); });
  });
}
