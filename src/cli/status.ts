// `tpsd status`: the live state of a running daemon, per key and per pool,
// through the client SDK (connect + STATUS). --watch redraws in place (or
// prints one snapshot after another when stdout is not a terminal); --json
// prints the snapshot (one JSON document per line with --watch).

import { connect, TpsdError, UnauthorizedError, type TpsdClient } from '../client/index.ts';
import type { KeyStatus, StatusSnapshot } from '../io/status.ts';
import { runVerb, type VerbSpec } from './args.ts';
import { EXIT, Progress, bar, formatDuration, num, table } from './terminal.ts';

export const DEFAULT_URL = 'ws://127.0.0.1:7070';

export const SPEC: VerbSpec = {
  name: 'status',
  summary: 'Show the live limits, traffic and queues of a running daemon.',
  flags: {
    url: { type: 'string', value: 'URL', help: `the daemon (default ${DEFAULT_URL}; http:// works too)` },
    token: { type: 'string', value: 'TOKEN', help: 'auth token for HELLO (default: $TPSD_TOKEN)' },
    json: { type: 'boolean', help: 'print the STATUS snapshot as JSON' },
    watch: { type: 'boolean', help: 'refresh until interrupted (Ctrl-C)' },
    interval: { type: 'number', value: 'SECONDS', min: 0.1, max: 3600, help: 'refresh interval with --watch (default 1)' },
    count: { type: 'integer', value: 'N', min: 1, help: 'with --watch: stop after N refreshes' },
    timeout: { type: 'number', value: 'SECONDS', min: 0.1, max: 600, help: 'connect and reply timeout (default 5)' },
  },
  details: 'Columns: LIMIT is the refill rate in force, TPS what was granted per second in the last\n' +
    'tick, DEMAND what was asked for, DENIED what was refused, INFL leases held, UTIL TPS / LIMIT.\n\n' +
    'Exit status: 0 ok, 1 unexpected error, 2 wrong usage, 3 daemon unreachable, 5 refused (auth).',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const url = args.string('url') ?? DEFAULT_URL;
    const watch = args.boolean('watch');
    const intervalMs = (args.number('interval') ?? 1) * 1000;
    const count = args.number('count') ?? (watch ? Infinity : 1);
    const progress = new Progress('tpsd status');
    progress.note(`connecting to ${url}`);
    let client: TpsdClient;
    try {
      client = await connect(url, {
        token: args.string('token') ?? process.env.TPSD_TOKEN, name: 'tpsd status',
        timeoutMs: (args.number('timeout') ?? 5) * 1000, reconnect: { maxDelayMs: 2000 },
      });
    } catch (err) {
      return fail(err, url);
    }
    progress.done('connected');
    let stop = false;
    const onSignal = () => { stop = true; };
    process.once('SIGINT', onSignal);
    try {
      for (let i = 0; i < count && !stop; i++) {
        if (i > 0) await sleep(intervalMs, () => stop);
        if (stop) break;
        let text: string;
        try {
          const snap = await client.status() as unknown as StatusSnapshot;
          text = args.boolean('json') ? `${JSON.stringify(snap, null, watch ? undefined : 2)}\n` : render(snap, url);
        } catch (err) {
          if (!watch) return fail(err, url);
          text = `${new Date().toISOString()} ${url}: ${(err as Error).message}; retrying\n`;
        }
        // In place on a terminal: home, redraw, clear what the last frame left below (no flicker).
        if (watch && process.stdout.isTTY && !args.boolean('json')) process.stdout.write(`${i === 0 ? '\x1b[2J' : ''}\x1b[H${text}\x1b[J`);
        else process.stdout.write(watch && i > 0 && !args.boolean('json') ? `\n${text}` : text);
      }
      return EXIT.OK;
    } finally {
      process.off('SIGINT', onSignal);
      await client.close();
    }
  });
}

function fail(err: unknown, url: string): number {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tpsd status: ${url}: ${message}\n`);
  if (err instanceof UnauthorizedError) return EXIT.REFUSED;
  if (err instanceof TpsdError) return EXIT.FAILURE;
  return EXIT.UNREACHABLE;
}

function sleep(ms: number, stopped: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    const t = setInterval(() => { if (stopped() || Date.now() - started >= ms) { clearInterval(t); resolve(); } }, Math.min(ms, 50));
  });
}

/** The status table (exported for tests). */
export function render(s: StatusSnapshot, url: string): string {
  const out: string[] = [];
  out.push(`${s.server} at ${url}  mode ${s.mode}  tick ${s.tick} (every ${s.tick_ms} ms)  up ${formatDuration(s.uptime_s * 1000)}\n`);
  const pools = [['POOL', 'CAPACITY', 'EFFECTIVE', 'MODE', 'TPS', 'DEMAND', 'UTIL']];
  for (const p of s.pools) {
    pools.push([p.name, num(p.capacity_tps), num(p.effective_capacity_tps), p.mode, num(p.tps), num(p.demand_tps),
      bar(p.effective_capacity_tps > 0 ? p.tps / p.effective_capacity_tps : 0)]);
  }
  out.push(table(pools, new Set([1, 2, 4, 5])), '\n');
  const rows = [['KEY', 'PRIO', 'LIMIT', 'TPS', 'DEMAND', 'DENIED', '429/S', 'QUEUE', 'INFL', 'UTIL']];
  for (const k of s.keys) rows.push(keyRow(k));
  out.push(table(rows, new Set([2, 3, 4, 5, 6, 7, 8])));
  return out.join('');
}

function keyRow(k: KeyStatus): string[] {
  const indent = k.kind === 'pool' ? '' : k.kind === 'service' ? '  ' : '    ';
  const inFlight = k.concurrency > 0 ? `${k.in_flight}/${k.concurrency}` : String(k.in_flight);
  return [indent + k.key, k.priority ?? '-', num(k.limit_tps), num(k.tps), num(k.demand_tps), num(k.denied_tps),
    num(k.throttled_tps), String(k.queue), inFlight, bar(k.limit_tps > 0 ? k.tps / k.limit_tps : 0)];
}
