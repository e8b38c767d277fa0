// Config schema: defaults, one test per kind of error message (path,
// expected, found), typo suggestions, freezing, the CONFIG.md example and the
// shipped config/default.json.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { closest, editDistance } from '../../../src/config/field-reader.ts';
import {
  ConfigError, DEFAULT_CONFIG_PATH, deepFreeze, loadConfigFile, validateConfig,
} from '../../../src/config/load.ts';
import { MAX_BUCKETS } from '../../../src/config/defaults.ts';
import { tempDir } from '../../fixtures/temp-dir.ts';

const NO_ENV = {};

/** The smallest valid config; `extra` is merged on top. */
function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] }], ...extra };
}

/** The errors validateConfig reports for `raw`. */
function errorsOf(raw: unknown, env: NodeJS.ProcessEnv = NO_ENV): string[] {
  try {
    validateConfig(raw, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.errors;
  }
  assert.fail('expected validateConfig to throw');
}

function withService(service: Record<string, unknown>, capacity = 100): Record<string, unknown> {
  return { pools: [{ name: 'p', capacity_tps: capacity, services: [service] }] };
}

// Verbatim from CONFIG.md.
const CONFIG_MD_EXAMPLE = `{
  "listen": {"host": "127.0.0.1", "port": 7070},
  "io_threads": 2,
  "tick_ms": 1000,
  "data_dir": "./data",
  "policy": {"mode": "ppo", "model": "path/to/model.json"},
  "lease_ttl_ms": 30000,
  "max_message_bytes": 65536,
  "auth": {"tokens": [{"token": "s3cret", "keys": ["payments/"], "admin": false}]},
  "pools": [
    {
      "name": "payments",
      "capacity_tps": 1500,
      "services": [
        {"name": "checkout", "priority": "CRITICAL", "min_tps": 200, "max_tps": 1500,
         "burst": 50, "concurrency": 100,
         "endpoints": [{"name": "refund", "max_tps": 50}]}
      ]
    }
  ]
}`;

describe('defaults', () => {
  it('fills every optional top-level field', () => {
    const c = validateConfig(minimal(), NO_ENV);
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 7070 });
    assert.equal(c.io_threads, Math.min(16, Math.max(1, os.availableParallelism())));
    assert.equal(c.tick_ms, 1000);
    assert.equal(c.data_dir, './data');
    assert.deepEqual(c.policy, { mode: 'ppo', model: null, shadow_model: null, step_cap: 1.8, deadline_ms: 50 });
    assert.equal(c.lease_ttl_ms, 30000);
    assert.equal(c.max_message_bytes, 65536);
    assert.equal(c.auth, null);
    assert.deepEqual(c.limits, {
      max_queue_per_key: 10000,
      max_outstanding_per_connection: 4096,
      max_leases_per_thread: 1048576,
      max_connections: 100000,
      idle_timeout_s: 120,
      max_backpressure_bytes: 4 * 1024 * 1024,
    });
    assert.deepEqual(c.log, { level: 'info' });
  });

  it('derives pool, service and endpoint defaults', () => {
    const c = validateConfig({
      pools: [{ name: 'p', capacity_tps: 1000, services: [
        { name: 's', priority: 'HIGH', endpoints: [{ name: 'e' }, { name: 'f', max_tps: 30 }] },
        { name: 't', priority: 'LOW', max_tps: 10 },
      ] }],
    }, NO_ENV);
    const pool = c.pools[0];
    assert.equal(pool.burst, 100, 'pool: 100 ms of capacity');
    assert.deepEqual(pool.services[0], {
      name: 's', priority: 'HIGH', min_tps: 0, max_tps: 1000, burst: 200, concurrency: 0,
      endpoints: [
        { name: 'e', max_tps: 1000, burst: 200, concurrency: 0 },
        { name: 'f', max_tps: 30, burst: 6, concurrency: 0 },
      ],
    });
    assert.equal(pool.services[1].burst, 2);
    assert.deepEqual(pool.services[1].endpoints, []);
  });

  it('takes the upstream window of a pool, sliding_1s by default', () => {
    const c = validateConfig({ pools: [
      { name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] },
      { name: 'q', capacity_tps: 100, upstream: { window: 'token_bucket', slo_ms: 300, timeout_ms: 2000 }, services: [{ name: 's', priority: 'LOW' }] },
      { name: 'r', capacity_tps: 100, upstream: { window: 'fixed_1s' }, services: [{ name: 's', priority: 'LOW' }] },
    ] }, NO_ENV);
    assert.deepEqual(c.pools.map((p) => p.upstream), [
      { window: 'sliding_1s', slo_ms: null, timeout_ms: null },
      { window: 'token_bucket', slo_ms: 300, timeout_ms: 2000 },
      { window: 'fixed_1s', slo_ms: null, timeout_ms: null },
    ]);
  });

  it('keeps burst at least 1 for tiny rates', () => {
    const c = validateConfig(withService({ name: 's', priority: 'LOW', max_tps: 0.5 }, 0.5), NO_ENV);
    assert.equal(c.pools[0].burst, 1);
    assert.equal(c.pools[0].services[0].burst, 1);
  });

  it('treats auth null like no auth and defaults token fields', () => {
    assert.equal(validateConfig(minimal({ auth: null }), NO_ENV).auth, null);
    const c = validateConfig(minimal({ auth: { tokens: [{ token: 't' }] } }), NO_ENV);
    assert.deepEqual(c.auth, { tokens: [{ token: 't', keys: [], admin: false }], max_failures_per_minute: 20, metrics_open: false });
  });

  it('keeps policy mode "fair" as given', () => {
    assert.equal(validateConfig(minimal({ policy: { mode: 'fair' } }), NO_ENV).policy.mode, 'fair');
  });

  it('lets TPSD_LOG_LEVEL override log.level', () => {
    const c = validateConfig(minimal({ log: { level: 'warn' } }), { TPSD_LOG_LEVEL: 'debug' });
    assert.equal(c.log.level, 'debug');
    assert.deepEqual(errorsOf(minimal(), { TPSD_LOG_LEVEL: 'loud' }), [
      'TPSD_LOG_LEVEL (environment variable): expected one of fatal, error, warn, info, debug, trace, silent, found "loud"',
    ]);
  });
});

