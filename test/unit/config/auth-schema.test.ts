// The `auth` section's additions of 2026-12 (CONFIG.md): max_failures_per_minute
// and metrics_open, with defaults, bounds and errors that name the path; and
// key prefixes refused when they could never match a key.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';
import { MAX_FAILURES_PER_MINUTE } from '../../../src/config/defaults.ts';

const POOLS = [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] }];
const TOKENS = [{ token: 't', keys: ['p/'] }];

function authOf(auth: Record<string, unknown>) {
  return validateConfig({ pools: POOLS, auth }, {}).auth;
}

function errorsOf(auth: Record<string, unknown>): string[] {
  try {
    validateConfig({ pools: POOLS, auth }, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.errors;
  }
  return assert.fail('expected a ConfigError');
}

describe('auth: max_failures_per_minute and metrics_open', () => {
  it('default to 20 and false', () => {
    const a = authOf({ tokens: TOKENS });
    assert.equal(a?.max_failures_per_minute, 20);
    assert.equal(a?.metrics_open, false);
  });

  it('accept the CONFIG.md example and the bounds', () => {
    const a = authOf({ tokens: TOKENS, max_failures_per_minute: 20, metrics_open: false });
    assert.deepEqual(a, { tokens: [{ token: 't', keys: ['p/'], admin: false }], max_failures_per_minute: 20, metrics_open: false });
    assert.equal(authOf({ tokens: TOKENS, max_failures_per_minute: 0 })?.max_failures_per_minute, 0);
    assert.equal(authOf({ tokens: TOKENS, max_failures_per_minute: MAX_FAILURES_PER_MINUTE })?.max_failures_per_minute, MAX_FAILURES_PER_MINUTE);
    assert.equal(authOf({ tokens: TOKENS, metrics_open: true })?.metrics_open, true);
  });

  const expected = `auth.max_failures_per_minute: expected an integer from 0 (no per-address limit) to ${MAX_FAILURES_PER_MINUTE}`;
  const cases: [string, Record<string, unknown>, string][] = [
    ['negative', { max_failures_per_minute: -1 }, `${expected}, found -1`],
    ['fraction', { max_failures_per_minute: 2.5 }, `${expected}, found 2.5`],
    ['too large', { max_failures_per_minute: MAX_FAILURES_PER_MINUTE + 1 }, `${expected}, found ${MAX_FAILURES_PER_MINUTE + 1}`],
    ['a string', { max_failures_per_minute: '20' }, `${expected}, found "20"`],
    ['metrics_open not a boolean', { metrics_open: 'yes' }, 'auth.metrics_open: expected true or false, found "yes"'],
    ['a misspelled key', { metrics_opne: true },
      'auth.metrics_opne: expected one of the keys tokens, max_failures_per_minute, metrics_open, found unknown key "metrics_opne"; did you mean "metrics_open"?'],
  ];
  for (const [kind, extra, message] of cases) {
    it(`refuses ${kind}, naming the path`, () => assert.deepEqual(errorsOf({ tokens: TOKENS, ...extra }), [message]));
  }
});

describe('auth: key prefixes', () => {
  it('accept whole segments with or without a trailing slash', () => {
    const a = authOf({ tokens: [{ token: 't', keys: ['p', 'p/', 'p/s', 'p/s/', 'a-b.c:d/x_y'] }] });
    assert.deepEqual(a?.tokens[0].keys, ['p', 'p/', 'p/s', 'p/s/', 'a-b.c:d/x_y']);
  });

  it('refuse a prefix that could never match a key', () => {
    const bad = ['/p', 'p//s', 'p//', '/', `${'k'.repeat(257)}`];
    const errors = errorsOf({ tokens: [{ token: 't', keys: bad }] });
    assert.equal(errors.length, bad.length);
    bad.forEach((_, i) => assert.match(errors[i], new RegExp(`^auth\\.tokens\\[0\\]\\.keys\\[${i}\\]: expected a key prefix of whole path segments`)));
  });
});
