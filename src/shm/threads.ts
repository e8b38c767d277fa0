// The one entry file of every worker thread (see thread-bootstrap.mjs): start
// a thread with `new Worker(THREAD_BOOTSTRAP, {workerData: {entry, ...}})` or a
// Piscina pool with `filename: THREAD_BOOTSTRAP.href, workerData: {entry}`.
export const THREAD_BOOTSTRAP = new URL('./thread-bootstrap.mjs', import.meta.url);
