// The client SDK as its own package: `npm run pack:client` writes
// tpsd-client-VERSION.tgz (compiled ESM + CommonJS + .d.ts, depending only on
// msgpackr and ws) and prints its path last; npm installs it into a new
// project; plain node (no tsx) loads it with `import` and with `require`
// and uses it against a real daemon on port 0; a TypeScript consumer of
// each kind type-checks against its .d.ts. The repository's own
// `tpsd/client` export (the TypeScript sources) keeps working.
//
// The install is `npm ci --offline` from a lockfile made of this
// repository's (.ci/install-client.mjs --offline): it needs only the npm
// cache that `npm ci` of this repository filled, never the registry, so the
// suite has no network step. The CI step (.ci/client-smoke.mjs) installs
// from the registry, as a user does.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { httpGet, startTestDaemon, tempDir } from '../fixtures/daemon.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const REPO = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
const KEY = 'api/low';

/** A plain node's environment: nothing (no tsx) inherited through NODE_OPTIONS. */
function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

async function throttledReleases(port: number): Promise<number> {
  const { body } = await httpGet(port, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`tpsd_releases_total{key="${KEY}"`) && l.includes('outcome="throttled"'));
  return Number(line?.split(' ').pop());
}

describe('the packed client SDK from plain node', () => {
  const work = tempDir('tpsd-client-package-');
  const app = join(work, 'app');
  let tarball = '';
  let daemon: Daemon;

  before(async () => {
    const packed = await run('npm', ['run', '--silent', 'pack:client', '--', '--out', work], { cwd: ROOT });
    tarball = packed.stdout.trim().split('\n').pop()!;
    await run(process.execPath, [join(ROOT, '.ci/install-client.mjs'), tarball, app, '--offline'], { cwd: ROOT, env: plainEnv() });
    for (const f of readdirSync(join(ROOT, '.ci/client-smoke'))) copyFileSync(join(ROOT, '.ci/client-smoke', f), join(app, f));
    daemon = await startTestDaemon();
  });
  after(async () => {
    await daemon?.stop();
  });

  it('pack:client prints the path of tpsd-client-VERSION.tgz last; the package holds compiled code only and depends on msgpackr and ws', async () => {
    assert.equal(tarball, join(work, `tpsd-client-${REPO.version}.tgz`));
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
    assert.ok(files.includes('dist/esm/client/index.js') && files.includes('dist/cjs/client/index.js'));
    assert.ok(files.includes('dist/esm/client/index.d.ts') && files.includes('dist/cjs/client/index.d.ts'));
    const stray = files.filter((f) => !(f === 'package.json' || f === 'README.md' || /^dist\/(esm|cjs)\/(client|protocol)\/[\w-]+\.(js|d\.ts)$/.test(f) || f === 'dist/cjs/package.json'));
    assert.deepEqual(stray, []);
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules/tpsd-client/package.json'), 'utf8'));
    assert.equal(manifest.version, REPO.version);
    assert.deepEqual(manifest.dependencies, { msgpackr: REPO.dependencies.msgpackr, ws: REPO.dependencies.ws });
    const dts = readFileSync(join(app, 'node_modules/tpsd-client/dist/esm/client/index.d.ts'), 'utf8');
    assert.doesNotMatch(dts, /from '\.[^']*\.ts'/, 'declarations import .js paths');
  });

  it('loads with import and with require in plain node and works against the daemon', async () => {
    const url = `ws://127.0.0.1:${daemon.port}`;
    const before = await throttledReleases(daemon.port);
    for (const [script, dist] of [['smoke.mjs', 'dist/esm/'], ['smoke.cjs', 'dist/cjs/']]) {
      const { stdout } = await run(process.execPath, [script, url, KEY], { cwd: app, env: plainEnv() });
      const result = JSON.parse(stdout.trim().split('\n').pop()!);
      assert.equal(result.format, script === 'smoke.mjs' ? 'esm' : 'cjs');
      assert.ok(result.resolved.includes(`node_modules/tpsd-client/${dist}`), result.resolved);
      assert.ok(result.lease > 0);
      assert.equal(result.unknownKeyCode, 17);
    }
    // Each script's withPermit returned a 429 response: the daemon counted both as throttled.
    const deadline = Date.now() + 5000;
    while ((await throttledReleases(daemon.port)) < before + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await throttledReleases(daemon.port), before + 2);
  });

  it('its .d.ts type-check an ESM and a CommonJS TypeScript consumer', async () => {
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext',
        types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      files: ['types.mts', 'types.cts'],
    }));
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app });
  });

  it("the repository's own tpsd/client export still gives the TypeScript sources", async () => {
    const sdk = await import('tpsd/client');
    assert.equal(typeof sdk.connect, 'function');
    assert.equal(sdk.OUTCOME_TIMED_OUT, 3);
    assert.equal(import.meta.resolve('tpsd/client'), new URL('src/client/index.ts', `file://${ROOT}`).href);
  });
});
