// esm-bundle.mjs as bin/tpsd.mjs uses it for the daemon's main thread: a
// plain `node` process (no TypeScript loader) imports the bundle of a .ts
// module, with source maps turned on as the launcher does, and the module's
// stack traces name the .ts file, not the bundle in its temp directory; its
// import.meta.url and files next to it are its own.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../fixtures/temp-dir.ts';
import { test } from 'node:test';

const ESM_BUNDLE = new URL('../../../src/shm/esm-bundle.mjs', import.meta.url).href;
const HELPER = new URL('../../fixtures/thread-bundle/helper.ts', import.meta.url).href;

const bundleOf = (helper: string) => `
  const { bundleEntry } = await import(${JSON.stringify(ESM_BUNDLE)});
  console.log(await bundleEntry(${JSON.stringify(helper)}));`;

test('a process killed before its exit handler leaves its bundle directory; the next one made removes it', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `${bundleOf(HELPER)}; setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => child.stdout.once('data', (b: Buffer) => resolve(b.toString().trim())));
  const killedDir = dirname(fileURLToPath(url));
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGKILL'); });
  assert.ok(existsSync(killedDir), 'SIGKILL skips the exit handler');
  // Left alone: a directory named with a live process's pid (this one), and a symlink named like a dead one's.
  const liveDir = join(tmpdir(), `tpsd-bundle-${process.pid}-test`);
  mkdirSync(liveDir, { recursive: true });
  const target = tempDir();
  const link = join(tmpdir(), `tpsd-bundle-${child.pid}-link`);
  symlinkSync(target, link);
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', bundleOf(HELPER)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(killedDir), `${killedDir} removed`);
    assert.ok(existsSync(liveDir) && existsSync(link) && existsSync(target));
    assert.ok(!existsSync(dirname(fileURLToPath(r.stdout.trim()))), 'and its own removed at exit');
  } finally {
    rmSync(liveDir, { recursive: true, force: true });
    rmSync(link, { force: true });
  }
});

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
  assert.match(seen.url, /\/tpsd-bundle-\d+-\w+\/helper-\w+\.mjs$/);
  assert.match(seen.stack, /fixtures\/thread-bundle\/helper\.ts:\d+/, seen.stack);
  assert.doesNotMatch(seen.stack, /helper-\w+\.mjs/);
  assert.equal(seen.sibling, 'next to helper.ts');
});
