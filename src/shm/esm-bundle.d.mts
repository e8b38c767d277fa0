// Types of esm-bundle.mjs (plain JavaScript: bin/tpsd.mjs imports it before any TypeScript can load).

/** The file URL of a bundle of `tsEntry` (a file URL of a .ts module); rejects with the reason when it cannot be made. */
export function bundleEntry(tsEntry: string): Promise<string>;
