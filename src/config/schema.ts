// The config file's validator: validateConfig() checks a parsed file against
// the schema (the format of config/default.json, described in README.md
// "Running"; `tpsd check-config` prints every field with its default),
// applies the defaults (defaults.ts), reports all problems at once in a
// ConfigError (each naming its path, what was expected and what was found)
// or returns a deeply frozen TpsdConfig. The root and its small sections are
// read here; `auth` in auth-schema.ts, `pools` in pools-schema.ts, `rls` in
// rls-schema.ts, `cluster` in cluster-schema.ts. Reading the file itself lives
// in load.ts.

import { readAuth } from './auth-schema.ts';
import { readCluster } from './cluster-schema.ts';
import { DEFAULTS, MAX_IO_THREADS, MAX_LEASES_PER_THREAD, MAX_TICK_MS, MIB, defaultIoThreads } from './defaults.ts';
import { ConfigError, FieldReader, deepFreeze, type JsonObject } from './field-reader.ts';
import { readGovernance } from './governance-schema.ts';
import { readPools } from './pools-schema.ts';
import { readRls } from './rls-schema.ts';
import { POLICY_MODES, type TpsdConfig } from './types.ts';

// Bounds other folders import from the validator's module (live limits, benchmarks).
export { MAX_BURST, MAX_TPS } from './defaults.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const ROOT_KEYS = ['listen', 'io_threads', 'tick_ms', 'data_dir', 'policy', 'lease_ttl_ms', 'max_message_bytes', 'auth', 'limits', 'log', 'telemetry', 'pools', 'rls', 'cluster', 'governance'];

/**
 * Validates a parsed config file and applies defaults. Throws one ConfigError
 * listing every problem. `env.TPSD_LOG_LEVEL`, when set, overrides log.level.
 */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): TpsdConfig {
  const r = new FieldReader();
  const root = r.object('', raw, ROOT_KEYS);
  if (root === undefined) throw new ConfigError(r.errors);

  const listen = section(r, root, 'listen', ['host', 'port']);
  const policy = section(r, root, 'policy', ['mode', 'model', 'shadow_model', 'step_cap', 'deadline_ms']);
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
    tick_ms: r.number(root, '', 'tick_ms', { integer: true, min: 10, max: MAX_TICK_MS }, d.tick_ms),
    data_dir: r.string(root, '', 'data_dir', d.data_dir),
    policy: {
      mode: r.oneOf(policy, 'policy', 'mode', POLICY_MODES, d.policy.mode),
      model: readModelPath(r, policy),
      shadow_model: readModelPath(r, policy, 'shadow_model'),
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
    rls: readRls(r, root),
    cluster: null as TpsdConfig['cluster'],
    governance: readGovernance(r, root),
  };
  config.cluster = readCluster(r, root, config.tick_ms, config.pools);
  if (r.errorCount > 0) throw new ConfigError(r.errors);
  return deepFreeze(config as TpsdConfig);
}

/** An optional top-level object; absent means "all defaults". */
function section(r: FieldReader, root: JsonObject, key: string, keys: readonly string[]): JsonObject {
  return root[key] === undefined ? {} : (r.object(key, root[key], keys) ?? {});
}

function readModelPath(r: FieldReader, policy: JsonObject, key: 'model' | 'shadow_model' = 'model'): string | null {
  const model = policy[key];
  if (model === undefined || model === null) return null;
  if (typeof model === 'string' && model.length > 0) return model;
  r.fail(`policy.${key}`, 'a model file path or null', model);
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
