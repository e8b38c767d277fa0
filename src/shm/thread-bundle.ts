// A thread's TypeScript entry as one plain ES module, so that the thread
// needs no TypeScript loader (tsx's register() in a worker starts a module
// hooks thread of its own: about 30 MiB of RSS for each I/O thread and for
// the telemetry thread at 100 000 keys; the PPO inference worker and
// training's rollout workers use it too). esm-bundle.mjs makes the bundle
// (how, and what it keeps as it was); the thread imports it through
// thread-bootstrap.mjs, which registers no loader for a .mjs entry and turns
// source maps on instead. When the bundle cannot be made (esbuild missing,
// an unwritable temp dir, a source reading its module's meta object for more
// than its url), the thread runs its .ts entry under tsx as before:
// bundleThreadEntry() says why and the caller logs it; nothing else changes.
//
// Threads: main thread only, at start, before the threads are spawned.

import { bundleEntry } from './esm-bundle.mjs';

export interface ThreadEntry {
  /** The URL the thread imports: the bundle, or the .ts entry itself when `error` is set. */
  readonly entry: string;
  /** Why the .ts entry is used (logged by the caller); null when bundled. */
  readonly error: Error | null;
}

/** `tsEntry` (a file URL of a .ts module) as a bundle's file URL; the .ts entry with the reason when that fails. */
export function bundleThreadEntry(tsEntry: string): Promise<ThreadEntry> {
  return bundleEntry(tsEntry).then((entry) => ({ entry, error: null }),
    (err: unknown) => ({ entry: tsEntry, error: err instanceof Error ? err : new Error(String(err)) }));
}

/** The URL a thread imports for `tsEntry`: its bundle, or the .ts entry once `warn` has been told why it could not be bundled. */
export async function threadEntry(tsEntry: string, warn: (err: Error) => void): Promise<string> {
  const { entry, error } = await bundleThreadEntry(tsEntry);
  if (error !== null) warn(error);
  return entry;
}
