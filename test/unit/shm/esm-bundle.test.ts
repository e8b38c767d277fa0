// esm-bundle.mjs as bin/tpsd.mjs uses it for the daemon's main thread: a
// plain `node` process (no TypeScript loader) imports the bundle of a .ts
// module, with source maps turned on as the launcher does, and the module's
// stack traces name the .ts file, not the bundle in its temp directory; its
// import.meta.url and files next to it are its own.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const ESM_BUNDLE = new URL('../../../src/shm/esm-bundle.mjs', import.meta.url).href;
const HELPER = new URL('../../fixtures/thread-bundle/helper.ts', import.meta.url).href;

test('a bundled module in a process without a loader: stack traces name its .ts file', () => {
  const script = `
    const { bundleEntry } = await import(${JSON.stringify(ESM_BUNDLE)});
    const url = await bundleEntry(${JSON.stringify(HELPER)});
    process.setSourceMapsEnabled(true);
    const m = await import(url);
    console.log(JSON.stringify({ url, stack: m.errorStack(), sibling: m.siblingText() }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stdout) as { url: string; stack: string; sibling: string };
  assert.match(seen.url, /\/tpsd-bundle-\w+\/helper-\w+\.mjs$/);
  assert.match(seen.stack, /fixtures\/thread-bundle\/helper\.ts:\d+/, seen.stack);
  assert.doesNotMatch(seen.stack, /helper-\w+\.mjs/);
  assert.equal(seen.sibling, 'next to helper.ts');
});
