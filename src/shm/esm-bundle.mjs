// One TypeScript entry's module graph as plain ES modules, so that the
// thread running it needs no TypeScript loader: tsx's register() starts a
// module hooks thread (a V8 isolate with the loader and the transpiled
// sources, about 30 MiB of RSS at 100 000 keys: docs/benchmarks.md, "idle
// keys") for each thread that registers it. Used for the daemon's main
// thread (bin/tpsd.mjs, `tpsd start`), for its I/O, telemetry and PPO
// inference threads, and for training's rollout workers (thread-bundle.ts).
//
// Plain JavaScript on purpose: bin/tpsd.mjs imports it before any TypeScript
// can be loaded. A bundle imports this file at its own path (a relative .mjs
// import stays external, below), so the launcher and the bundled daemon share
// one instance: one private directory and one bundle per entry per process.
//
// esbuild (tsx's own dependency: the transpiler tsx runs per file anyway,
// loaded from tsx's location) writes the bundle into a directory of its own
// under the OS temp dir (mkdtemp: mode 0700, so no other user can swap a file
// before it is imported; removed when the process exits). What the bundle
// keeps as it was: packages stay separate modules, imported by the absolute
// URL Node resolves from here (in the temp dir a bare name would not
// resolve); a relative import of a .mjs file too (plain JavaScript, run from
// its place); `import.meta.url` in each source becomes that source's own URL
// (files read next to a source, and workers started from a source's
// neighbour, are still found). Any other `import.meta` use makes the bundle
// fail. The bundle carries an inline source map (without the sources' text):
// whoever imports it turns source maps on (process.setSourceMapsEnabled), so
// stack traces name the .ts files and lines. A module imported with import()
// becomes a chunk of its own, loaded only if imported.
//
// Threads: called by the main thread only, before the threads it bundles for
// are spawned.

import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** @type {string | null} */
let bundleDir = null;
/** One bundle per entry per process (tests start many daemons). @type {Map<string, Promise<string>>} */
const made = new Map();
/** Bundles being made: esbuild's service process is stopped when none is (below). */
let building = 0;

/**
 * The file URL of a bundle of `tsEntry` (a file URL of a .ts module); rejects with the reason when it cannot be made.
 * @param {string} tsEntry
 * @returns {Promise<string>}
 */
export function bundleEntry(tsEntry) {
  let p = made.get(tsEntry);
  if (p === undefined) {
    p = buildOne(tsEntry);
    made.set(tsEntry, p);
  }
  return p;
}

/**
 * esbuild's API runs its work in a child process (`esbuild --service`) it
 * keeps until told to stop: some 10-30 MiB beside a daemon that bundles only
 * at start (and inside a systemd unit's MemoryMax). Stopped once no bundle is
 * being made; the next build starts it again.
 * @param {string} tsEntry
 */
async function buildOne(tsEntry) {
  const esbuild = loadEsbuild();
  building++;
  try {
    return await bundle(esbuild, tsEntry);
  } finally {
    if (--building === 0) await esbuild.stop();
  }
}

function loadEsbuild() {
  const fromTsx = createRequire(import.meta.resolve('tsx/esm/api'));
  return fromTsx('esbuild');
}

/** Bare package names and relative .mjs files -> their absolute URLs; `import.meta.url` -> each source's URL. */
const plugin = {
  name: 'tpsd-esm-bundle',
  /** @param {any} b esbuild's PluginBuild */
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (/** @type {{ path: string }} */ a) =>
      (isBuiltin(a.path) ? undefined : { path: import.meta.resolve(a.path), external: true }));
    b.onResolve({ filter: /^\.\.?\/.*\.mjs$/ }, (/** @type {{ path: string, resolveDir: string }} */ a) =>
      ({ path: pathToFileURL(join(a.resolveDir, a.path)).href, external: true }));
    b.onLoad({ filter: /\.ts$/ }, (/** @type {{ path: string }} */ a) => {
      const contents = readFileSync(a.path, 'utf8').replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(a.path).href));
      if (/\bimport\.meta\b/.test(contents)) throw new Error(`${a.path}: import.meta other than import.meta.url cannot be bundled`);
      return { contents, loader: 'ts' };
    });
  },
};

/**
 * @param {any} esbuild
 * @param {string} tsEntry
 */
async function bundle(esbuild, tsEntry) {
  const name = basename(tsEntry, '.ts');
  const out = await esbuild.build({
    entryPoints: [fileURLToPath(tsEntry)], bundle: true, splitting: true, write: false, outdir: ownDir(), entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]', outExtension: { '.js': '.mjs' }, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent',
    sourcemap: 'inline', sourcesContent: false,
    plugins: [plugin],
  });
  /** @type {string | null} */
  let entry = null;
  for (const f of out.outputFiles) {
    writeFileSync(f.path, f.text, { mode: 0o600 });
    if (basename(f.path).startsWith(`${name}-`)) entry = f.path;
  }
  if (entry === null) throw new Error(`bundling ${tsEntry}: no output named ${name}-*`);
  return pathToFileURL(entry).href;
}

/**
 * This process's directory for bundles: private (mkdtemp: mode 0700), named
 * with its pid, removed at exit. A process killed before its exit handler
 * (SIGKILL, abort) leaves its directory: the next one made here removes it.
 */
function ownDir() {
  if (bundleDir === null) {
    removeStaleDirs();
    const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    bundleDir = dir;
  }
  return bundleDir;
}

const DIR_PREFIX = 'tpsd-bundle-';

/**
 * Removes bundle directories whose process is gone: only directories (a
 * symlink of that name is left alone), only this user's, only those named
 * with a pid that no process has. A pid reused since is taken as alive and
 * its directory left for a later start.
 */
function removeStaleDirs() {
  let names;
  try { names = readdirSync(tmpdir()); } catch { return; }
  const uid = process.getuid?.();
  for (const name of names) {
    const pid = /^tpsd-bundle-(\d+)-/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || processExists(Number(pid))) continue;
    const path = join(tmpdir(), name);
    try {
      const st = lstatSync(path);
      if (st.isDirectory() && (uid === undefined || st.uid === uid)) rmSync(path, { recursive: true, force: true });
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
}

/** @param {number} pid */
function processExists(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return /** @type {NodeJS.ErrnoException} */ (e).code === 'EPERM'; }
}
