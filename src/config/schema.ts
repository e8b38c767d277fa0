// The config file's schema (shape: CONFIG.md): defaults for every optional
// field, range and cross-field checks, and validateConfig(), which reports
// all problems at once in a ConfigError or returns a deeply frozen TpsdConfig.
// Reading the file itself lives in load.ts.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import {
  ConfigError, FieldReader, deepFreeze, isPlainObject, joinIndex, joinKey,
  type JsonObject, type NumberRule,
} from './field-reader.ts';
import {
  POLICY_MODES, PRIORITIES,
  type AuthToken, type EndpointConfig, type PoolConfig, type ServiceConfig, type TpsdConfig,
} from './types.ts';

export { ConfigError, deepFreeze } from './field-reader.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Pool, service and endpoint names; '/' is reserved as the key separator. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_TPS = 2_000_000;
export const MAX_BURST = 2_000_000;
export const MAX_CONCURRENCY = 2_147_483_647;
/** Pools + services + endpoints: one shared-memory bucket each. */
export const MAX_BUCKETS = 1_000_000;
export const MAX_IO_THREADS = 16;
/** The lease table packs a slot number in 20 bits of the lease id. */
export const MAX_LEASES_PER_THREAD = 1 << 20;
const MIB = 1024 * 1024;

export const DEFAULTS = {
  listen: { host: '127.0.0.1', port: 7070 },
  tick_ms: 1000,
  data_dir: './data',
  policy: { mode: 'ppo', model: null, step_cap: 1.8, deadline_ms: 50 },
  lease_ttl_ms: 30_000,
  max_message_bytes: 65_536,
  limits: {
    max_queue_per_key: 10_000,
    max_outstanding_per_connection: 4096,
    max_leases_per_thread: 1_048_576,
    max_connections: 100_000,
    idle_timeout_s: 120,
    max_backpressure_bytes: 4 * MIB,
  },
  log: { level: 'info' },
  telemetry: { enabled: true, retention_raw_h: 24, retention_rollup_d: 30, retention_decisions_h: 168, rollup_every_s: 60 },
} as const;

/** One I/O thread per core, between 1 and MAX_IO_THREADS. */
export function defaultIoThreads(): number {
  return Math.min(MAX_IO_THREADS, Math.max(1, os.availableParallelism()));
}

/**
 * Default pool bucket size: 20 ms of capacity. The pool refills at capacity
 * less its burst (see control/controller.ts), so the burst is kept small.
 */
export function defaultPoolBurst(capacityTps: number): number {
  return Math.max(1, Math.ceil(capacityTps / 50));
}

/** Default bucket size: 50 ms worth of refill, at least one token. */
export function defaultBurst(tps: number): number {
  return Math.max(1, Math.ceil(tps / 20));
}

const TPS: NumberRule = { above: 0, max: MAX_TPS };
const MIN_TPS: NumberRule = { min: 0, max: MAX_TPS };
const BURST: NumberRule = { integer: true, min: 1, max: MAX_BURST };
const CONCURRENCY: NumberRule = { integer: true, min: 0, max: MAX_CONCURRENCY, expected: `an integer from 0 (unlimited) to ${MAX_CONCURRENCY}` };
const NAME_EXPECTED = 'a name of 1 to 64 characters from A-Z, a-z, 0-9, "_", ".", ":", "-"';

const ROOT_KEYS = ['listen', 'io_threads', 'tick_ms', 'data_dir', 'policy', 'lease_ttl_ms', 'max_message_bytes', 'auth', 'limits', 'log', 'telemetry', 'pools'];
const POOL_KEYS = ['name', 'capacity_tps', 'burst', 'services'];
const SERVICE_KEYS = ['name', 'priority', 'min_tps', 'max_tps', 'burst', 'concurrency', 'endpoints'];
const ENDPOINT_KEYS = ['name', 'max_tps', 'burst', 'concurrency'];

