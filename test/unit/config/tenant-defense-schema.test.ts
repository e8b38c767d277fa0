// Config validation of a tier's `defense` (the defensive limit an attacking
// tenant gets, docs/tenants.md): defaults filled, values taken, and every
// mistake named by its path, misspellings included.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { configErrors as errors } from '../../fixtures/config-errors.ts';

const withTier = (tier: Record<string, unknown>) => ({
  pools: [{ name: 'payments', capacity_tps: 1500, services: [{ name: 'api', priority: 'HIGH',
    tenants: { tiers: [{ name: 'pro', priority: 'HIGH', tps: 40, ...tier }] } }] }],
});


const tierOf = (raw: unknown) => validateConfig(raw, {}).pools[0].services[0].tenants!.tiers[0];

describe('config: tiers[].defense', () => {
  it('defaults to 10 % of the tier\'s tps for 60 s', () => {
    assert.deepEqual(tierOf(withTier({})).defense, { tps_fraction: 0.1, cooldown_s: 60 });
  });

  it('takes both fields, and one with the other defaulted', () => {
    assert.deepEqual(tierOf(withTier({ defense: { tps_fraction: 0.25, cooldown_s: 5 } })).defense, { tps_fraction: 0.25, cooldown_s: 5 });
    assert.deepEqual(tierOf(withTier({ defense: { cooldown_s: 2.5 } })).defense, { tps_fraction: 0.1, cooldown_s: 2.5 });
  });

  it('names the path of every mistake', () => {
    const at = 'pools[0].services[0].tenants.tiers[0].defense';
    assert.deepEqual(errors(withTier({ defense: { tps_fraction: 1.5 } })), [`${at}.tps_fraction: expected a number > 0 and <= 1, found 1.5`]);
    assert.deepEqual(errors(withTier({ defense: { tps_fraction: 0 } })), [`${at}.tps_fraction: expected a number > 0 and <= 1, found 0`]);
    assert.deepEqual(errors(withTier({ defense: { cooldown_s: -1 } })), [`${at}.cooldown_s: expected a number > 0 and <= 86400, found -1`]);
    assert.deepEqual(errors(withTier({ defense: 'strict' })), [`${at}: expected an object, found "strict"`]);
    assert.deepEqual(errors(withTier({ defense: { cooldown: 60 } })),
      [`${at}.cooldown: expected one of the keys tps_fraction, cooldown_s, found unknown key "cooldown"; did you mean "cooldown_s"?`]);
    assert.match(errors(withTier({ defence: {} }))[0], /tiers\[0\].defence: expected one of the keys .*defense, found unknown key "defence"; did you mean "defense"\?/);
  });
});
