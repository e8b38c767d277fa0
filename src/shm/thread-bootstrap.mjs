// Entry of every worker thread tpsd starts: I/O threads, the telemetry
// writer, load and bench workers, and Piscina tasks (PPO inference, training
// rollouts). Loader flags of the parent are not inherited by workers, so this
// plain .mjs file registers the TypeScript loader in the thread, then imports
// the module named by workerData.entry (Piscina passes its workerData option
// through as the thread's workerData). For a Piscina task it re-exports the
// module's default handler, which Piscina calls per task; plain workers
// ignore the export.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const mod = await import(workerData.entry);
export default mod.default;
