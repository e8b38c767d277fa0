// A service that starts while the daemon is down: connect() in each failure
// mode with nothing listening, then a real daemon comes up on that port
// (port chosen free, two I/O threads) and the client uses it.
// - 'closed' (the default): connect() rejects with ConnectError naming the url;
// - 'open': connect() resolves, acquires are granted locally until the
//   daemon is up;
// - 'local': connect() resolves, the local bucket at localRate decides.
// In every mode a HELLO the daemon refuses (a bad token) still rejects:
// that is a mistake to fix, not an outage to ride out.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectError, UnauthorizedError, connect, type ConnectOptions } from '../../src/client/index.ts';
import { freePort } from '../fixtures/cli-daemon.ts';
import { startTestDaemon } from '../fixtures/daemon.ts';

const POOLS = [{ name: 'api', capacity_tps: 1000, burst: 100, services: [{ name: 'svc', priority: 'HIGH', max_tps: 1000, burst: 100 }] }];
const fastReconnect = { initialDelayMs: 20, maxDelayMs: 100, factor: 2, jitter: 0 };

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** connect() with nothing on the port, then a daemon on it: the client must end up using the daemon. */
async function startsBeforeDaemon(options: ConnectOptions, whileDown: (acquire: () => Promise<{ granted: boolean; local?: boolean; lease: number }>) => Promise<void>): Promise<void> {
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  const errors: Error[] = [];
  const client = await connect(url, { ...options, reconnect: fastReconnect, timeoutMs: 2000, onError: (e) => errors.push(e) });
  try {
    assert.equal(client.connected, false);
    assert.ok(errors.length >= 1 && errors[0] instanceof ConnectError, `the failed first attempt is reported: ${errors.map(String).join('; ')}`);
    assert.ok(errors[0].message.includes(url));
    await whileDown(() => client.acquire('api/svc'));
    const daemon = await startTestDaemon({ pools: POOLS, listen: { host: '127.0.0.1', port } });
    try {
      await waitFor(() => client.connected);
      const p = await client.acquire('api/svc');
      assert.equal(p.granted, true);
      assert.equal(p.local, undefined, 'granted by the daemon');
      assert.notEqual(p.lease, 0);
      client.release(p.lease, 0, 10);
    } finally {
      await client.close();
      await daemon.stop();
    }
  } finally {
    await client.close();
  }
}

describe('connect() with the daemon down, in each failure mode', () => {
  it("'closed' rejects with ConnectError naming the url", async () => {
    const url = `ws://127.0.0.1:${await freePort()}`;
    await assert.rejects(connect(url, { timeoutMs: 2000 }), (e: unknown) => e instanceof ConnectError && e.message.includes(url));
    await assert.rejects(connect(url, { timeoutMs: 2000, failureMode: 'closed' }), ConnectError);
  });

  it("'open' resolves, grants locally, and uses the daemon once it is up", async () => {
    await startsBeforeDaemon({ failureMode: 'open' }, async (acquire) => {
      const p = await acquire();
      assert.deepEqual([p.granted, p.local, p.lease], [true, true, 0]);
    });
  });

  it("'local' resolves, the local bucket decides, and the daemon takes over once it is up", async () => {
    await startsBeforeDaemon({ failureMode: 'local', localRate: { tps: 1, burst: 2 } }, async (acquire) => {
      const got = [await acquire(), await acquire(), await acquire()];
      assert.deepEqual(got.map((p) => p.granted), [true, true, false]);
      assert.ok(got.every((p) => p.local === true && p.lease === 0));
    });
  });

  it('a HELLO the daemon refuses rejects in every mode', async () => {
    const daemon = await startTestDaemon({ pools: POOLS, auth: { tokens: [{ token: 'good-token' }] } });
    try {
      const url = `ws://127.0.0.1:${daemon.port}`;
      for (const mode of [{ failureMode: 'closed' }, { failureMode: 'open' }, { failureMode: 'local', localRate: { tps: 5 } }] as ConnectOptions[]) {
        await assert.rejects(connect(url, { ...mode, token: 'wrong-token', timeoutMs: 2000 }), UnauthorizedError, String(mode.failureMode));
      }
    } finally {
      await daemon.stop();
    }
  });
});