describe('error messages name the path, what was expected and what was found', () => {
  const cases: [string, unknown, string][] = [
    ['enum', withService({ name: 's', priority: 'URGENT' }),
      'pools[0].services[0].priority: expected one of CRITICAL, HIGH, MEDIUM, LOW, found "URGENT"'],
    ['missing required field', withService({ name: 's' }),
      'pools[0].services[0].priority: expected one of CRITICAL, HIGH, MEDIUM, LOW, found nothing (the field is required)'],
    ['wrong type', minimal({ listen: { port: '7070' } }),
      'listen.port: expected an integer from 0 to 65535, found "7070"'],
    ['out of range', minimal({ io_threads: 17 }), 'io_threads: expected an integer from 1 to 16, found 17'],
    ['not an integer', minimal({ tick_ms: 5.5 }), 'tick_ms: expected an integer from 10 to 3600000, found 5.5'],
    ['below minimum', minimal({ max_message_bytes: 512 }), 'max_message_bytes: expected an integer from 1024 to 16777216, found 512'],
    ['not finite', withService({ name: 's', priority: 'LOW', max_tps: Infinity }),
      'pools[0].services[0].max_tps: expected a number > 0 and <= 2000000, found Infinity'],
    ['zero capacity', { pools: [{ name: 'p', capacity_tps: 0, services: [{ name: 's', priority: 'LOW', max_tps: 1 }] }] },
      'pools[0].capacity_tps: expected a number > 0 and <= 2000000, found 0'],
    ['burst', withService({ name: 's', priority: 'LOW', burst: 2_000_001 }),
      'pools[0].services[0].burst: expected an integer from 1 to 2000000, found 2000001'],
    ['uWS idle timeout', minimal({ limits: { idle_timeout_s: 4 } }),
      'limits.idle_timeout_s: expected 0 (disabled) or an integer from 8 to 960, found 4'],
    ['object expected', minimal({ policy: 'ppo' }), 'policy: expected an object, found "ppo"'],
    ['array expected', minimal({ pools: {} }), 'pools: expected a non-empty array of pool objects, found an object'],
    ['empty array', minimal({ pools: [] }), 'pools: expected a non-empty array of pool objects, found an empty array'],
    ['root', [], '(root): expected an object, found an array'],
    ['bad name', { pools: [{ name: 'a/b', capacity_tps: 1, services: [{ name: 's', priority: 'LOW' }] }] },
      'pools[0].name: expected a name of 1 to 64 characters from A-Z, a-z, 0-9, "_", ".", ":", "-", found "a/b"'],
    ['duplicate pool', { pools: [
      { name: 'p', capacity_tps: 1, services: [{ name: 's', priority: 'LOW' }] },
      { name: 'p', capacity_tps: 1, services: [{ name: 's', priority: 'LOW' }] },
    ] }, 'pools[1].name: expected a unique pool name, found "p" (already used by pools[0].name)'],
    ['duplicate service', { pools: [{ name: 'p', capacity_tps: 1, services: [
      { name: 's', priority: 'LOW' }, { name: 's', priority: 'HIGH' },
    ] }] }, 'pools[0].services[1].name: expected a unique service name, found "s" (already used by pools[0].services[0].name)'],
    ['duplicate endpoint', withService({ name: 's', priority: 'LOW', endpoints: [{ name: 'e' }, { name: 'e' }] }),
      'pools[0].services[0].endpoints[1].name: expected a unique endpoint name, found "e" (already used by pools[0].services[0].endpoints[0].name)'],
    ['min above max', withService({ name: 's', priority: 'LOW', min_tps: 50, max_tps: 40 }),
      'pools[0].services[0].min_tps: expected a number <= max_tps (40), found 50'],
    ['sum of min_tps', { pools: [{ name: 'p', capacity_tps: 100, services: [
      { name: 'a', priority: 'LOW', min_tps: 60 }, { name: 'b', priority: 'LOW', min_tps: 50 },
    ] }] }, 'pools[0].services: expected the sum of min_tps to be <= capacity_tps (100), found 110'],
    ['policy mode', minimal({ policy: { mode: 'ppo2' } }),
      'policy.mode: expected one of ppo, shadow, fallback, fair, static, found "ppo2"'],
    ['policy model', minimal({ policy: { model: 3 } }), 'policy.model: expected a model file path or null, found 3'],
    ['policy shadow_model', minimal({ policy: { shadow_model: '' } }), 'policy.shadow_model: expected a model file path or null, found ""'],
    ['boolean', minimal({ auth: { tokens: [{ token: 't', admin: 'yes' }] } }),
      'auth.tokens[0].admin: expected true or false, found "yes"'],
    ['token keys', minimal({ auth: { tokens: [{ token: 't', keys: ['p/', 7] }] } }),
      'auth.tokens[0].keys[1]: expected a non-empty key prefix string, found 7'],
    ['empty token', minimal({ auth: { tokens: [{ token: '' }] } }),
      'auth.tokens[0].token: expected a non-empty string, found ""'],
    ['no tokens', minimal({ auth: { tokens: [] } }),
      'auth.tokens: expected a non-empty array of token objects, found an empty array'],
    ['upstream window', { pools: [{ name: 'p', capacity_tps: 1, upstream: { window: 'sliding_2s' }, services: [{ name: 's', priority: 'LOW' }] }] },
      'pools[0].upstream.window: expected one of sliding_1s, fixed_1s, token_bucket, found "sliding_2s"'],
    ['upstream misspelt', { pools: [{ name: 'p', capacity_tps: 1, upstream: { windw: 'fixed_1s' }, services: [{ name: 's', priority: 'LOW' }] }] },
      'pools[0].upstream.windw: expected one of the keys window, slo_ms, timeout_ms, found unknown key "windw"; did you mean "window"?'],
    ['upstream not an object', { pools: [{ name: 'p', capacity_tps: 1, upstream: 'fixed_1s', services: [{ name: 's', priority: 'LOW' }] }] },
      'pools[0].upstream: expected an object, found "fixed_1s"'],
    ['upstream slo', { pools: [{ name: 'p', capacity_tps: 1, upstream: { slo_ms: 0 }, services: [{ name: 's', priority: 'LOW' }] }] },
      'pools[0].upstream.slo_ms: expected a number > 0 and <= 3600000, found 0'],
  ];
  for (const [kind, raw, message] of cases) {
    it(kind, () => assert.deepEqual(errorsOf(raw), [message]));
  }

  it('never echoes a duplicated token', () => {
    const errors = errorsOf(minimal({ auth: { tokens: [{ token: 'hunter2' }, { token: 'hunter2' }] } }));
    assert.deepEqual(errors, ['auth.tokens[1].token: expected a token not used before, found the same token as auth.tokens[0].token']);
  });

  it('limits the number of buckets', () => {
    const services = Array.from({ length: MAX_BUCKETS }, (_, i) => ({ name: `s${i}`, priority: 'LOW' }));
    assert.deepEqual(errorsOf({ pools: [{ name: 'p', capacity_tps: 1, services }] }), [
      `pools: expected at most ${MAX_BUCKETS} buckets (pools + services + endpoints + tiers), found ${MAX_BUCKETS + 1}`,
    ]);
  });

  it('collects every error and lists them in the message', () => {
    let caught: unknown;
    try {
      validateConfig({ io_threads: 0, listen: { port: -1 }, pools: [{ name: 'p', capacity_tps: 1, services: [{ name: 's' }] }] }, NO_ENV);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConfigError);
    assert.equal(caught.errors.length, 3);
    assert.match(caught.message, /^invalid config \(3 errors\):/);
    for (const error of caught.errors) assert.ok(caught.message.includes(`  - ${error}`));
  });

  it('does not cascade from an invalid capacity into defaulted max_tps', () => {
    const errors = errorsOf({ pools: [{ name: 'p', capacity_tps: 'big', services: [{ name: 's', priority: 'LOW', min_tps: 5 }] }] });
    assert.deepEqual(errors, ['pools[0].capacity_tps: expected a number > 0 and <= 2000000, found "big"']);
  });
});

