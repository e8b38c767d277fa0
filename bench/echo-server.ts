// The bare echo server of bench:compare, as a process: `threads` uWS apps
// (echo-worker.ts) on one port of 127.0.0.1, echoing every binary message on
// /v1. Logs one JSON line {"msg":"listening","port":N} when all threads
// listen; stops on SIGTERM/SIGINT.
//
// Run: node --import tsx bench/echo-server.ts [--threads N] [--port P]

import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import type { EchoWorkerData, EchoWorkerMessage } from './echo-worker.ts';
import { THREAD_BOOTSTRAP } from '../src/shm/threads.ts';

const ENTRY = new URL('./echo-worker.ts', import.meta.url).href;
const HOST = '127.0.0.1';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, port: { type: 'string', default: '0' } }, strict: true });
const threads = Number(values.threads);
if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new Error(`--threads: expected 1 to 64, got ${values.threads}`);

const workers: Worker[] = [];

function spawn(port: number): Promise<number> {
  const workerData: EchoWorkerData = { entry: ENTRY, host: HOST, port };
  const w = new Worker(THREAD_BOOTSTRAP, { workerData, name: `echo-${workers.length}` });
  workers.push(w);
  return new Promise((resolve, reject) => {
    w.on('message', (m: EchoWorkerMessage) => {
      if (m.type === 'listening') resolve(m.port);
      else reject(new Error(`echo thread cannot listen on ${HOST}:${port}`));
    });
    w.once('error', reject);
  });
}

/** As tpsd does: pick the port with an exclusive probe, then every thread listens on it (SO_REUSEPORT). */
function probePort(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host: HOST, port, exclusive: true }, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      srv.close(() => resolve(bound));
    });
  });
}

const port = await probePort(Number(values.port));
for (let t = 0; t < threads; t++) await spawn(port);
process.stdout.write(`${JSON.stringify({ msg: `listening on ${HOST}:${port}`, port, threads })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  for (const w of workers) w.postMessage({ type: 'stop' });
  const exits = workers.map((w) => new Promise((r) => w.once('exit', r)));
  const timer = setTimeout(() => process.exit(1), 3000);
  void Promise.all(exits).then(() => { clearTimeout(timer); process.exit(0); });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
