// The client against a fake daemon (a raw `ws` server): HELLO, batching,
// out-of-order replies, release, status, errors, connect failures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as WsWebSocket } from 'ws';
import { connect, TpsdClient } from '../../../src/client/client.ts';
import { CallTimeoutError, ClientClosedError, ConnectError, PermitDeniedError } from '../../../src/client/errors.ts';
import { OverloadedError, UnauthorizedError, UnknownKeyError } from '../../../src/protocol/errors.ts';
import { defaultHandler, sleep, startFakeDaemon, waitFor, type FakeDaemon } from './fake-daemon.ts';

async function withFake(fn: (fake: FakeDaemon) => Promise<void>): Promise<void> {
  const fake = await startFakeDaemon();
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

test('HELLO with token and name goes first; connect resolves after its reply', () => withFake(async (fake) => {
  const states: string[] = [];
  const client = await connect(fake.url, { token: 't0k', name: 'unit', onStateChange: (s) => states.push(s) });
  assert.equal(client.url, `${fake.url}/v1`);
  assert.equal(client.connected, true);
  assert.deepEqual(fake.messages[0], [[0, 1, { v: 1, token: 't0k', name: 'unit' }]]);
  assert.deepEqual(client.server, { v: 1, server: 'fake', tick_ms: 100 });
  await client.close();
  assert.deepEqual(states, ['connected', 'disconnected']);
  assert.equal(client.connected, false);
}));

test('calls made in one tick go out as one message; replies match by id in any order', () => withFake(async (fake) => {
  fake.reverse = true;
  fake.handler = (req) => (req[0] === 1 ? [[1, req[1], 0, 1000 + Number(req[3]), Number(req[3])]] : defaultHandler(req, undefined as never));
  const client = await connect(fake.url);
  const before = fake.messages.length;
  const permits = await Promise.all([1, 2, 3, 4, 5].map((n) => client.acquire('pool/svc', n)));
  assert.equal(fake.messages.length, before + 1, 'one message for five acquires');
  assert.equal(fake.messages[before].length, 5);
  assert.deepEqual(fake.messages[before].map((r) => r[0]), [1, 1, 1, 1, 1]);
  assert.deepEqual(permits.map((p) => p.lease), [1001, 1002, 1003, 1004, 1005]);
  assert.deepEqual(permits.map((p) => p.remaining), [1, 2, 3, 4, 5]);
  await client.close();
}));

test('a large batch is split below the message size limit', () => withFake(async (fake) => {
  const client = await connect(fake.url, { maxMessageBytes: 4096 });
  const before = fake.messages.length;
  await Promise.all(Array.from({ length: 200 }, (_, i) => client.acquire(`pool/${'k'.repeat(40)}${i}`)));
  const sent = fake.messages.slice(before);
  assert.ok(sent.length > 1, 'split into several messages');
  assert.equal(sent.reduce((n, m) => n + m.length, 0), 200);
  await client.close();
}));

test('denied and error replies', () => withFake(async (fake) => {
  fake.handler = (req) => {
    if (req[0] !== 1) return defaultHandler(req, undefined as never);
    return req[2] === 'nope' ? [[1, req[1], 17, 'unknown key nope']] : [[1, req[1], 1, 0, 250]];
  };
  const client = await connect(fake.url);
  assert.deepEqual(await client.acquire('pool/a'), { granted: false, lease: 0, remaining: 0, retryAfterMs: 250 });
  await assert.rejects(client.acquire('nope'), UnknownKeyError);
  await client.close();
}));

test('release is fire and forget with id 0, once per lease, never for lease 0', () => withFake(async (fake) => {
  const client = await connect(fake.url);
  const permit = await client.acquire('pool/a');
  assert.ok(permit.lease > 0);
  const before = fake.messages.length;
  assert.equal(client.release(permit.lease, 2, 1500.4), undefined);
  client.release(permit.lease, 0, 1); // second release of the same lease: dropped
  client.release(0, 0, 1);
  client.release(987654, 0, 1); // never granted on this connection: dropped
  await waitFor(() => fake.messages.length > before);
  await sleep(20);
  assert.deepEqual(fake.messages.slice(before), [[[2, 0, permit.lease, 2, 1500]]]);
  assert.throws(() => client.release(permit.lease, 4 as never, 1), /outcome/); // 3 is OUTCOME_TIMED_OUT
  await client.close();
}));

test('status returns the snapshot map', () => withFake(async (fake) => {
  const client = await connect(fake.url);
  assert.deepEqual(await client.status(), { keys: [], mode: 'static' });
  await client.close();
}));

test('a HELLO error rejects connect with the TpsdError', () => withFake(async (fake) => {
  fake.handler = (req) => [[req[0], req[1], 18, 'bad token']];
  await assert.rejects(connect(fake.url, { token: 'wrong' }), (e: unknown) => e instanceof UnauthorizedError && e.message === 'bad token');
}));

test('connect rejects with a ConnectError naming the url when nothing listens', async () => {
  const fake = await startFakeDaemon();
  const url = fake.url;
  await fake.close();
  await assert.rejects(connect(url, { timeoutMs: 1000 }), (e: unknown) => e instanceof ConnectError && e.message.includes(`${url}/v1`));
});

test('a lazy connect resolves at once and connects in the background', async () => {
  const fake = await startFakeDaemon();
  const client = await connect(fake.url, { lazy: true, failureMode: 'open' });
  assert.equal(client.connected, false);
  assert.equal((await client.acquire('pool/a')).local, true);
  await waitFor(() => client.connected);
  assert.equal((await client.acquire('pool/a')).local, undefined);
  await client.close();
  await fake.close();
});

test('a call without reply on a live connection rejects with CallTimeoutError', () => withFake(async (fake) => {
  fake.handler = (req) => (req[0] === 1 && req[2] === 'slow' ? [] : defaultHandler(req, undefined as never));
  const client = await connect(fake.url);
  const slow = client.acquire('slow', 1, { timeoutMs: 150 });
  // Keeps replies coming (the daemon is alive); the last of these may still be in flight at close().
  const keepAlive = setInterval(() => { client.acquire('pool/fast').catch(() => {}); }, 20);
  await assert.rejects(slow, CallTimeoutError);
  clearInterval(keepAlive);
  assert.equal(client.connected, true);
  await client.close();
}));

test('more outstanding calls than maxOutstanding are rejected', () => withFake(async (fake) => {
  fake.handler = (req) => (req[0] === 1 ? [] : defaultHandler(req, undefined as never));
  const client = await connect(fake.url, { maxOutstanding: 2, timeoutMs: 5000 });
  const a = client.acquire('pool/a');
  const b = client.acquire('pool/a');
  await assert.rejects(client.acquire('pool/a'), OverloadedError);
  assert.equal(client.outstanding, 2);
  const rejected = [assert.rejects(a, ClientClosedError), assert.rejects(b, ClientClosedError)];
  await client.close();
  await Promise.all(rejected);
  await assert.rejects(client.acquire('pool/a'), ClientClosedError);
}));

test('globalThis.WebSocket is used when present', () => withFake(async (fake) => {
  let constructed = 0;
  class Counting extends WsWebSocket {
    constructor(url: string) { super(url); constructed++; }
  }
  const g = globalThis as { WebSocket?: unknown };
  const saved = g.WebSocket;
  g.WebSocket = Counting;
  try {
    const client = await connect(fake.url);
    assert.equal(constructed, 1);
    await client.close();
  } finally {
    g.WebSocket = saved;
  }
}));

test('the constructor alone opens nothing', () => {
  const client = new TpsdClient('ws://127.0.0.1:1');
  assert.equal(client.connected, false);
  assert.equal(client.url, 'ws://127.0.0.1:1/v1');
});

test('withPermit releases with outcome 0 on success, 1 on error, 2 on an upstream 429', () => withFake(async (fake) => {
  const client = await connect(fake.url);
  assert.equal(await client.withPermit('pool/a', async () => { await sleep(5); return 'v'; }), 'v');
  await assert.rejects(client.withPermit('pool/a', () => { throw new Error('boom'); }), /boom/);
  await assert.rejects(client.withPermit('pool/a', () => { throw { response: { status: 429 } }; }));
  await sleep(30);
  const releases = fake.messages.flat().filter((r) => r[0] === 2);
  assert.deepEqual(releases.map((r) => [r[1], r[3]]), [[0, 0], [0, 1], [0, 2]]);
  assert.ok(Number(releases[0][4]) >= 4000, 'latency in microseconds');
  fake.handler = (req) => (req[0] === 1 ? [[1, req[1], 1, 0, 75]] : defaultHandler(req, undefined as never));
  let ran = false;
  await assert.rejects(client.withPermit('pool/a', () => { ran = true; }), (e: unknown) => e instanceof PermitDeniedError && e.retryAfterMs === 75);
  assert.equal(ran, false);
  await client.close();
}));
