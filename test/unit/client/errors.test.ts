import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PermitDeniedError, TpsdClientError, isUpstreamThrottle, isUpstreamTimeout } from '../../../src/client/errors.ts';

test('upstream 429 is recognised in fetch, node, axios and got shaped errors', () => {
  assert.equal(isUpstreamThrottle({ status: 429 }), true);
  assert.equal(isUpstreamThrottle(Object.assign(new Error('x'), { statusCode: 429 })), true);
  assert.equal(isUpstreamThrottle({ response: { status: 429 } }), true);
  assert.equal(isUpstreamThrottle({ response: { statusCode: 429 } }), true); // got's HTTPError
});

test('anything else is not a 429', () => {
  for (const e of [null, undefined, 429, '429', new Error('429'), { status: 500 }, { status: '429' }, { response: null }, { response: { statusCode: '429' } }]) {
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

test('an upstream timeout is recognised on the error or its cause; an abort is not one', () => {
  const fetchTimeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError'); // AbortSignal.timeout()
  const undici = new TypeError('fetch failed', { cause: Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }) });
  const node = Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
  const got = Object.assign(new Error('Timeout awaiting response'), { name: 'TimeoutError', code: 'ETIMEDOUT' });
  for (const e of [fetchTimeout, undici, node, got]) assert.equal(isUpstreamTimeout(e), true, String(e));
  const abort = new DOMException('This operation was aborted', 'AbortError');
  const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  for (const e of [abort, refused, null, 'ETIMEDOUT', { code: 42 }, new Error('timeout')]) assert.equal(isUpstreamTimeout(e), false, String(e));
});
