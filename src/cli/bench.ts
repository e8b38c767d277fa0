// `tpsd bench`: the load generator (code in src/loadgen/). Opens real
// WebSocket connections from worker threads, keeps requests in flight
// (closed loop) or sends them at a fixed rate (open loop, latency from the
// intended send time), prints progress on stderr and a result table, or one
// JSON object with --json. Without --keys it loads a key the daemon has
// (from its STATUS), so the defaults work against any config.

import { availableParallelism } from 'node:os';
import { formatResult, warnings } from '../loadgen/report.ts';
import { runLoad } from '../loadgen/run-load.ts';
import { checkSpec, defaultClient, parseKeys, type ClientKind, type LoadSpec } from '../loadgen/spec.ts';
import { UsageError, runVerb, type VerbSpec } from './args.ts';

const CLIENTS: readonly ClientKind[] = ['raw', 'sdk', 'rlf', 'http'];

export const SPEC: VerbSpec = {
  name: 'bench',
  summary: 'Load-test a tpsd daemon (or the echo server, or Redis + rate-limiter-flexible) over real connections.',
  flags: {
    url: { type: 'string', value: 'URL', help: 'ws://host:port of tpsd or the echo server, http://host:port of tpsd (HTTP API), or redis://host:port (default ws://127.0.0.1:7070)' },
    client: { type: 'string', value: 'NAME', help: 'raw (pre-encoded frames; default for ws://), sdk (the tpsd client SDK), http (POST /v1/acquire on keep-alive connections; default for http://), rlf (default for redis://)' },
    connections: { type: 'integer', min: 1, max: 100_000, help: 'connections (default 1)' },
    pipeline: { type: 'integer', min: 1, max: 65_536, help: 'messages in flight per connection; the cap on them with --rate (default 1)' },
    batch: { type: 'integer', min: 1, max: 4096, help: 'acquires per message (default 1)' },
    release: { type: 'boolean', help: 'RELEASE every granted lease when its grant arrives (id 0, no reply); default: leases end by TTL' },
    keys: { type: 'string', value: 'N|K1,K2', help: 'a count N (keys bench/s0..bench/sN-1) or a comma-separated list of keys ' +
      '(default: the first service without a concurrency limit in the daemon\'s STATUS; bench/s0 when the target has no STATUS)' },
    duration: { type: 'number', min: 0.1, max: 3600, help: 'measured seconds (default 10)' },
    warmup: { type: 'number', min: 0, max: 600, help: 'seconds of load before measuring (default 1)' },
    rate: { type: 'number', min: 1, max: 1e9, help: 'open loop: decisions/s over all connections (default: closed loop)' },
    threads: { type: 'integer', min: 1, max: 64, help: `load worker threads (default min(2, cores) = ${Math.min(2, availableParallelism())})` },
    token: { type: 'string', value: 'TOKEN', help: 'HELLO token (http: Bearer token), for a daemon with auth' },
    'server-pid': { type: 'integer', min: 1, help: 'sample this process\'s CPU time over the measured window (/proc/PID/stat)' },
    'rlf-points': { type: 'integer', min: 1, help: 'rlf: points per window (default 2000000)' },
    'rlf-duration': { type: 'integer', min: 1, help: 'rlf: window in seconds (default 1)' },
    json: { type: 'boolean', help: 'print one JSON object on stdout instead of the table' },
  },
  details: [
    'Each acquire takes 1 token with wait_ms 0. Progress goes to stderr once a second.',
    'Keys: without --keys, bench asks the daemon for GET /v1/status (with --token as a Bearer token) and',
    'loads the first service without a concurrency limit (leases end by TTL unless --release, so a',
    'concurrency limit would deny nearly every acquire); it names the key on stderr. Redis, the echo',
    'server or a daemon that does not answer get bench/s0.',
    'Latency: per decision, reply time minus intended send time (open loop: the schedule, so queueing shows).',
    'Exit status: 0 when decisions were measured (errors are reported, not fatal), 1 when none were or the run failed, 2 wrong usage.',
  ].join('\n'),
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const url = args.string('url') ?? 'ws://127.0.0.1:7070';
    const client = (args.string('client') ?? defaultClient(url)) as ClientKind;
    if (!CLIENTS.includes(client)) throw new UsageError(`--client: expected one of ${CLIENTS.join(', ')}, found ${JSON.stringify(client)}`);
    let spec: LoadSpec;
    const keysFlag = args.string('keys');
    try {
      spec = {
        url, client,
        connections: args.number('connections') ?? 1,
        pipeline: args.number('pipeline') ?? 1,
        batch: args.number('batch') ?? 1,
        release: args.boolean('release'),
        keys: keysFlag === undefined ? await defaultKeys(url, client, args.string('token') ?? null) : parseKeys(keysFlag),
        durationS: args.number('duration') ?? 10,
        warmupS: args.number('warmup') ?? 1,
        rate: args.number('rate') ?? null,
        threads: args.number('threads') ?? Math.min(2, availableParallelism()),
        token: args.string('token') ?? null,
        rlfPoints: args.number('rlf-points') ?? 2_000_000,
        rlfDurationS: args.number('rlf-duration') ?? 1,
      };
      checkSpec(spec);
    } catch (err) {
      if (err instanceof RangeError || err instanceof TypeError) throw new UsageError(err.message);
      throw err;
    }
    const json = args.boolean('json');
    const result = await runLoad(spec, {
      serverPid: args.number('server-pid') ?? null,
      onProgress: (line) => process.stderr.write(`tpsd bench: ${line}\n`),
    });
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(formatResult(result));
    for (const w of warnings(result)) process.stderr.write(`tpsd bench: warning: ${w}\n`);
    return result.decisions > 0 ? 0 : 1;
  });
}

interface StatusKey { key: string; kind: string; concurrency: number }

/** The key a default run loads: the first service without a concurrency limit, else the first service, else the first key. */
export function pickBenchKey(keys: readonly StatusKey[]): string | null {
  const services = keys.filter((k) => k.kind === 'service');
  return (services.find((k) => !(k.concurrency > 0)) ?? services[0] ?? keys[0])?.key ?? null;
}

/** Keys for a run without --keys, from the target's GET /v1/status; bench/s0 when it has none. Says which on stderr. */
async function defaultKeys(url: string, client: ClientKind, token: string | null): Promise<string[]> {
  const fallback = (why: string) => {
    process.stderr.write(`tpsd bench: keys: bench/s0 (${why})\n`);
    return ['bench/s0'];
  };
  if (client === 'rlf') return fallback('rate-limiter-flexible takes any key');
  const u = new URL(url);
  u.protocol = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : 'http:';
  u.pathname = '/v1/status';
  u.search = '';
  let key: string | null;
  try {
    const res = await fetch(u, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) });
    if (!res.ok) return fallback(`GET ${u.pathname} answered ${res.status}`);
    const snap = await res.json() as { keys?: unknown };
    key = Array.isArray(snap.keys) ? pickBenchKey(snap.keys as StatusKey[]) : null;
  } catch (err) {
    return fallback(`no STATUS from ${u.host}: ${(err as Error).message}`);
  }
  if (key === null) return fallback('the daemon\'s STATUS lists no key');
  process.stderr.write(`tpsd bench: keys: ${key} (from the daemon's STATUS)\n`);
  return [key];
}
