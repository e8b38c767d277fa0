// What one load run is: the target, the client, the shape of the load. Plain
// data, posted as is from the main thread to every load worker.

/** raw: pre-encoded frames over `ws`; sdk: the tpsd client SDK; rlf: ioredis + rate-limiter-flexible; http: tpsd's HTTP/JSON API. */
export type ClientKind = 'raw' | 'sdk' | 'rlf' | 'http';

export interface LoadSpec {
  /** ws://host:port[/path] (tpsd or the echo server), http://host:port (tpsd's HTTP API) or redis://host:port. */
  readonly url: string;
  readonly client: ClientKind;
  readonly connections: number;
  /** Messages in flight per connection (closed loop), or the cap on them (open loop). */
  readonly pipeline: number;
  /** Acquires per message. */
  readonly batch: number;
  /** RELEASE each granted lease as soon as its grant arrives (id 0: no reply), as a caller of a guarded upstream does. */
  readonly release: boolean;
  readonly keys: readonly string[];
  readonly durationS: number;
  /** Load before measuring (not recorded). */
  readonly warmupS: number;
  /** Open loop: decisions/s over all connections; null: closed loop. */
  readonly rate: number | null;
  /** Load worker threads. */
  readonly threads: number;
  /** HELLO token (tpsd with auth). */
  readonly token: string | null;
  /** rate-limiter-flexible: points per window and window length (rlf client only). */
  readonly rlfPoints: number;
  readonly rlfDurationS: number;
}

/** Keys named by --keys: a count N gives bench/s0 .. bench/s{N-1}; otherwise a comma-separated list. */
export function parseKeys(text: string): string[] {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 1_000_000) throw new RangeError(`--keys: expected 1 to 1000000 keys, found ${n}`);
    return Array.from({ length: n }, (_, i) => `bench/s${i}`);
  }
  const keys = text.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
  if (keys.length === 0) throw new RangeError('--keys: expected a count or a comma-separated list of keys');
  return keys;
}

/** ws://host:port -> ws://host:port/v1 (the SDK's rule: a URL without a path gets /v1). */
export function wsUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1';
  return u.toString();
}

/** The client a URL implies when none is given. */
export function defaultClient(url: string): ClientKind {
  if (url.startsWith('redis://')) return 'rlf';
  return url.startsWith('http://') ? 'http' : 'raw';
}

export function checkSpec(s: LoadSpec): void {
  const proto = new URL(s.url).protocol;
  const needs: Record<ClientKind, string> = { raw: 'ws:', sdk: 'ws:', rlf: 'redis:', http: 'http:' };
  if (proto !== needs[s.client]) throw new RangeError(`--client ${s.client} needs a ${needs[s.client]}// url, got ${s.url}`);
  if (s.rate !== null && !(s.rate > 0)) throw new RangeError('--rate must be > 0');
  if (s.release && s.client === 'rlf') throw new RangeError('--release: rate-limiter-flexible has no leases (raw and sdk clients only)');
}
