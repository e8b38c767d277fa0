// RELEASE as the SDK sends it since outcome 3 and upstream hints exist
// (PROTOCOL.md additions): `[2, id, lease, outcome, latency_us, hints?]`,
// checked byte for byte against a real daemon (port 0, two I/O threads).
// The daemon accepts a hints map (unknown fields ignored), refuses a hint of
// the wrong type with BAD_REQUEST and changes nothing then, and counts
// outcome 3 (timed out) as a timeout. What the controller makes of the
// hints is tested elsewhere (upstream-hints, hint integration); the hints
// here say what the pool is configured for, so they leave it as it is.
// Then the SDK end to end: withPermit around a real fetch to a small HTTP
// upstream (the one stand-in: the upstream API is the external boundary)
// that answers 429 with rate-limit headers.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, type TpsdClient } from '../../src/client/index.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { ErrorCode } from '../../src/protocol/errors.ts';
import { OUTCOME_TIMED_OUT } from '../../src/protocol/opcodes.ts';
import { RawClient, httpGet, startTestDaemon } from '../fixtures/daemon.ts';

const POOLS = [{
  name: 'api', capacity_tps: 1000, burst: 100,
  services: [{ name: 'one', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 1 }],
}];
const HINTS = { limit: 1000, remaining: 400, reset_ms: 300, window_ms: 1000, retry_after_ms: 1500 };

async function releasesTotal(port: number, outcome: string): Promise<number> {
  const { body } = await httpGet(port, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith('tpsd_releases_total{key="api/one"') && l.includes(`outcome="${outcome}"`));
  assert.ok(line, `no tpsd_releases_total line for outcome ${outcome}`);
  return Number(line.split(' ').pop());
}

describe('RELEASE with hints and outcome 3 against the daemon', () => {
  let daemon: Daemon;
  let raw: RawClient;
  let nextId = 1;
  before(async () => {
    daemon = await startTestDaemon({ pools: POOLS });
    raw = await RawClient.open(daemon.port);
  });
  after(async () => {
    raw.close();
    await daemon.stop();
  });

  /** A lease on api/one (concurrency 1: the next acquire is denied until it is released). */
  async function lease(): Promise<number> {
    const reply = await raw.call([1, nextId++, 'api/one', 1, 0]);
    assert.equal(reply[2], 0, `acquire granted: ${JSON.stringify(reply)}`);
    return reply[3] as number;
  }
  async function slotFree(): Promise<boolean> {
    const reply = await raw.call([1, nextId++, 'api/one', 1, 0]);
    if (reply[2] !== 0) return false;
    await raw.call([2, nextId++, reply[3], 0, 1]);
    return true;
  }

  it('a RELEASE with a hints map (and fields it does not know) is answered OK and frees the slot', async () => {
    const l = await lease();
    assert.equal(await slotFree(), false, 'the slot is held');
    const id = nextId++;
    assert.deepEqual(await raw.call([2, id, l, 2, 1200, { ...HINTS, vendor_field: 'ignored', nested: { a: 1 } }]), [2, id, 0]);
    assert.equal(await slotFree(), true);
  });

  it('an empty hints map, and nil, mean no hints', async () => {
    for (const hints of [{}, null]) {
      const l = await lease();
      const id = nextId++;
      assert.deepEqual(await raw.call([2, id, l, 0, 10, hints]), [2, id, 0], JSON.stringify(hints));
    }
  });

  it('outcome 3 (timed out) is accepted and counted as a timeout', async () => {
    const before = await releasesTotal(daemon.port, 'timeout');
    const l = await lease();
    const id = nextId++;
    assert.deepEqual(await raw.call([2, id, l, OUTCOME_TIMED_OUT, 5_000_000]), [2, id, 0]);
    assert.equal(await releasesTotal(daemon.port, 'timeout'), before + 1);
    assert.equal(await slotFree(), true);
  });

  it('a hint of the wrong type is BAD_REQUEST and the lease stays held', async () => {
    const l = await lease();
    const bad: unknown[] = [
      'limit=100', [100, 40], 7, true,
      { limit: '100' }, { remaining: -1 }, { reset_ms: [3000] }, { window_ms: true }, { retry_after_ms: null }, { limit: Number.NaN },
    ];
    for (const hints of bad) {
      const id = nextId++;
      const reply = await raw.call([2, id, l, 0, 10, hints]);
      assert.equal(reply[2], ErrorCode.BAD_REQUEST, `hints ${JSON.stringify(hints)}: ${JSON.stringify(reply)}`);
      assert.match(String(reply[3]), /hints/);
    }
    raw.send([2, 0, l, 0, 10, { limit: 'x' }]); // no reply wanted: ignored the same way
    assert.equal(await slotFree(), false, 'no bad RELEASE freed the slot');
    const id = nextId++;
    assert.deepEqual(await raw.call([2, id, l, 0, 10]), [2, id, 0]);
    assert.equal(await slotFree(), true);
  });

  it('outcome 4 and a seventh element are still BAD_REQUEST', async () => {
    const l = await lease();
    for (const req of [[2, nextId++, l, 4, 10], [2, nextId++, l, 0, 10, {}, 1]]) {
      const reply = await raw.call(req);
      assert.equal(reply[2], ErrorCode.BAD_REQUEST, JSON.stringify(req));
    }
    const id = nextId++;
    assert.deepEqual(await raw.call([2, id, l, 0, 10]), [2, id, 0]);
  });
});

describe('withPermit around fetch, against the daemon', () => {
  let daemon: Daemon;
  let client: TpsdClient;
  let upstream: Server;
  let upstreamUrl = '';
  let answer429 = true;
  before(async () => {
    daemon = await startTestDaemon({ pools: POOLS });
    client = await connect(`ws://127.0.0.1:${daemon.port}`, { name: 'hints-test' });
    upstream = createServer((_req, res) => {
      if (answer429) res.writeHead(429, { 'Retry-After': '1', 'RateLimit-Limit': '100', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '1' });
      else res.writeHead(200, { 'X-RateLimit-Limit': '100', 'X-RateLimit-Remaining': '99' });
      res.end(answer429 ? 'slow down' : 'ok');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  });
  after(async () => {
    await client.close();
    await daemon.stop();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('a 429 the fetch resolved with is reported as throttled (with hints), and the slot is freed', async () => {
    const throttledBefore = await releasesTotal(daemon.port, 'throttled');
    const res = await client.withPermit('api/one', () => fetch(upstreamUrl));
    assert.equal(res.status, 429, 'withPermit returns the Response as it is');
    assert.equal(await res.text(), 'slow down');
    // RELEASE goes without a reply: wait until the daemon counted it.
    const deadline = Date.now() + 5000;
    while ((await releasesTotal(daemon.port, 'throttled')) < throttledBefore + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await releasesTotal(daemon.port, 'throttled'), throttledBefore + 1);
    // concurrency 1: a second call gets the slot only if the release (six elements, with hints) was accepted.
    answer429 = false;
    const ok = await client.withPermit('api/one', async () => (await fetch(upstreamUrl)).text(), { waitMs: 2000 });
    assert.equal(ok, 'ok');
  });
});