describe('unknown keys', () => {
  it('suggests the close known key', () => {
    assert.deepEqual(errorsOf(withService({ name: 's', priority: 'LOW', max_tsp: 5 })), [
      'pools[0].services[0].max_tsp: expected one of the keys name, priority, min_tps, max_tps, burst, concurrency, endpoints, enforce, tenants, found unknown key "max_tsp"; did you mean "max_tps"?',
    ]);
    assert.match(errorsOf(minimal({ polcy: {} }))[0], /^polcy: .*found unknown key "polcy"; did you mean "policy"\?$/);
  });

  it('gives no suggestion when nothing is close', () => {
    assert.deepEqual(errorsOf(minimal({ listen: { address: 'x' } })), [
      'listen.address: expected one of the keys host, port, found unknown key "address"',
    ]);
  });

  it('measures edit distance with transpositions', () => {
    assert.equal(editDistance('prioirty', 'priority'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(closest('capacity', ['name', 'capacity_tps']), undefined);
    assert.equal(closest('Burst', ['name', 'burst']), 'burst');
  });
});

describe('freezing', () => {
  it('returns a deeply frozen config', () => {
    const c = validateConfig(withService({ name: 's', priority: 'LOW', endpoints: [{ name: 'e' }] }), NO_ENV);
    for (const obj of [c, c.listen, c.policy, c.limits, c.log, c.pools, c.pools[0], c.pools[0].services[0].endpoints[0]]) {
      assert.ok(Object.isFrozen(obj));
    }
    assert.throws(() => { (c.listen as { port: number }).port = 1; }, TypeError);
    assert.throws(() => { (c.pools as unknown[]).push({}); }, TypeError);
  });

  it('deepFreeze handles cycles and already frozen parents', () => {
    const inner = { a: 1 };
    const outer = Object.freeze({ inner });
    deepFreeze(outer);
    assert.ok(Object.isFrozen(inner));
    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    assert.equal(deepFreeze(cyclic), cyclic);
  });
});

describe('accepted files', () => {
  it('accepts the CONFIG.md example verbatim', () => {
    const c = validateConfig(JSON.parse(CONFIG_MD_EXAMPLE), NO_ENV);
    assert.equal(c.io_threads, 2);
    assert.equal(c.policy.model, 'path/to/model.json');
    assert.deepEqual(c.auth, { tokens: [{ token: 's3cret', keys: ['payments/'], admin: false }], max_failures_per_minute: 20, metrics_open: false });
    assert.deepEqual(c.pools[0].services[0].endpoints, [{ name: 'refund', max_tps: 50, burst: 10, concurrency: 0 }]);
    assert.equal(c.pools[0].burst, 150);
    assert.deepEqual(c.pools[0].upstream, { window: 'sliding_1s', slo_ms: null, timeout_ms: null });
  });

  it('ships a valid config/default.json', () => {
    const c = loadConfigFile(DEFAULT_CONFIG_PATH, {}, NO_ENV);
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 7070 });
    assert.equal(c.auth, null);
    assert.equal(c.policy.mode, 'ppo');
    assert.deepEqual(c.pools.map((p) => p.name), ['payments', 'email']);
    assert.deepEqual(c.pools[0].services.map((s) => [s.name, s.priority]),
      [['checkout', 'CRITICAL'], ['orders', 'HIGH'], ['search', 'MEDIUM'], ['reporting', 'LOW']]);
    assert.equal(c.pools[1].services.length, 2);
  });
});

