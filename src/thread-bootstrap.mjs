// Entry of every worker thread (I/O threads and Piscina tasks): registers the
// TypeScript loader in this thread, then loads the module named in
// workerData.entry. Loader flags of the parent are not inherited by workers.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
