import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeUrl, resolveOptions } from '../../../src/client/options.ts';

test('urls get the /v1 path when they have none', () => {
  assert.equal(normalizeUrl('ws://127.0.0.1:7070'), 'ws://127.0.0.1:7070/v1');
  assert.equal(normalizeUrl('ws://127.0.0.1:7070/'), 'ws://127.0.0.1:7070/v1');
  assert.equal(normalizeUrl('wss://tpsd.example/custom'), 'wss://tpsd.example/custom');
  assert.equal(normalizeUrl('http://localhost:7070'), 'ws://localhost:7070/v1');
  assert.throws(() => normalizeUrl('not a url'), /invalid daemon url/);
  assert.throws(() => normalizeUrl('ftp://x'), /ws:\/\//);
});

test('defaults', () => {
  const o = resolveOptions();
  assert.equal(o.timeoutMs, 5000);
  assert.equal(o.failureMode, 'closed');
  assert.deepEqual({ ...o.reconnect }, { initialDelayMs: 100, maxDelayMs: 5000, factor: 2, jitter: 0.2 });
  assert.equal(o.lazy, false);
  assert.ok(Object.isFrozen(o));
});

test('misspelled and invalid options are named', () => {
  assert.throws(() => resolveOptions({ timeoutMS: 5 } as never), /unknown option "timeoutMS"/);
  assert.throws(() => resolveOptions({ reconnect: { maxDelay: 5 } as never }), /reconnect\.maxDelay/);
  assert.throws(() => resolveOptions({ failureMode: 'sometimes' as never }), /failureMode/);
  assert.throws(() => resolveOptions({ failureMode: 'local' }), /localRate/);
  assert.throws(() => resolveOptions({ timeoutMs: 0 }), /timeoutMs/);
  assert.throws(() => resolveOptions({ reconnect: { jitter: 2 } }), /jitter/);
});
