// Piscina worker entry: Piscina loads this plain .mjs file; it registers the
// TypeScript loader in the worker thread (loader flags of the parent are not
// inherited), imports the real *.task.ts named in Piscina's workerData.taskUrl
// and re-exports its default handler, which Piscina calls per task.
import { workerData } from 'piscina';
import { register } from 'tsx/esm/api';

register();
const task = await import(workerData.taskUrl);
export default task.default;
