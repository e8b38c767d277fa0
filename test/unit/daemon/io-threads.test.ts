// IoThreads with stand-in threads (test/fixtures/dying-io-worker.ts): a thread
// that dies after it said 'listening' but while start() is still starting
// the others makes start() fail; onFatal (whose default stops the daemon,
// which does not exist yet) is not called.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/config/log.ts';
import { validateConfig } from '../../../src/config/schema.ts';
import { IoThreadExitedError } from '../../../src/daemon/errors.ts';
import { IoThreads } from '../../../src/daemon/io-threads.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm } from '../../../src/shm/layout.ts';

const DYING_WORKER = new URL('../../fixtures/dying-io-worker.ts', import.meta.url).href;

describe('IoThreads', () => {
  it('fails start() when a thread dies during it, without calling onFatal', async () => {
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, log: { level: 'silent' },
      pools: [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'LOW' }] }],
    }, {});
    const keys = KeyIndex.fromConfig(config);
    const fatal: Error[] = [];
    const threads = new IoThreads({
      views: allocateShm(keys.size, 2), bucketCount: keys.size, config, port: 0, epochHrMs: 0, startedAtMs: 0,
      log: createLogger('silent'), onAdmin: () => ({ status: 0, body: null }), onFatal: (err) => { fatal.push(err); },
      policy: { mode: 'fair', running: 'fair', fallbackReason: null }, entry: DYING_WORKER,
    });
    await assert.rejects(threads.start(), (err) => err instanceof IoThreadExitedError && err.thread === 0 && err.exitCode === 3 && !err.beforeListening);
    assert.deepEqual(fatal, [], 'onFatal is for threads that die after start');
    await threads.stop();
    assert.equal(await threads.exited(5000), true);
  });
});
