import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PermitDeniedError, TpsdClientError, isUpstreamThrottle } from '../../../src/client/errors.ts';

test('upstream 429 is recognised in fetch, node and axios shaped errors', () => {
  assert.equal(isUpstreamThrottle({ status: 429 }), true);
  assert.equal(isUpstreamThrottle(Object.assign(new Error('x'), { statusCode: 429 })), true);
  assert.equal(isUpstreamThrottle({ response: { status: 429 } }), true);
});

test('anything else is not a 429', () => {
  for (const e of [null, undefined, 429, '429', new Error('429'), { status: 500 }, { status: '429' }, { response: null }, { response: { statusCode: 429 } }]) {
    assert.equal(isUpstreamThrottle(e), false, String(JSON.stringify(e)));
  }
});

test('PermitDeniedError carries the key and retryAfterMs', () => {
  const e = new PermitDeniedError('pool/svc', 120, true);
  assert.ok(e instanceof TpsdClientError && e instanceof Error);
  assert.equal(e.name, 'PermitDeniedError');
  assert.equal(e.key, 'pool/svc');
  assert.equal(e.retryAfterMs, 120);
  assert.equal(e.local, true);
  assert.match(e.message, /pool\/svc.*120 ms/);
});