describe('loadConfigFile', () => {
  const dir = tempDir('tpsd-config-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it('applies --port and --data overrides', () => {
    const file = write('ok.json', JSON.stringify(minimal({ listen: { host: '0.0.0.0' } })));
    const c = loadConfigFile(file, { port: 0, data_dir: '/var/lib/tpsd' }, NO_ENV);
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 0 });
    assert.equal(c.data_dir, '/var/lib/tpsd');
  });

  it('names the file when it is missing', () => {
    const file = path.join(dir, 'missing.json');
    assert.throws(() => loadConfigFile(file), (err: unknown) =>
      err instanceof ConfigError && err.message.includes(file) && /ENOENT/.test(err.errors[0]));
  });

  it('names the file on a JSON syntax error', () => {
    const file = write('broken.json', '{"pools": [}');
    assert.throws(() => loadConfigFile(file), (err: unknown) =>
      err instanceof ConfigError && err.message.includes(file) && err.errors[0].startsWith('invalid JSON: '));
  });

  it('names the file on validation errors and keeps the paths', () => {
    const file = write('invalid.json', JSON.stringify(minimal({ tick_ms: 1 })));
    assert.throws(() => loadConfigFile(file, {}, NO_ENV), (err: unknown) =>
      err instanceof ConfigError && err.message.startsWith(`invalid config file ${file} (1 error)`) &&
      err.errors[0] === 'tick_ms: expected an integer from 10 to 3600000, found 1');
  });

  it('accepts a byte order mark', () => {
    const file = write('bom.json', `\uFEFF${JSON.stringify(minimal())}`);
    assert.equal(loadConfigFile(file, {}, NO_ENV).pools.length, 1);
  });
});

