// The SDK with a list of daemon URLs (a small shared fleet, docs/cluster.md):
// connect() takes the first daemon that answers; when the one in use goes
// away, the client reconnects to the next, and every acquire made meanwhile
// is answered (by a daemon or by the failure mode), none left hanging.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, type Permit, type TpsdClient } from '../../src/client/index.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { freePort } from '../fixtures/cli-daemon.ts';
import { startTestDaemon } from '../fixtures/daemon.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fastReconnect = { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0 };
const KEY = 'api/low';

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('SDK fail-over between daemons', () => {
  const daemons: Daemon[] = [];
  const clients: TpsdClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(daemons.map((d) => d.stop()));
  });

  it('connects to the first daemon that answers', async () => {
    const dead = `ws://127.0.0.1:${await freePort()}`;
    const d = await startTestDaemon();
    daemons.push(d);
    const client = await connect([dead, `ws://127.0.0.1:${d.port}`], { name: 'fleet', reconnect: fastReconnect });
    clients.push(client);
    assert.equal(client.connected, true);
    assert.equal(client.url, `ws://127.0.0.1:${d.port}/v1`);
    assert.equal((await client.acquire(KEY)).granted, true);
  });

  it('fails over to the next daemon when the one in use stops, answering every acquire', async () => {
    const a = await startTestDaemon();
    const b = await startTestDaemon();
    daemons.push(a, b);
    const client = await connect([`ws://127.0.0.1:${a.port}`, `ws://127.0.0.1:${b.port}`], { name: 'fleet', reconnect: fastReconnect });
    clients.push(client);
    assert.equal(client.url, `ws://127.0.0.1:${a.port}/v1`);
    let running = true;
    const answers: Permit[] = [];
    const loops = Array.from({ length: 8 }, async () => {
      while (running) {
        answers.push(await client.acquire(KEY, 1, { waitMs: 20 }));
        await sleep(2);
      }
    });
    await waitFor(() => answers.length > 50, 'acquires on a');
    await a.stop();
    await waitFor(() => client.connected && client.url === `ws://127.0.0.1:${b.port}/v1`, 'the client on b');
    const before = answers.length;
    await waitFor(() => answers.slice(before).filter((p) => p.granted && !p.local).length > 20, 'grants from b');
    running = false;
    await Promise.all(loops); // every acquire resolved: none hangs on the lost connection
    assert.ok(answers.every((p) => typeof p.granted === 'boolean'));
    const fromB = answers.slice(before).filter((p) => p.granted && p.lease !== 0);
    assert.ok(fromB.length > 20);
    for (const p of fromB) client.release(p.lease, 0, 1000);
  });

  it('takes one URL or a list, never an empty one', async () => {
    await assert.rejects(() => connect([]), TypeError);
    await assert.rejects(() => connect(['ws://127.0.0.1:1', 'not a url']), TypeError);
  });
});
