// A thread's TypeScript entry as one plain ES module, so that the thread
// needs no TypeScript loader. tsx's register() in a worker starts a module
// hooks thread of its own (a V8 isolate with the loader and the transpiled
// sources: about 30 MiB of RSS for each I/O thread and for the telemetry
// thread, measured at 100 000 keys: docs/benchmarks.md, "idle keys"). The
// main thread instead bundles the entry's module graph once per process with
// esbuild (tsx's own dependency, the transpiler tsx runs per file anyway),
// writes it into a directory of its own under the OS temp dir (made with
// mode 0700 by mkdtemp, so no other user can swap the file before a thread
// imports it; removed when the process exits), and the thread imports that
// file (thread-bootstrap.mjs registers no loader for a .mjs entry).
//
// What the bundle keeps as it was: packages stay separate modules, imported
// by the absolute URL Node resolves for this file (the bundle lives in the
// temp dir, where a bare name would not resolve); `import.meta.url` in each
// source becomes that source's own URL (files read next to a source are still
// found). Any other `import.meta` use makes the bundle fail. The bundle
// carries an inline source map (without the sources' text), and the thread
// turns source maps on, so stack traces in logs name the .ts files and lines,
// not a bundle in a temp directory that is gone once the process is. When the bundle
// cannot be made (esbuild missing, an unwritable temp dir, such a use), the
// thread runs its .ts entry under tsx as before: bundleThreadEntry() says why
// and the caller logs it; nothing else changes.
//
// Threads: main thread only, at start, before the threads are spawned.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface ThreadEntry {
  /** The URL the thread imports: the bundle, or the .ts entry itself when `error` is set. */
  readonly entry: string;
  /** Why the .ts entry is used (logged by the caller); null when bundled. */
  readonly error: Error | null;
}

/** The subset of esbuild's API used here (esbuild is tsx's dependency, loaded from tsx's location). */
interface EsbuildPlugin {
  name: string;
  setup(b: {
    onResolve(o: { filter: RegExp }, f: (a: { path: string }) => { path: string; external: boolean } | undefined): void;
    onLoad(o: { filter: RegExp }, f: (a: { path: string }) => { contents: string; loader: 'ts' }): void;
  }): void;
}
interface Esbuild {
  build(o: Record<string, unknown> & { plugins: EsbuildPlugin[] }): Promise<{ outputFiles: { path: string; text: string }[] }>;
}

let bundleDir: string | null = null;
/** One bundle per entry per process (tests start many daemons). */
const made = new Map<string, Promise<ThreadEntry>>();

/** `tsEntry` (a file URL of a .ts module) as a bundle's file URL; the .ts entry with the reason when that fails. */
export function bundleThreadEntry(tsEntry: string): Promise<ThreadEntry> {
  let p = made.get(tsEntry);
  if (p === undefined) {
    p = bundle(tsEntry).then((entry) => ({ entry, error: null }), (err: unknown) => ({ entry: tsEntry, error: err instanceof Error ? err : new Error(String(err)) }));
    made.set(tsEntry, p);
  }
  return p;
}

/** The URL a thread imports for `tsEntry`: its bundle, or the .ts entry once `warn` has been told why it could not be bundled. */
export async function threadEntry(tsEntry: string, warn: (err: Error) => void): Promise<string> {
  const { entry, error } = await bundleThreadEntry(tsEntry);
  if (error !== null) warn(error);
  return entry;
}

function loadEsbuild(): Esbuild {
  const fromTsx = createRequire(import.meta.resolve('tsx/esm/api'));
  return fromTsx('esbuild') as Esbuild;
}

/** Bare package names -> the absolute URL Node resolves from here; `import.meta.url` -> each source's URL. */
const plugin: EsbuildPlugin = {
  name: 'tpsd-thread-bundle',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => (isBuiltin(a.path) ? undefined : { path: import.meta.resolve(a.path), external: true }));
    b.onLoad({ filter: /\.ts$/ }, (a) => {
      const contents = readFileSync(a.path, 'utf8').replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(a.path).href));
      if (/\bimport\.meta\b/.test(contents)) throw new Error(`${a.path}: import.meta other than import.meta.url cannot be bundled`);
      return { contents, loader: 'ts' };
    });
  },
};

async function bundle(tsEntry: string): Promise<string> {
  const esbuild = loadEsbuild();
  const name = basename(tsEntry, '.ts');
  // Splitting: a module imported with import() becomes a chunk of its own, with its packages: loaded only if imported.
  const out = await esbuild.build({
    entryPoints: [fileURLToPath(tsEntry)], bundle: true, splitting: true, write: false, outdir: ownDir(), entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]', outExtension: { '.js': '.mjs' }, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent',
    sourcemap: 'inline', sourcesContent: false,
    plugins: [plugin],
  });
  let entry: string | null = null;
  for (const f of out.outputFiles) {
    writeFileSync(f.path, f.text, { mode: 0o600 });
    if (basename(f.path).startsWith(`${name}-`)) entry = f.path;
  }
  if (entry === null) throw new Error(`bundling ${tsEntry}: no output named ${name}-*`);
  return pathToFileURL(entry).href;
}

/** This process's directory for bundles: private (mkdtemp: mode 0700), removed at exit. */
function ownDir(): string {
  if (bundleDir === null) {
    const dir = mkdtempSync(join(tmpdir(), 'tpsd-threads-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    bundleDir = dir;
  }
  return bundleDir;
}
