// The schema of the `auth` section (part of schema.ts's validator): bearer
// tokens, each with its secret given inline, in a file or in an environment
// variable, the key prefixes it may use and whether it may run admin ops;
// how many failed authentications one client address may make per minute;
// whether /metrics is open without a token. Problems are reported through
// the FieldReader; a secret is never echoed.

import { readFileSync } from 'node:fs';
import { DEFAULTS, MAX_FAILURES_PER_MINUTE } from './defaults.ts';
import { FieldReader, joinIndex, joinKey, type JsonObject } from './field-reader.ts';
import type { AuthToken, TpsdConfig } from './types.ts';

/** The protocol's longest key (PROTOCOL.md BAD_REQUEST), so the longest useful prefix. */
const MAX_PREFIX_BYTES = 256;

/** The `auth` section: null when absent (no authentication). */
export function readAuth(r: FieldReader, root: JsonObject, env: NodeJS.ProcessEnv): TpsdConfig['auth'] {
  if (root.auth === undefined || root.auth === null) return null;
  const auth = r.object('auth', root.auth, ['tokens', 'max_failures_per_minute', 'metrics_open']);
  if (auth === undefined) return null;
  const items = r.array(auth, 'auth', 'tokens', 'token objects', 1) ?? [];
  const seen = new Map<string, string>();
  const d = DEFAULTS.auth;
  return {
    tokens: items.map((item, i) => readToken(r, item, joinIndex('auth.tokens', i), seen, env)),
    max_failures_per_minute: r.number(auth, 'auth', 'max_failures_per_minute', {
      integer: true, min: 0, max: MAX_FAILURES_PER_MINUTE,
      expected: `an integer from 0 (no per-address limit) to ${MAX_FAILURES_PER_MINUTE}`,
    }, d.max_failures_per_minute),
    metrics_open: r.boolean(auth, 'auth', 'metrics_open', d.metrics_open),
  } as TpsdConfig['auth'];
}

/**
 * The secret of a token entry: given inline (`token`), read from a file
 * (`token_file`, trimmed; for secrets kept out of the config) or from an
 * environment variable (`token_env`). Exactly one of the three.
 */
function readSecret(r: FieldReader, obj: JsonObject, path: string, env: NodeJS.ProcessEnv): string | undefined {
  const given = ['token', 'token_file', 'token_env'].filter((k) => obj[k] !== undefined);
  if (given.length !== 1) {
    r.failWith(path, 'exactly one of token, token_file, token_env', given.length === 0 ? 'none' : given.join(' and '));
    return undefined;
  }
  if (given[0] === 'token') return r.string(obj, path, 'token');
  if (given[0] === 'token_file') {
    const file = r.string(obj, path, 'token_file');
    if (file === undefined) return undefined;
    let text: string;
    try { text = readFileSync(file, 'utf8').trim(); } catch (err) {
      r.failWith(joinKey(path, 'token_file'), 'a readable file holding the token', `${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      return undefined;
    }
    if (text === '') r.failWith(joinKey(path, 'token_file'), 'a file holding a non-empty token', `${JSON.stringify(file)} is empty`);
    return text || undefined;
  }
  const name = r.string(obj, path, 'token_env');
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === '') {
    r.failWith(joinKey(path, 'token_env'), 'the name of a set, non-empty environment variable', `${name} is not set`);
    return undefined;
  }
  return value;
}

function readToken(r: FieldReader, item: unknown, path: string, seen: Map<string, string>, env: NodeJS.ProcessEnv): AuthToken {
  const obj = r.object(path, item, ['token', 'token_file', 'token_env', 'keys', 'admin']);
  if (obj === undefined) return {} as AuthToken; // already reported
  const token = readSecret(r, obj, path, env);
  if (token !== undefined) {
    const first = seen.get(token);
    // Never echo a secret: name where the duplicate was seen instead.
    if (first !== undefined) r.failWith(joinKey(path, 'token'), 'a token not used before', `the same token as ${first}`);
    else seen.set(token, joinKey(path, 'token'));
  }
  const keysPath = joinKey(path, 'keys');
  const keys = r.array(obj, path, 'keys', 'key prefix strings', 0, []) ?? [];
  keys.forEach((key, i) => {
    if (typeof key !== 'string' || key.length === 0) r.fail(joinIndex(keysPath, i), 'a non-empty key prefix string', key);
    else if (!prefixWellFormed(key)) r.fail(joinIndex(keysPath, i), PREFIX_EXPECTED, key);
  });
  return { token, keys, admin: r.boolean(obj, path, 'admin', false) } as AuthToken;
}

const PREFIX_EXPECTED = `a key prefix of whole path segments ("pool", "pool/", "pool/service"), at most ${MAX_PREFIX_BYTES} bytes`;

/**
 * A prefix matches whole path segments (io/auth.ts keyAllowed): it names a
 * key, with at most one '/' after it. One that starts with '/' or has an
 * empty segment would never match a key, so it is refused rather than
 * silently allowing nothing.
 */
function prefixWellFormed(prefix: string): boolean {
  if (Buffer.byteLength(prefix, 'utf8') > MAX_PREFIX_BYTES) return false;
  const path = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path.split('/').every((segment) => segment.length > 0);
}
