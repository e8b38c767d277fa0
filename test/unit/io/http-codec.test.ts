// The HTTP/JSON translation (src/io/http-codec.ts): JSON bodies become the
// protocol's own requests unchanged (defaults only for absent fields, never
// a rule checked here), and every reply maps to PROTOCOL.md's status, body
// and headers; Retry-After is rounded up to whole seconds.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { answerOf, encodeCall, httpStatusOf, parseBody, replyOf, type HttpCall } from '../../../src/io/http-codec.ts';
import { writeDenied, writeError, writeGranted, writeReleased } from '../../../src/io/replies.ts';

function encode(call: HttpCall, body: Record<string, unknown>): unknown {
  const w = new MsgWriter();
  const problem = encodeCall(w, call, body);
  return problem ?? decodeAll(w.take())[0];
}

describe('http-codec: requests', () => {
  it('acquire: defaults tokens 1 and wait_ms 0 only when absent; values passed as they came', () => {
    assert.deepEqual(encode('acquire', { key: 'a/b' }), [1, 1, 'a/b', 1, 0]);
    assert.deepEqual(encode('acquire', { key: 'a/b', tokens: 3, wait_ms: 250, extra: true }), [1, 1, 'a/b', 3, 250]);
    assert.deepEqual(encode('acquire', { key: 'a/b', tokens: 0, wait_ms: -1 }), [1, 1, 'a/b', 0, -1]);
    assert.deepEqual(encode('acquire', { key: 'a/b', tokens: 1.5, wait_ms: '2' }), [1, 1, 'a/b', 1.5, '2']);
    assert.deepEqual(encode('acquire', { tokens: null }), [1, 1, null, null, 0]);
  });

  it('objects and arrays become nil (the handler refuses them), at any depth', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.deepEqual(encode('acquire', { key: { a: 1 }, tokens: deep }), [1, 1, null, null, 0]);
  });

  it('release: defaults outcome 0 and latency_us 0; hints checked by the RELEASE rules, their known fields forwarded', () => {
    assert.deepEqual(encode('release', { lease: 2 ** 52 + 3 }), [2, 1, 2 ** 52 + 3, 0, 0]);
    assert.deepEqual(encode('release', { lease: 5, outcome: 2, latency_us: 900, hints: { limit: 100, remaining: 0, x: 'ignored', deep: [[[1]]] } }),
      [2, 1, 5, 2, 900, { limit: 100, remaining: 0 }]);
    assert.deepEqual(encode('release', { lease: 5, hints: null }), [2, 1, 5, 0, 0]);
    assert.match(encode('release', { lease: 5, hints: { reset_ms: '5' } }) as string, /reset_ms is string/);
    assert.match(encode('release', { lease: 5, hints: { retry_after_ms: -1 } }) as string, /retry_after_ms is -1/);
    assert.match(encode('release', { lease: 5, hints: [1] }) as string, /hints are a map of numbers/);
  });

  it('a body must be a JSON object in UTF-8', () => {
    assert.deepEqual(parseBody(Buffer.from('{"key":"a"}')), { key: 'a' });
    for (const raw of ['', 'x', '[1]', '1', 'null', '"s"']) assert.equal(typeof parseBody(Buffer.from(raw)), 'string', raw);
    assert.match(parseBody(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])) as string, /not JSON/);
  });
});

describe('http-codec: replies', () => {
  it('replyOf reads the handler\'s reply frames as the general decoder does', () => {
    const frames: ((w: MsgWriter) => void)[] = [
      (w) => writeGranted(w, 1, 2 ** 40 + 7, 3), (w) => writeDenied(w, 1, 1200), (w) => writeReleased(w, 1),
      (w) => writeError(w, 1, 1, 17, 'no bucket with key "é/ü"'), (w) => writeError(w, 2, 1, 16, 'x'.repeat(300)),
      (w) => w.value([1, 1, 0, { odd: true }]),
    ];
    for (const f of frames) {
      const w = new MsgWriter();
      f(w);
      const bytes = w.take();
      assert.deepEqual(replyOf(bytes), decodeAll(bytes)[0]);
    }
  });

  it('granted, released, denied', () => {
    assert.deepEqual(answerOf([1, 1, 0, 77, 4], false), { status: '200 OK', body: '{"lease":77,"remaining":4}', retryAfterS: -1, challenge: false });
    assert.deepEqual(answerOf([2, 1, 0], true), { status: '200 OK', body: '{}', retryAfterS: -1, challenge: false });
    for (const [ms, s] of [[0, 0], [1, 1], [999, 1], [1000, 1], [1001, 2], [20_000, 20]]) {
      const a = answerOf([1, 1, 1, 0, ms], false);
      assert.equal(a.status, '429 Too Many Requests');
      assert.equal(a.body, `{"retry_after_ms":${ms}}`);
      assert.equal(a.retryAfterS, s);
    }
  });

  it('every error code has its status; 401 challenges; 503 says when to retry', () => {
    const cases: [number, boolean, string][] = [
      [ErrorCode.BAD_REQUEST, false, '400 Bad Request'], [ErrorCode.TOKENS_EXCEED_BURST, true, '400 Bad Request'],
      [ErrorCode.UNAUTHORIZED, false, '401 Unauthorized'], [ErrorCode.UNAUTHORIZED, true, '403 Forbidden'],
      [ErrorCode.UNKNOWN_KEY, true, '404 Not Found'], [ErrorCode.UNKNOWN_LEASE, false, '404 Not Found'],
      [ErrorCode.OVERLOADED, true, '503 Service Unavailable'], [ErrorCode.SHUTTING_DOWN, false, '503 Service Unavailable'],
    ];
    for (const [code, hadToken, status] of cases) {
      const a = answerOf([1, 1, code, 'why'], hadToken);
      assert.equal(a.status, status, `code ${code}`);
      assert.deepEqual(Object.keys(JSON.parse(a.body)), ['code', 'error', 'message']);
      assert.equal(JSON.parse(a.body).code, code);
      assert.equal(a.challenge, status.startsWith('401'));
      assert.equal(a.retryAfterS, status.startsWith('503') ? 1 : -1);
    }
    assert.equal(JSON.parse(answerOf([1, 1, ErrorCode.UNKNOWN_KEY, 'm'], false).body).error, 'UNKNOWN_KEY');
    assert.equal(httpStatusOf(99, false), 500);
    assert.equal(answerOf(null, false).status, '500 Internal Server Error');
  });
});
