import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideWhileUnreachable, type FailureContext } from '../../../src/client/failure-mode.ts';
import { LocalLimiter } from '../../../src/client/local-bucket.ts';

const base: FailureContext = { mode: 'closed', key: 'p/s', tokens: 1, waitMs: 0, now: 0, untilReconnectMs: 250.4 };

test("'open' grants with lease 0, marked local", () => {
  const d = decideWhileUnreachable({ ...base, mode: 'open' });
  assert.deepEqual(d, { permit: { granted: true, lease: 0, remaining: 0, retryAfterMs: 0, local: true }, delayMs: 0 });
});

test("'closed' denies until the next reconnect attempt, at least 1 ms", () => {
  assert.deepEqual(decideWhileUnreachable(base).permit, { granted: false, lease: 0, remaining: 0, retryAfterMs: 251, local: true });
  assert.equal(decideWhileUnreachable({ ...base, untilReconnectMs: 0 }).permit.retryAfterMs, 1);
  assert.equal(decideWhileUnreachable({ ...base, untilReconnectMs: -20 }).permit.retryAfterMs, 1);
});

test("'local' lets the per-key bucket decide", () => {
  const limiter = new LocalLimiter({ tps: 10, burst: 2 });
  const ctx: FailureContext = { ...base, mode: 'local', limiter };
  assert.deepEqual(decideWhileUnreachable(ctx).permit, { granted: true, lease: 0, remaining: 1, retryAfterMs: 0, local: true });
  assert.equal(decideWhileUnreachable(ctx).permit.granted, true);
  const denied = decideWhileUnreachable(ctx);
  assert.equal(denied.permit.granted, false);
  assert.equal(denied.permit.retryAfterMs, 100);
  const waited = decideWhileUnreachable({ ...ctx, waitMs: 200 });
  assert.equal(waited.permit.granted, true);
  assert.equal(waited.delayMs, 100);
  assert.equal(decideWhileUnreachable({ ...ctx, key: 'p/other' }).permit.granted, true);
});

test("'local' without a limiter is a programming error", () => {
  assert.throws(() => decideWhileUnreachable({ ...base, mode: 'local' }), /localRate/);
});
