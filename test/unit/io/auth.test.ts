// Token checks of src/io/auth.ts: a token's key prefixes match whole path
// segments (PROTOCOL.md "Auth scope"), and tokens are found by their secret.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { Authenticator, NO_PEER, keyAllowed, keyVisible } from '../../../src/io/auth.ts';
import { ManualClock } from '../../../src/shm/clock.ts';
import { FailureTable } from '../../../src/shm/failure-table.ts';
import { allocateShm } from '../../../src/shm/layout.ts';

function authWith(tokens: { token: string; keys?: string[]; admin?: boolean }[], extra: Record<string, unknown> = {}, failures: FailureTable | null = null): Authenticator {
  const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'LOW' }] }], auth: { tokens, ...extra } }, {});
  return new Authenticator(config.auth, failures);
}

describe('keyAllowed: prefixes on path-segment boundaries', () => {
  const auth = authWith([
    { token: 'bare', keys: ['pay'] }, { token: 'slash', keys: ['pay/'] }, { token: 'deep', keys: ['pay/checkout'] },
    { token: 'two', keys: ['ops/', 'pay/checkout/refund'] }, { token: 'all' },
  ]);
  const token = (secret: string) => {
    const t = auth.check(secret);
    assert.ok(t !== null, secret);
    return t;
  };

  for (const secret of ['bare', 'slash']) {
    it(`"${secret === 'bare' ? 'pay' : 'pay/'}" allows pay and every key below it, never payroll or pa`, () => {
      const t = token(secret);
      for (const key of ['pay', 'pay/checkout', 'pay/checkout/refund']) assert.equal(keyAllowed(t, key), true, key);
      for (const key of ['payroll', 'payroll/x', 'pa', 'pay2/x', 'pay-x', 'xpay', 'ops/pay', '']) assert.equal(keyAllowed(t, key), false, key);
    });
  }

  it('a deeper prefix allows its key and below, not its parent or siblings that share its letters', () => {
    const t = token('deep');
    for (const key of ['pay/checkout', 'pay/checkout/refund']) assert.equal(keyAllowed(t, key), true, key);
    for (const key of ['pay', 'pay/checkouts', 'pay/checkout2/x', 'pay/check']) assert.equal(keyAllowed(t, key), false, key);
  });

  it('any one of several prefixes allows a key', () => {
    const t = token('two');
    for (const key of ['ops', 'ops/a', 'pay/checkout/refund']) assert.equal(keyAllowed(t, key), true, key);
    for (const key of ['opsx', 'pay/checkout', 'pay/checkout/refunds']) assert.equal(keyAllowed(t, key), false, key);
  });

  it('no prefixes: every key', () => {
    const t = token('all');
    for (const key of ['pay', 'payroll/x', 'anything/at/all']) assert.equal(keyAllowed(t, key), true, key);
  });

  it('finds a token by its secret only', () => {
    assert.equal(auth.check('bare')?.keys[0], 'pay');
    for (const wrong of ['bar', 'bare ', '', 'x'.repeat(5000), undefined, 7, null]) assert.equal(auth.check(wrong), null);
  });
});

describe('keyVisible: what STATUS shows', () => {
  it('an admin token sees every key, another token the keys it may use', () => {
    const auth = authWith([{ token: 'adm', keys: ['ops'], admin: true }, { token: 'ops', keys: ['ops'] }]);
    assert.equal(keyVisible(auth.check('adm')!, 'payroll/x'), true);
    assert.equal(keyVisible(auth.check('ops')!, 'payroll/x'), false);
    assert.equal(keyVisible(auth.check('ops')!, 'ops/a'), true);
  });
});

describe('Authenticator: failures per address', () => {
  const setup = (limit: number) => {
    const clock = new ManualClock();
    const failures = new FailureTable(allocateShm(1, 1), clock);
    return { clock, auth: authWith([{ token: 't' }], { max_failures_per_minute: limit }, failures) };
  };

  it('blocks an address at max_failures_per_minute until its minute has passed', () => {
    const { auth, clock } = setup(3);
    const peer = auth.peerOf('203.0.113.9'), other = auth.peerOf('203.0.113.10');
    for (let i = 0; i < 2; i++) auth.countFailure(peer);
    assert.equal(auth.blocked(peer), false);
    auth.countFailure(peer);
    assert.equal(auth.blocked(peer), true);
    assert.equal(auth.blocked(other), false);
    clock.advance(61_500);
    assert.equal(auth.blocked(peer), false);
  });

  it('0 turns the limit off; an unknown address (NO_PEER) or no table counts nothing', () => {
    const off = setup(0).auth;
    const peer = off.peerOf('203.0.113.9');
    for (let i = 0; i < 50; i++) off.countFailure(peer);
    assert.equal(off.blocked(peer), false);
    const on = setup(1).auth;
    on.countFailure(NO_PEER);
    assert.equal(on.blocked(NO_PEER), false);
    const none = authWith([{ token: 't' }], { max_failures_per_minute: 1 });
    assert.equal(none.peerOf('203.0.113.9'), NO_PEER);
  });
});
