// The `rls` section (Envoy's rate limit service): absent means not served,
// defaults for host and unknown_keys, port required, and every mistake named
// by its path (a misspelled key with a suggestion); what a reload may change.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';
import { restartNeeded } from '../../../src/daemon/reload.ts';

const NO_ENV = {};
const POOLS = [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] }];

function errorsOf(rls: unknown): string[] {
  try {
    validateConfig({ pools: POOLS, rls }, NO_ENV);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.errors;
  }
  return assert.fail(`accepted rls ${JSON.stringify(rls)}`);
}

describe('config: rls', () => {
  it('is null when absent (not served)', () => {
    assert.equal(validateConfig({ pools: POOLS }, NO_ENV).rls, null);
  });

  it('takes the defaults for host and unknown_keys, and is frozen', () => {
    const c = validateConfig({ pools: POOLS, rls: { port: 8081 } }, NO_ENV);
    assert.deepEqual(c.rls, { host: '127.0.0.1', port: 8081, unknown_keys: 'allow' });
    assert.ok(Object.isFrozen(c.rls));
  });

  it('keeps what is given', () => {
    const c = validateConfig({ pools: POOLS, rls: { host: '0.0.0.0', port: 0, unknown_keys: 'deny' } }, NO_ENV);
    assert.deepEqual(c.rls, { host: '0.0.0.0', port: 0, unknown_keys: 'deny' });
  });

  it('needs a port', () => {
    assert.deepEqual(errorsOf({}), ['rls.port: expected an integer from 0 to 65535, found nothing (the field is required)']);
  });

  it('names each wrong field by its path', () => {
    assert.deepEqual(errorsOf({ port: 70000, unknown_keys: 'block', host: '' }), [
      'rls.host: expected a non-empty string, found ""',
      'rls.port: expected an integer from 0 to 65535, found 70000',
      'rls.unknown_keys: expected one of allow, deny, found "block"',
    ]);
    assert.deepEqual(errorsOf('8081'), ['rls: expected an object, found "8081"']);
  });

  it('catches a misspelled key', () => {
    const errors = errorsOf({ port: 8081, unknown_key: 'deny' });
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^rls\.unknown_key: expected one of the keys host, port, unknown_keys, found unknown key "unknown_key"; did you mean "unknown_keys"\?$/);
  });

  it('a reload that changes host or port (or adds the section) needs a restart; unknown_keys applies live', () => {
    const at = (rls: unknown) => validateConfig({ pools: POOLS, rls }, NO_ENV);
    assert.equal(restartNeeded(at({ port: 8081 }), at({ port: 8082 })), 'changing rls.host/port needs a restart');
    assert.equal(restartNeeded(at(undefined), at({ port: 8081 })), 'changing rls.host/port needs a restart');
    assert.equal(restartNeeded(at({ port: 8081 }), at({ port: 8081, unknown_keys: 'deny' })), null);
  });
});