describe('auth secrets kept out of the config', () => {
  const pools = [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'LOW' }] }];
  it('reads a token from token_file (trimmed) or token_env', () => {
    const dir = tempDir('tpsd-auth-');
    try {
      const file = path.join(dir, 'token');
      fs.writeFileSync(file, 'from-file\n');
      const c = validateConfig({ pools, auth: { tokens: [{ token_file: file }, { token_env: 'TPSD_T', keys: ['p/'] }] } }, { TPSD_T: 'from-env' });
      assert.deepEqual(c.auth!.tokens.map((t) => t.token), ['from-file', 'from-env']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('names the entry when the secret is missing, doubled or unreadable', () => {
    const bad = (tokens: unknown[], env = {}) => {
      try { validateConfig({ pools, auth: { tokens } }, env); } catch (err) { return String((err as Error).message); }
      return 'no error';
    };
    assert.match(bad([{ keys: [] }]), /auth\.tokens\[0\]: expected exactly one of token, token_file, token_env, found none/);
    assert.match(bad([{ token: 'a', token_env: 'X' }]), /found token and token_env/);
    assert.match(bad([{ token_file: '/nonexistent/tpsd-token' }]), /auth\.tokens\[0\]\.token_file: expected a readable file.*ENOENT/);
    assert.match(bad([{ token_env: 'TPSD_UNSET' }]), /auth\.tokens\[0\]\.token_env: .*TPSD_UNSET is not set/);
  });
});
