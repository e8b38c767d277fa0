#!/usr/bin/env node
// `node .ci/install-client.mjs TARBALL DIR [--offline]`: installs the packed
// client SDK (from `npm run pack:client`) into a new project in DIR with npm,
// as a service would, so that plain `node` scripts in DIR can import it.
//
// Two ways, because a test suite must not depend on the network:
// - default: `npm install TARBALL`; npm resolves msgpackr and ws from the
//   registry (what a user gets; the CI step uses it).
// - --offline: DIR gets a package-lock.json whose entries for msgpackr, ws
//   and what they pull in are copied from this repository's lockfile (same
//   versions, same integrity), and `npm ci --offline` installs from the npm
//   cache alone. `npm ci` of this repository has put exactly those tarballs
//   in the cache, so this works on a fresh CI machine without asking the
//   registry anything; `npm install --offline` would not, as it needs the
//   registry's package documents, which `npm ci` does not cache. A missing
//   tarball fails loudly (ENOTCACHED), never silently.
//
// Plain Node (no tsx). Prints the installed package's directory last.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NPM_ENV = { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' };

function npm(dir, args) {
  try {
    execFileSync('npm', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: NPM_ENV, encoding: 'utf8' });
  } catch (err) {
    throw new Error(`npm ${args.join(' ')} failed in ${dir}:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

/** The package.json inside a packed tarball. */
function tarballManifest(tarball) {
  return JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
}

/**
 * The repository lockfile's entries for `deps` and everything they depend on
 * (optional dependencies included; npm skips those for other platforms).
 * A package reached only through optional edges is marked optional.
 */
function lockClosure(deps) {
  const repoLock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const out = {};
  const required = new Set();
  const visit = (name, optional) => {
    const path = `node_modules/${name}`;
    const entry = repoLock.packages[path];
    if (!entry) throw new Error(`package-lock.json has no top-level ${path}`);
    if (!optional) required.add(path);
    if (path in out) {
      if (!optional && out[path].optional) visitDeps(entry, false); // now reached by a required edge
      return;
    }
    out[path] = { ...entry };
    visitDeps(entry, optional);
  };
  const visitDeps = (entry, optional) => {
    for (const d of Object.keys(entry.dependencies ?? {})) visit(d, optional);
    for (const d of Object.keys(entry.optionalDependencies ?? {})) visit(d, true);
  };
  for (const d of deps) visit(d, false);
  for (const [path, entry] of Object.entries(out)) {
    if (required.has(path)) delete entry.optional;
    else entry.optional = true;
  }
  return out;
}

function offlineProject(dir, file, manifest) {
  const tarball = readFileSync(join(dir, file));
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
  const spec = `file:${file}`;
  const root = { name: 'tpsd-client-check', version: '1.0.0', private: true, dependencies: { [manifest.name]: spec } };
  const lock = {
    name: root.name,
    version: root.version,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: root.name, version: root.version, dependencies: root.dependencies },
      [`node_modules/${manifest.name}`]: {
        version: manifest.version,
        resolved: spec,
        integrity,
        license: manifest.license,
        dependencies: manifest.dependencies,
        engines: manifest.engines,
      },
      ...lockClosure(Object.keys(manifest.dependencies ?? {})),
    },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(root, null, 2)}\n`);
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
}

function main() {
  const argv = process.argv.slice(2);
  const offline = argv.includes('--offline');
  const [tarballArg, dirArg] = argv.filter((a) => a !== '--offline');
  if (!tarballArg || !dirArg) {
    console.error('usage: node .ci/install-client.mjs TARBALL DIR [--offline]');
    process.exit(2);
  }
  const dir = resolve(dirArg);
  mkdirSync(dir, { recursive: true });
  const file = basename(tarballArg);
  copyFileSync(resolve(tarballArg), join(dir, file));
  const manifest = tarballManifest(join(dir, file));
  if (offline) {
    offlineProject(dir, file, manifest);
    npm(dir, ['ci', '--offline', '--ignore-scripts', '--no-progress']);
  } else {
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'tpsd-client-check', version: '1.0.0', private: true }, null, 2)}\n`);
    npm(dir, ['install', '--no-progress', `./${file}`]);
  }
  console.log(join(dir, 'node_modules', manifest.name));
}

try {
  main();
} catch (err) {
  console.error(`install-client: ${err.message}`);
  process.exit(1);
}
