// Entry of every worker thread tpsd starts: I/O threads, the telemetry
// writer, load and bench workers, and Piscina tasks (PPO inference, training
// rollouts). Loader flags of the parent are not inherited by workers, so this
// plain .mjs file registers the TypeScript loader in the thread, then imports
// the module named by workerData.entry (Piscina passes its workerData option
// through as the thread's workerData). For a Piscina task it re-exports the
// module's default handler, which Piscina calls per task; plain workers
// ignore the export. An entry that is plain JavaScript (.mjs: a bundle made
// by thread-bundle.ts) gets no loader: registering one starts a module hooks
// thread (about 30 MiB of RSS) that would serve nothing; its source map is
// turned on instead.
import { workerData } from 'node:worker_threads';

// A bundle's stack traces go through its source map to the .ts files (tsx does the same for what it loads).
if (workerData.entry.endsWith('.mjs')) process.setSourceMapsEnabled(true);
else (await import('tsx/esm/api')).register();
const mod = await import(workerData.entry);
export default mod.default;