/**
 * Validates a parsed config file and applies defaults. Throws one ConfigError
 * listing every problem. `env.TPSD_LOG_LEVEL`, when set, overrides log.level.
 */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): TpsdConfig {
  const r = new FieldReader();
  const root = r.object('', raw, ROOT_KEYS);
  if (root === undefined) throw new ConfigError(r.errors);

  const listen = section(r, root, 'listen', ['host', 'port']);
  const policy = section(r, root, 'policy', ['mode', 'model', 'step_cap', 'deadline_ms']);
  const limits = section(r, root, 'limits', Object.keys(DEFAULTS.limits));
  const log = section(r, root, 'log', ['level']);
  const telemetry = section(r, root, 'telemetry', Object.keys(DEFAULTS.telemetry));
  const d = DEFAULTS;
  const config = {
    listen: {
      host: r.string(listen, 'listen', 'host', d.listen.host),
      port: r.number(listen, 'listen', 'port', { integer: true, min: 0, max: 65535 }, d.listen.port),
    },
    io_threads: r.number(root, '', 'io_threads', { integer: true, min: 1, max: MAX_IO_THREADS }, defaultIoThreads()),
    tick_ms: r.number(root, '', 'tick_ms', { integer: true, min: 10, max: 3_600_000 }, d.tick_ms),
    data_dir: r.string(root, '', 'data_dir', d.data_dir),
    policy: {
      mode: r.oneOf(policy, 'policy', 'mode', POLICY_MODES, d.policy.mode),
      model: readModelPath(r, policy),
      step_cap: r.number(policy, 'policy', 'step_cap', { min: 1, max: 100 }, d.policy.step_cap),
      deadline_ms: r.number(policy, 'policy', 'deadline_ms', { above: 0, max: 60_000 }, d.policy.deadline_ms),
    },
    lease_ttl_ms: r.number(root, '', 'lease_ttl_ms', { integer: true, min: 1, max: 86_400_000 }, d.lease_ttl_ms),
    max_message_bytes: r.number(root, '', 'max_message_bytes', { integer: true, min: 1024, max: 16 * MIB }, d.max_message_bytes),
    auth: readAuth(r, root, env),
    limits: readLimits(r, limits),
    log: { level: readLogLevel(r, log, env) },
    telemetry: readTelemetry(r, telemetry),
    pools: readPools(r, root),
  };
  if (r.errorCount > 0) throw new ConfigError(r.errors);
  return deepFreeze(config as TpsdConfig);
}

/** An optional top-level object; absent means "all defaults". */
function section(r: FieldReader, root: JsonObject, key: string, keys: readonly string[]): JsonObject {
  return root[key] === undefined ? {} : (r.object(key, root[key], keys) ?? {});
}

function readModelPath(r: FieldReader, policy: JsonObject): string | null {
  const model = policy.model;
  if (model === undefined || model === null) return null;
  if (typeof model === 'string' && model.length > 0) return model;
  r.fail('policy.model', 'a model file path or null', model);
  return null;
}

function readLogLevel(r: FieldReader, log: JsonObject, env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env.TPSD_LOG_LEVEL;
  if (fromEnv !== undefined && fromEnv !== '') {
    if ((LOG_LEVELS as readonly string[]).includes(fromEnv)) return fromEnv;
    r.fail('TPSD_LOG_LEVEL (environment variable)', `one of ${LOG_LEVELS.join(', ')}`, fromEnv);
    return undefined;
  }
  return r.oneOf(log, 'log', 'level', LOG_LEVELS, DEFAULTS.log.level);
}

function readLimits(r: FieldReader, limits: JsonObject) {
  const d = DEFAULTS.limits;
  const int = (key: keyof typeof d, min: number, max: number) =>
    r.number(limits, 'limits', key, { integer: true, min, max }, d[key]);
  return {
    max_queue_per_key: int('max_queue_per_key', 0, 10_000_000),
    max_outstanding_per_connection: int('max_outstanding_per_connection', 1, 1_000_000),
    max_leases_per_thread: int('max_leases_per_thread', 1, MAX_LEASES_PER_THREAD),
    max_connections: int('max_connections', 1, 10_000_000),
    // uWS refuses idle timeouts from 1 to 7 s and above 960 s.
    idle_timeout_s: r.number(limits, 'limits', 'idle_timeout_s', {
      integer: true, min: 0, max: 960, accept: (n) => n === 0 || n >= 8,
      expected: '0 (disabled) or an integer from 8 to 960',
    }, d.idle_timeout_s),
    max_backpressure_bytes: int('max_backpressure_bytes', 1024, 1024 * MIB),
  };
}

function readTelemetry(r: FieldReader, t: JsonObject) {
  const d = DEFAULTS.telemetry;
  return {
    enabled: r.boolean(t, 'telemetry', 'enabled', d.enabled),
    // Fractions of an hour are allowed (tests roll up after seconds).
    retention_raw_h: r.number(t, 'telemetry', 'retention_raw_h', { above: 0, max: 24 * 366 }, d.retention_raw_h),
    retention_rollup_d: r.number(t, 'telemetry', 'retention_rollup_d', { above: 0, max: 3660 }, d.retention_rollup_d),
    retention_decisions_h: r.number(t, 'telemetry', 'retention_decisions_h', { above: 0, max: 24 * 3660 }, d.retention_decisions_h),
    rollup_every_s: r.number(t, 'telemetry', 'rollup_every_s', { above: 0, max: 86_400 }, d.rollup_every_s),
  };
}

function readAuth(r: FieldReader, root: JsonObject, env: NodeJS.ProcessEnv): TpsdConfig['auth'] {
  if (root.auth === undefined || root.auth === null) return null;
  const auth = r.object('auth', root.auth, ['tokens']);
  if (auth === undefined) return null;
  const items = r.array(auth, 'auth', 'tokens', 'token objects', 1) ?? [];
  const seen = new Map<string, string>();
  return { tokens: items.map((item, i) => readToken(r, item, joinIndex('auth.tokens', i), seen, env)) };
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
  });
  return { token, keys, admin: r.boolean(obj, path, 'admin', false) } as AuthToken;
}

