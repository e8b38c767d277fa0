#!/usr/bin/env node
// CI step: the client SDK as a user gets it. Packs it (pack-client.mjs),
// installs the tarball into a new project in a temporary folder with npm
// (install-client.mjs; from the registry, or with --offline from the npm
// cache), starts a daemon on port 0, and runs plain-node scripts that load
// the SDK with `import` (client-smoke/smoke.mjs) and with `require`
// (client-smoke/smoke.cjs) and acquire, release, withPermit and STATUS
// through it (client-smoke/check.cjs). Then type-checks an ESM and a
// CommonJS consumer against the packed .d.ts, and stops the daemon with
// SIGTERM (it must exit 0).
//
// The daemon runs as `node bin/tpsd.mjs start` (what the installed `tpsd`
// command runs, the same as `npm run tpsd -- start`) so that SIGTERM reaches
// it directly, without npm and a shell in between.
//
// Plain Node (no tsx). Exit status 0 when everything passed.

import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SMOKE = join(ROOT, '.ci/client-smoke');
/** A key of config/default.json, the config the daemon starts with. */
const KEY = 'payments/checkout';
const START_TIMEOUT_MS = 60_000;

/** The environment of a plain `node`: no loader (tsx) inherited through NODE_OPTIONS. */
function plainEnv() {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

function run(args, cwd) {
  return execFileSync(process.execPath, args, { cwd, encoding: 'utf8', env: plainEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Starts the daemon; resolves with its port (read from its "listening" log line) and the process. */
function startDaemon(dataDir) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/tpsd.mjs'), 'start', '--port', '0', '--data', dataDir], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not listen within ${START_TIMEOUT_MS} ms:\n${log}`)), START_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      log += d;
      const m = /"port":(\d+)[^\n]*"msg":"listening/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the daemon exited (${code ?? signal}) before listening:\n${log}`));
    });
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, port, exited, log: () => log };
}

function typeCheck(app) {
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext',
      types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
    },
    files: ['types.mts', 'types.cts'],
  }, null, 2));
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  try {
    run([tsc, '-p', 'tsconfig.json'], app);
  } catch (err) {
    throw new Error(`the packed .d.ts do not type-check a consumer:\n${err.stdout ?? ''}`);
  }
}

async function main() {
  const offline = process.argv.includes('--offline');
  const work = mkdtempSync(join(tmpdir(), 'tpsd-client-smoke-'));
  let daemon = null;
  try {
    const tarball = run([join(ROOT, '.ci/pack-client.mjs'), '--out', work], ROOT).trim().split('\n').pop();
    const app = join(work, 'app');
    run([join(ROOT, '.ci/install-client.mjs'), tarball, app, ...(offline ? ['--offline'] : [])], ROOT);
    for (const f of readdirSync(SMOKE)) copyFileSync(join(SMOKE, f), join(app, f));
    daemon = startDaemon(join(work, 'data'));
    const url = `ws://127.0.0.1:${await daemon.port}`;
    for (const script of ['smoke.mjs', 'smoke.cjs']) {
      const out = run([script, url, KEY], app).trim().split('\n').pop();
      const result = JSON.parse(out);
      console.log(`client smoke (${result.format}): ok, ${result.resolved.replace(app, '.')}, server ${result.server}`);
    }
    typeCheck(app);
    console.log('client smoke: the packed .d.ts type-check an ESM and a CommonJS consumer');
    daemon.child.kill('SIGTERM');
    const { code, signal } = await daemon.exited;
    daemon = null;
    if (code !== 0) throw new Error(`the daemon exited with ${code ?? signal} on SIGTERM`);
    console.log(`client smoke: passed (${tarball.slice(work.length + 1)} installed ${offline ? 'from the npm cache' : 'from the registry'})`);
  } finally {
    if (daemon !== null) {
      daemon.child.kill('SIGKILL');
      console.error(daemon.log().slice(-4000));
    }
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`client smoke: FAILED: ${err.message}`);
  process.exit(1);
});
