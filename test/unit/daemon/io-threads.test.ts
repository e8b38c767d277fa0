// IoThreads with stand-in threads: a thread that dies after it said
// 'listening' but while start() is still starting the others makes start()
// fail; onFatal (whose default stops the daemon, which does not exist yet)
// is not called (test/fixtures/dying-io-worker.ts). A thread busy when the
// stop comes bounds stop()'s wait, and is left to finish and exit by itself,
// never terminated (test/fixtures/stuck-io-worker.ts). Every thread views the
// main thread's key table instead of building its own, and is given the
// config without its services (test/fixtures/keys-io-worker.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/config/log.ts';
import { validateConfig } from '../../../src/config/schema.ts';
import { IoThreadExitedError } from '../../../src/daemon/errors.ts';
import { IoThreads, QUIESCE_WAIT_MS } from '../../../src/daemon/io-threads.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm } from '../../../src/shm/layout.ts';

const DYING_WORKER = new URL('../../fixtures/dying-io-worker.ts', import.meta.url).href;
const STUCK_WORKER = new URL('../../fixtures/stuck-io-worker.ts', import.meta.url).href;
const KEYS_WORKER = new URL('../../fixtures/keys-io-worker.ts', import.meta.url).href;

function threadsOf(entry: string, tickMs = 100) {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, tick_ms: tickMs, log: { level: 'silent' },
    pools: [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'LOW' }] }],
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const fatal: Error[] = [];
  const threads = new IoThreads({
    views: allocateShm(keys.size, 2), bucketCount: keys.size, config, port: 0, epochHrMs: 0, startedAtMs: 0,
    log: createLogger('silent'), onAdmin: () => ({ status: 0, body: null }), onFatal: (err) => { fatal.push(err); },
    policy: { mode: 'fair', running: 'fair', fallbackReason: null }, entry,
  });
  return { threads, fatal };
}

describe('IoThreads', () => {
  it("gives each thread the main thread's key table to view, and the config without services", async () => {
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, log: { level: 'silent' },
      pools: [{ name: 'p', capacity_tps: 100, services: [
        { name: 's', priority: 'LOW', endpoints: [{ name: 'e', max_tps: 5 }] },
        { name: 't', priority: 'HIGH', tenants: { tiers: [{ name: 'gold', priority: 'HIGH', tps: 7 }], default_tier: 'gold', max: 10 } },
      ] }],
    }, {});
    const keys = KeyIndex.fromConfig(config);
    const reports: unknown[] = [];
    const threads = new IoThreads({
      views: allocateShm(keys.size, 2), bucketCount: keys.size, keys: keys.shared(), config, port: 0, epochHrMs: 0, startedAtMs: 0,
      log: createLogger('silent'), onAdmin: (request) => { reports.push(request); return { status: 0, body: null }; }, onFatal: () => {},
      policy: { mode: 'fair', running: 'fair', fallbackReason: null }, entry: KEYS_WORKER,
    });
    await threads.start();
    await threads.stop();
    assert.equal(await threads.exited(5000), true);
    const found = ['p', 'p/s', 'p/s/e', 'p/t', 'p/t/~gold', 'nope'].map((k) => [k, keys.lookup(k), keys.find(k)]);
    assert.equal(keys.lookup('p/t/~gold'), -1, 'a tier is not acquirable');
    assert.deepEqual(reports, [0, 1].map(() => ({ shared: true, services: 0, found, specs: keys.specs.map((s) => ({ ...s })) })));
  });

  it('fails start() when a thread dies during it, without calling onFatal', async () => {
    const { threads, fatal } = threadsOf(DYING_WORKER);
    await assert.rejects(threads.start(), (err) => err instanceof IoThreadExitedError && err.thread === 0 && err.exitCode === 3 && !err.beforeListening);
    assert.deepEqual(fatal, [], 'onFatal is for threads that die after start');
    await threads.stop();
    assert.equal(await threads.exited(5000), true);
  });

  it('stops waiting for a busy thread after QUIESCE_WAIT_MS, and lets it finish and exit by itself', { timeout: 30_000 }, async () => {
    // Each stand-in spins tick_ms * 30, about QUIESCE_WAIT_MS + 3 s, after 'stop'.
    const { threads } = threadsOf(STUCK_WORKER, Math.round((QUIESCE_WAIT_MS + 3000) / 30));
    await threads.start();
    assert.equal(await threads.stop(), false, 'gave up waiting: the last tick can be written now');
    assert.equal(await threads.exited(10_000), true, 'the threads said stopped and exited by themselves');
  });
});
