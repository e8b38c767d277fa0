// The daemon's name and version as it gives them in the HELLO reply and the
// STATUS snapshot: `tpsd/<version>`, the version read once, at module load,
// from the package.json at the package root (the daemon side only: the SDK in
// src/client/ neither sends nor needs it).
//
// Threads: a constant, computed once per thread that loads the module.

import { readFileSync } from 'node:fs';

const PACKAGE_ROOT = new URL('../../', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string };

/** `tpsd/<package.json version>`, e.g. `tpsd/0.1.0`. */
export const SERVER_NAME = `tpsd/${version}`;
