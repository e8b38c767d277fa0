// Failure modes and reconnect, against a fake daemon that goes away.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../../src/client/client.ts';
import { DisconnectedError } from '../../../src/client/errors.ts';
import { defaultHandler, sleep, startFakeDaemon, waitFor } from './fake-daemon.ts';

const fastReconnect = { initialDelayMs: 50, maxDelayMs: 200, factor: 2, jitter: 0 };

test("'open': pending and new acquires are granted locally when the connection drops", async () => {
  const fake = await startFakeDaemon();
  fake.handler = (req) => (req[0] === 1 ? [] : defaultHandler(req, undefined as never));
  const client = await connect(fake.url, { failureMode: 'open', reconnect: fastReconnect });
  const pending = client.acquire('pool/a', 1, { waitMs: 5000 });
  await sleep(20);
  await fake.close();
  assert.deepEqual(await pending, { granted: true, lease: 0, remaining: 0, retryAfterMs: 0, local: true });
  assert.equal(client.connected, false);
  assert.equal((await client.acquire('pool/a')).granted, true);
  await assert.rejects(client.status(), DisconnectedError);
  await client.close();
});

test("'closed': denied with retryAfterMs until the next reconnect attempt", async () => {
  const fake = await startFakeDaemon();
  const client = await connect(fake.url, { reconnect: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2, jitter: 0 } });
  fake.dropAll();
  await waitFor(() => !client.connected);
  const p = await client.acquire('pool/a');
  assert.equal(p.granted, false);
  assert.equal(p.local, true);
  assert.ok(p.retryAfterMs >= 1 && p.retryAfterMs <= 300, `retryAfterMs ${p.retryAfterMs}`);
  await client.close();
  await fake.close();
});

test("'local': a per-key bucket at localRate decides", async () => {
  const fake = await startFakeDaemon();
  const url = fake.url;
  await fake.close();
  const client = await connect(url, { lazy: true, failureMode: 'local', localRate: { tps: 20, burst: 2 }, reconnect: fastReconnect });
  const got = await Promise.all([1, 2, 3].map(() => client.acquire('pool/a')));
  assert.deepEqual(got.map((p) => p.granted), [true, true, false]);
  assert.ok(got.every((p) => p.local === true && p.lease === 0));
  assert.equal(got[2].retryAfterMs, 50);
  const t0 = performance.now();
  const waited = await client.acquire('pool/a', 1, { waitMs: 500 });
  assert.equal(waited.granted, true);
  assert.ok(performance.now() - t0 >= 40, 'the local grant waited for its token');
  assert.equal((await client.acquire('pool/b')).granted, true);
  await client.close();
});

test('a daemon that stops answering is treated as unreachable at the call timeout', async () => {
  const fake = await startFakeDaemon();
  const client = await connect(fake.url, { failureMode: 'open', reconnect: fastReconnect });
  fake.handler = () => [];
  const p = await client.acquire('pool/a', 1, { timeoutMs: 100 });
  assert.equal(p.local, true);
  assert.equal(p.granted, true);
  fake.handler = defaultHandler;
  await waitFor(() => client.connected); // reconnected to the same (now answering) fake
  assert.equal((await client.acquire('pool/a')).local, undefined);
  await client.close();
  await fake.close();
});

test('reconnects with backoff when a daemon comes up on the same port, and says HELLO again', async () => {
  const first = await startFakeDaemon();
  const port = first.port;
  const states: string[] = [];
  const errors: Error[] = [];
  const client = await connect(first.url, { reconnect: fastReconnect, token: 'tk', onStateChange: (s) => states.push(s) });
  client.on('error', (e) => errors.push(e));
  const lease = (await client.acquire('pool/a')).lease;
  await first.close();
  await waitFor(() => !client.connected);
  await sleep(300); // a few failed attempts
  assert.ok(errors.length >= 1, 'failed attempts are reported');
  const second = await startFakeDaemon(port);
  await waitFor(() => client.connected, 3000);
  assert.deepEqual(second.messages[0], [[0, 1, { v: 1, token: 'tk' }]]);
  assert.deepEqual(states, ['connected', 'disconnected', 'connected']);
  const before = second.messages.length;
  client.release(lease, 0, 10); // granted by the old connection: not sent to the new daemon
  await client.status();
  assert.deepEqual(second.messages.slice(before), [[[3, 2]]]);
  await client.close();
  await second.close();
});

test('close() while reconnecting stops for good', async () => {
  const fake = await startFakeDaemon();
  const client = await connect(fake.url, { reconnect: fastReconnect });
  await fake.close();
  await waitFor(() => !client.connected);
  await client.close();
  const again = await startFakeDaemon(fake.port);
  await sleep(300);
  assert.equal(again.messages.length, 0);
  assert.equal(client.connected, false);
  await again.close();
});
