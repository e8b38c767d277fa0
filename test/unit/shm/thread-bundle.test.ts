// A thread entry bundled by shm/thread-bundle.ts runs in a worker started
// through THREAD_BOOTSTRAP without a TypeScript loader (none of the ~30 MiB
// module hooks thread tsx's register() starts), with its sources'
// import.meta.url and its packages as they were; what cannot be bundled
// falls back to the .ts entry with the reason. Stack traces name the sources
// (the bundle carries a source map), not the bundle in its temp directory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { bundleThreadEntry } from '../../../src/shm/thread-bundle.ts';
import { THREAD_BOOTSTRAP } from '../../../src/shm/threads.ts';

const FIXTURES = new URL('../../fixtures/thread-bundle/', import.meta.url);
const ENTRY = new URL('entry.ts', FIXTURES).href;
const PROBE = new URL('probe.ts', FIXTURES).href;

interface Seen { sibling: string; roundTrip: unknown; probe: string; url: string; stack: string }

function run(entry: string): Promise<Seen> {
  const w = new Worker(THREAD_BOOTSTRAP, { workerData: { entry, probe: PROBE } });
  return new Promise((resolve, reject) => {
    w.once('message', (m: Seen) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  });
}

test('a bundled entry runs without a TypeScript loader, its import.meta.url and packages intact', async () => {
  const b = await bundleThreadEntry(ENTRY);
  assert.equal(b.error, null);
  assert.match(b.entry, /^file:.*\/entry-\w+\.mjs$/);
  assert.equal(statSync(dirname(fileURLToPath(b.entry))).mode & 0o077, 0, 'a directory no other user can write to or read');
  const seen = await run(b.entry);
  assert.equal(seen.sibling, 'next to helper.ts');
  assert.deepEqual(seen.roundTrip, { n: 7 });
  assert.equal(seen.url, ENTRY);
  assert.equal(seen.probe, 'ERR_UNKNOWN_FILE_EXTENSION', 'no TypeScript loader in a thread running a bundle');
  assert.match(seen.stack, /thread-bundle\/helper\.ts:\d+/, `a stack names the source file, not the bundle: ${seen.stack}`);
  assert.equal((await bundleThreadEntry(ENTRY)).entry, b.entry, 'one bundle per entry per process');
});

test('the .ts entry still runs under the loader', async () => {
  const seen = await run(ENTRY);
  assert.equal(seen.probe, 'imported');
  assert.equal(seen.sibling, 'next to helper.ts');
});

test('import.meta other than .url cannot be bundled: the .ts entry, with the reason', async () => {
  const dirname = new URL('dirname.ts', FIXTURES).href;
  const b = await bundleThreadEntry(dirname);
  assert.equal(b.entry, dirname);
  assert.match(String(b.error?.message), /import\.meta other than import\.meta\.url/);
});
