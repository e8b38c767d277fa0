// The `cluster` section and the pools' `shared` flag (src/config/cluster-schema.ts):
// defaults, the CONFIG.md example, one test per kind of error (each naming
// its path), the Redis URL forms (server, Sentinel, Cluster) and that a
// reload changing any of it needs a restart.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRedisUrl, redacted } from '../../../src/config/cluster-schema.ts';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';
import { restartNeeded } from '../../../src/daemon/reload.ts';

const NO_ENV = {};
const POOL = { name: 'payments', capacity_tps: 1500, services: [{ name: 'checkout', priority: 'CRITICAL' }] };

function config(cluster: unknown, pool: Record<string, unknown> = { shared: true }, root: Record<string, unknown> = {}) {
  return { ...root, pools: [{ ...POOL, ...pool }], ...(cluster === undefined ? {} : { cluster }) };
}

function errorsOf(raw: unknown): string[] {
  try {
    validateConfig(raw, NO_ENV);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.errors;
  }
  return assert.fail(`accepted ${JSON.stringify(raw)}`);
}

describe('cluster config', () => {
  it('is null without a section; pools are not shared by default', () => {
    const c = validateConfig(config(undefined, {}), NO_ENV);
    assert.equal(c.cluster, null);
    assert.equal(c.pools[0].shared, false);
  });

  it('takes the CONFIG.md example and fills the defaults', () => {
    const c = validateConfig(config({ redis: 'redis://127.0.0.1:6379', node_id: 'host-a', lease_ms: 3000, safe_share: 'even' }), NO_ENV);
    assert.deepEqual(c.cluster, { redis: 'redis://127.0.0.1:6379', node_id: 'host-a', lease_ms: 3000, safe_share: 'even', key_prefix: 'tpsd' });
    assert.equal(c.pools[0].shared, true);
    const d = validateConfig(config({ redis: 'rediss://:pw@redis.internal:6380/2', safe_share: 0.25 }, {}, { tick_ms: 2000 }), NO_ENV);
    assert.deepEqual(d.cluster, { redis: 'rediss://:pw@redis.internal:6380/2', node_id: null, lease_ms: 6000, safe_share: 0.25, key_prefix: 'tpsd' },
      'lease default: 3 s, or 3 ticks when ticks are longer');
    assert.ok(Object.isFrozen(d.cluster));
  });

  it('names the path of each problem', () => {
    const errors = errorsOf(config({
      redis: 'http://x', node_id: 'a/b', lease_ms: 150, safe_share: 1.5, key_prefix: '{x}', lease_sm: 1,
    }, { shared: 'yes' }, { tick_ms: 100 }));
    const want = [
      /^cluster\.lease_sm: .*unknown key "lease_sm"; did you mean "lease_ms"\?/,
      /^pools\[0\]\.shared: expected true or false, found "yes"/,
      /^cluster\.redis: expected redis:\/\/.*found "http:\/\/x" \(an unknown scheme or form\)/,
      /^cluster\.node_id: expected a node id of 1 to 128 characters/,
      /^cluster\.lease_ms: expected an integer from 200 \(2 x tick_ms, at least 20\) to 3600000, found 150/,
      /^cluster\.safe_share: expected "even" or a fraction of capacity > 0 and <= 1, found 1\.5/,
      /^cluster\.key_prefix: expected a prefix of 1 to 64 characters/,
    ];
    for (const re of want) assert.ok(errors.some((e) => re.test(e)), `no error matching ${re} in:\n${errors.join('\n')}`);
    assert.equal(errors.length, want.length, errors.join('\n'));
  });

  it('refuses a shared pool without a cluster section, and a section without redis', () => {
    assert.deepEqual(errorsOf(config(undefined)), ['pools[0].shared: expected false, or a cluster section to share the pool through, found true']);
    assert.deepEqual(errorsOf(config({})), ['cluster.redis: expected a non-empty string, found nothing (the field is required)']);
    for (const bad of [0, -0.1, 'half', null, []]) {
      if (bad === null) continue;
      assert.match(errorsOf(config({ redis: 'redis://h', safe_share: bad }))[0], /^cluster\.safe_share: /);
    }
  });

  it('never echoes a password in an error', () => {
    const [e] = errorsOf(config({ redis: 'redis://user:s3cret@h:6379/x' }));
    assert.match(e, /^cluster\.redis: .*"redis:\/\/user:\*\*\*@h:6379\/x" \(the path must be a database number/);
    assert.ok(!e.includes('s3cret'));
    assert.equal(redacted('redis+sentinel://:pw@a,b/m'), 'redis+sentinel://:***@a,b/m');
  });

  it('reads Sentinel and Cluster URLs into ioredis\' terms', () => {
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379/1'), { kind: 'standalone', url: 'redis://127.0.0.1:6379/1' });
    assert.deepEqual(parseRedisUrl('redis+sentinel://:p%40ss@s1,s2:26380,[::1]:26381/mymaster/3'), {
      kind: 'sentinel', name: 'mymaster', db: 3, tls: false, password: 'p@ss',
      hosts: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: '::1', port: 26381 }],
    });
    assert.deepEqual(parseRedisUrl('rediss+cluster://app:pw@n1:7000,n2'), {
      kind: 'cluster', tls: true, username: 'app', password: 'pw', hosts: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 6379 }],
    });
    for (const bad of ['redis+sentinel://s1:26379', 'redis+cluster://n1/x', 'redis+cluster://n1:99999', 'redis+mesh://a', 'redis://']) {
      assert.ok('error' in parseRedisUrl(bad), bad);
    }
  });

  it('needs a restart to change the cluster section or which pools are shared', () => {
    const a = validateConfig(config({ redis: 'redis://h:1' }), NO_ENV);
    const b = validateConfig(config({ redis: 'redis://h:2' }), NO_ENV);
    const c = validateConfig(config({ redis: 'redis://h:1' }, { shared: false }), NO_ENV);
    assert.match(restartNeeded(a, b) ?? '', /cluster/);
    assert.match(restartNeeded(a, c) ?? '', /pools\[\]\.shared/);
    assert.equal(restartNeeded(a, validateConfig(config({ redis: 'redis://h:1' }), NO_ENV)), null);
  });
});
