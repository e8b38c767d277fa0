#!/usr/bin/env node
// The `tpsd` command (also `npm start` and `npm run tpsd`; the systemd unit's
// ExecStart): hands the arguments to src/cli/main.ts.
//
// `tpsd start` runs the daemon's main thread from a bundle of main.ts made
// now (src/shm/esm-bundle.mjs: plain ES modules in a private temp dir, with a
// source map so stack traces name the .ts files), not under tsx: tsx's
// register() starts a module hooks thread that would live as long as the
// daemon, about 30 MiB of RSS serving nothing once the modules are loaded.
// When the bundle cannot be made or loaded, the daemon runs under tsx as
// before and says why in its log. The other verbs are short-lived and run
// under tsx (its transpile cache makes a second run quick).

const MAIN = new URL('../src/cli/main.ts', import.meta.url).href;
const argv = process.argv.slice(2);

/** main.ts from its bundle; null (with the reason) when it cannot be had. */
async function bundledMain() {
  try {
    const { bundleEntry } = await import('../src/shm/esm-bundle.mjs');
    const url = await bundleEntry(MAIN);
    process.setSourceMapsEnabled(true);
    return { main: (await import(url)).main, reason: null };
  } catch (err) {
    return { main: null, reason: err instanceof Error ? err.message : String(err) };
  }
}

let main = null;
let reason = null;
if (argv[0] === 'start' && process.env.TPSD_NO_BUNDLE === undefined) ({ main, reason } = await bundledMain());
if (main === null) {
  (await import('tsx/esm/api')).register();
  ({ main } = await import(MAIN));
  if (reason !== null) {
    const { createLogger } = await import('../src/config/log.ts');
    createLogger('warn', 'tpsd').warn({ reason }, 'the daemon could not be bundled: its main thread runs under tsx (about 30 MiB more)');
  }
}
main(argv).then((code) => {
  process.exitCode = code;
});
