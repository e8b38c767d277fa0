// Config validation of `tenants` (services) and `enforce` (pools, services,
// endpoints, tiers): CONFIG.md's example accepted, defaults filled, and every
// mistake named by its path with what was expected and what was found.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { configErrors as errors } from '../../fixtures/config-errors.ts';
import { MAX_TENANTS } from '../../../src/config/defaults.ts';

const api = (service: Record<string, unknown>, pool: Record<string, unknown> = {}) =>
  ({ pools: [{ name: 'payments', capacity_tps: 1500, ...pool, services: [{ name: 'api', priority: 'HIGH', ...service }] }] });


describe('config: tenants and enforce', () => {
  it('accepts the CONFIG.md additions example and fills the defaults', () => {
    const c = validateConfig({
      pools: [{
        name: 'payments', capacity_tps: 1500, upstream: { slo_ms: 300, timeout_ms: 2000 },
        services: [
          { name: 'checkout', priority: 'CRITICAL', min_tps: 200 },
          { name: 'api', priority: 'HIGH', max_tps: 1000, enforce: false, tenants: {
            tiers: [
              { name: 'enterprise', priority: 'CRITICAL', tps: 120, burst: 240 },
              { name: 'pro', priority: 'HIGH', tps: 40 },
              { name: 'free', priority: 'LOW', tps: 10 },
            ],
            default_tier: 'free', max: 100000, idle_s: 300 } },
        ],
      }],
    }, {});
    const svc = c.pools[0].services[1];
    assert.equal(svc.enforce, false);
    assert.equal(c.pools[0].services[0].enforce, undefined, 'enforce is shown only when false');
    assert.equal(c.pools[0].services[0].tenants, undefined, 'no tenants section, none shown');
    const defense = { tps_fraction: 0.1, cooldown_s: 60 }; // every tier's default (tenant-defense-schema.test.ts)
    assert.deepEqual(svc.tenants, {
      tiers: [
        { name: 'enterprise', priority: 'CRITICAL', tps: 120, burst: 240, defense },
        { name: 'pro', priority: 'HIGH', tps: 40, burst: 8, defense },
        { name: 'free', priority: 'LOW', tps: 10, burst: 2, defense },
      ],
      default_tier: 'free', max: 100000, idle_s: 300,
    });
    const d = validateConfig(api({ tenants: { tiers: [{ name: 'std', priority: 'LOW', tps: 5 }] } }), {});
    assert.deepEqual({ ...d.pools[0].services[0].tenants, tiers: undefined }, { tiers: undefined, default_tier: 'std', max: 10000, idle_s: 300 });
  });

  it('names the path of every mistake', () => {
    assert.deepEqual(errors(api({ tenants: { tiers: [{ name: 'a', priority: 'LOW', tps: 1 }], default_tier: 'b' } })),
      ['pools[0].services[0].tenants.default_tier: expected one of the tiers\' names ("a"), found "b"']);
    assert.deepEqual(errors(api({ tenants: { tiers: [] } })),
      ['pools[0].services[0].tenants.tiers: expected a non-empty array of tier objects, found an empty array']);
    assert.deepEqual(errors(api({ tenants: { tiers: [{ name: 'a', priority: 'LOW', tps: 1 }, { name: 'a', priority: 'HIGH', tps: 2 }] } })),
      ['pools[0].services[0].tenants.tiers[1].name: expected a unique tier name, found "a" (already used by pools[0].services[0].tenants.tiers[0].name)']);
    assert.deepEqual(errors(api({ tenants: { tiers: [{ name: '~a', priority: 'LOW', tps: 0 }] } })), [
      'pools[0].services[0].tenants.tiers[0].name: expected a tier name of 1 to 64 characters from A-Z, a-z, 0-9, "_", ".", ":", "-", found "~a"',
      'pools[0].services[0].tenants.tiers[0].tps: expected a number > 0 and <= 2000000, found 0',
    ]);
    assert.match(errors(api({ tenants: { tiers: [{ name: 'a', priority: 'LOW', tps: 1 }], max: 0 } }))[0], /^pools\[0\]\.services\[0\]\.tenants\.max: expected an integer from 1 to/);
    assert.match(errors(api({ tenants: { tiers: [{ name: 'a', priority: 'LOW', tps: 1 }], idle: 5 } }))[0],
      /^pools\[0\]\.services\[0\]\.tenants\.idle: expected one of the keys .*did you mean "idle_s"\?$/);
    assert.deepEqual(errors(api({ enforce: 'no' })), ['pools[0].services[0].enforce: expected true or false, found "no"']);
    assert.deepEqual(errors(api({}, { enforce: 1 })), ['pools[0].enforce: expected true or false, found 1']);
    assert.deepEqual(errors(api({ endpoints: [{ name: 'e', enforce: null }] })), ['pools[0].services[0].endpoints[0].enforce: expected true or false, found null']);
    assert.match(errors(api({ tenants: { tiers: [{ name: 'a', priority: 'LOW', tps: 1, enforce: 0 }] } }))[0], /^pools\[0\]\.services\[0\]\.tenants\.tiers\[0\]\.enforce: expected true or false/);
  });

  it('bounds the tenant slots shared memory is sized for', () => {
    const tiers = [{ name: 'a', priority: 'LOW', tps: 1 }];
    const raw = { pools: [{ name: 'p', capacity_tps: 10, services: [
      { name: 's', priority: 'LOW', tenants: { tiers, max: MAX_TENANTS } },
      { name: 't', priority: 'LOW', tenants: { tiers, max: 1 } },
    ] }] };
    assert.deepEqual(errors(raw), [`pools: expected the sum of every tenants.max to be at most ${MAX_TENANTS}, found ${MAX_TENANTS + 1}`]);
  });
});
