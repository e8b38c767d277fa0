// The `governance` section: absent means off (null), approve_above is a step
// ratio above 1, and every mistake is named by its path (a misspelled key
// with a suggestion).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';

const NO_ENV = {};
const POOLS = [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] }];

function errorsOf(governance: unknown): string[] {
  try {
    validateConfig({ pools: POOLS, governance }, NO_ENV);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.errors;
  }
  return assert.fail(`accepted governance ${JSON.stringify(governance)}`);
}

describe('config: governance', () => {
  it('is null (off) when absent or null', () => {
    assert.equal(validateConfig({ pools: POOLS }, NO_ENV).governance, null);
    assert.equal(validateConfig({ pools: POOLS, governance: null }, NO_ENV).governance, null);
  });

  it('keeps approve_above, frozen', () => {
    const c = validateConfig({ pools: POOLS, governance: { approve_above: 1.8 } }, NO_ENV);
    assert.deepEqual(c.governance, { approve_above: 1.8 });
    assert.ok(Object.isFrozen(c.governance));
  });

  it('needs approve_above, a number above 1', () => {
    assert.match(errorsOf({})[0], /^governance\.approve_above: expected a number above 1 .*found nothing/);
    assert.match(errorsOf({ approve_above: 1 })[0], /^governance\.approve_above: expected a number above 1/);
    assert.match(errorsOf({ approve_above: '2' })[0], /^governance\.approve_above: expected/);
    assert.match(errorsOf({ approve_above: 0.5 })[0], /^governance\.approve_above: .*found 0\.5/);
  });

  it('catches a misspelled key and a wrong type by path', () => {
    const errors = errorsOf({ aprove_above: 2 });
    assert.ok(errors.some((e) => /^governance\.aprove_above: .*unknown key.*did you mean "approve_above"\?/.test(e)), errors.join('\n'));
    assert.match(errorsOf(2)[0], /^governance: expected an object/);
    const root = (() => { try { validateConfig({ pools: POOLS, governence: { approve_above: 2 } }, NO_ENV); } catch (e) { return (e as ConfigError).errors; } return []; })();
    assert.ok(root.some((e) => /did you mean "governance"\?/.test(e)), root.join('\n'));
  });
});