function readPools(r: FieldReader, root: JsonObject): PoolConfig[] {
  const items = r.array(root, '', 'pools', 'pool objects', 1) ?? [];
  const buckets = countBuckets(items);
  if (buckets > MAX_BUCKETS) {
    r.failWith('pools', `at most ${MAX_BUCKETS} buckets (pools + services + endpoints)`, `${buckets}`);
    return [];
  }
  const names = new Map<string, string>();
  return items.map((item, i) => readPool(r, item, joinIndex('pools', i), names));
}

function countBuckets(pools: unknown[]): number {
  let count = pools.length;
  for (const pool of pools) {
    if (!isPlainObject(pool) || !Array.isArray(pool.services)) continue;
    count += pool.services.length;
    for (const service of pool.services) {
      if (isPlainObject(service) && Array.isArray(service.endpoints)) count += service.endpoints.length;
    }
  }
  return count;
}

function readName(r: FieldReader, obj: JsonObject, path: string, names: Map<string, string>, what: string): string | undefined {
  const name = r.matching(obj, path, 'name', NAME_PATTERN, NAME_EXPECTED);
  if (name === undefined) return undefined;
  const first = names.get(name);
  if (first !== undefined) {
    r.failWith(joinKey(path, 'name'), `a unique ${what} name`, `${JSON.stringify(name)} (already used by ${first})`);
  } else {
    names.set(name, joinKey(path, 'name'));
  }
  return name;
}

function readPool(r: FieldReader, item: unknown, path: string, poolNames: Map<string, string>): PoolConfig {
  const obj = r.object(path, item, POOL_KEYS);
  if (obj === undefined) return {} as PoolConfig; // already reported
  const name = readName(r, obj, path, poolNames, 'pool');
  const capacity = r.number(obj, path, 'capacity_tps', TPS);
  const burst = r.number(obj, path, 'burst', BURST, defaultPoolBurst(capacity ?? 1));
  const items = r.array(obj, path, 'services', 'service objects', 1) ?? [];
  const servicesPath = joinKey(path, 'services');
  const names = new Map<string, string>();
  const services = items.map((s, i) => readService(r, s, joinIndex(servicesPath, i), names, capacity));

  const mins = services.map((s) => s.min_tps);
  if (capacity !== undefined && mins.every((m) => m !== undefined)) {
    const sum = mins.reduce((a, b) => a + b, 0);
    if (sum > capacity * (1 + 1e-12)) {
      r.failWith(servicesPath, `the sum of min_tps to be <= capacity_tps (${capacity})`, `${sum}`);
    }
  }
  return { name, capacity_tps: capacity, burst, services } as PoolConfig;
}

function readService(
  r: FieldReader, item: unknown, path: string, serviceNames: Map<string, string>, capacity: number | undefined,
): ServiceConfig {
  const obj = r.object(path, item, SERVICE_KEYS);
  if (obj === undefined) return {} as ServiceConfig; // already reported
  const name = readName(r, obj, path, serviceNames, 'service');
  const priority = r.oneOf(obj, path, 'priority', PRIORITIES);
  const minTps = r.number(obj, path, 'min_tps', MIN_TPS, 0);
  // The default is the pool's capacity; if that is invalid (reported), skip.
  const maxTps = obj.max_tps === undefined && capacity === undefined ? undefined : r.number(obj, path, 'max_tps', TPS, capacity);
  if (minTps !== undefined && maxTps !== undefined && minTps > maxTps) {
    r.fail(joinKey(path, 'min_tps'), `a number <= max_tps (${maxTps})`, minTps);
  }
  const burst = r.number(obj, path, 'burst', BURST, defaultBurst(maxTps ?? 1));
  const concurrency = r.number(obj, path, 'concurrency', CONCURRENCY, 0);
  const items = r.array(obj, path, 'endpoints', 'endpoint objects', 0, []) ?? [];
  const endpointsPath = joinKey(path, 'endpoints');
  const names = new Map<string, string>();
  const endpoints = items.map((e, i) => readEndpoint(r, e, joinIndex(endpointsPath, i), names, maxTps));
  return { name, priority, min_tps: minTps, max_tps: maxTps, burst, concurrency, endpoints } as ServiceConfig;
}

function readEndpoint(
  r: FieldReader, item: unknown, path: string, names: Map<string, string>, serviceMaxTps: number | undefined,
): EndpointConfig {
  const obj = r.object(path, item, ENDPOINT_KEYS);
  if (obj === undefined) return {} as EndpointConfig; // already reported
  const name = readName(r, obj, path, names, 'endpoint');
  const maxTps = obj.max_tps === undefined && serviceMaxTps === undefined ? undefined : r.number(obj, path, 'max_tps', TPS, serviceMaxTps);
  const burst = r.number(obj, path, 'burst', BURST, defaultBurst(maxTps ?? 1));
  const concurrency = r.number(obj, path, 'concurrency', CONCURRENCY, 0);
  return { name, max_tps: maxTps, burst, concurrency } as EndpointConfig;
}
