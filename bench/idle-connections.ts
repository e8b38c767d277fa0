// Opens N idle WebSocket connections to a server and holds them: the load of
// the memory benchmark (bench/memory.ts). Each connection completes the
// opening handshake on /v1 and then sends nothing (pings are answered).
// Prints one JSON line {"msg":"listening ...","open":N,...} once all are open
// (the shape servers.ts waits for), then holds them until SIGTERM/SIGINT, or
// --max-seconds after the start at the latest.
// Run it with the open-files limit raised (servers.ts does).
//
// Run: node --import tsx bench/idle-connections.ts --url ws://127.0.0.1:PORT --count 10000

import { parseArgs } from 'node:util';
import { WireSocket } from '../src/loadgen/ws-wire.ts';
import { wsUrl } from '../src/loadgen/spec.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' }, count: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '200' },
    'max-seconds': { type: 'string', default: '300' },
  },
  strict: true,
});
if (values.url === undefined) throw new Error('--url is required');
const url = wsUrl(values.url);
const count = Number(values.count);
const concurrency = Number(values.concurrency);

const sockets: WireSocket[] = [];
let closedEarly = 0;
let next = 0;
async function opener(): Promise<void> {
  while (next < count) {
    next++;
    const ws = await WireSocket.open(url, 30_000);
    ws.onClose = () => { closedEarly++; };
    sockets.push(ws);
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, opener));
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ msg: 'listening (connections open)', port: 1, open: sockets.length, closedEarly, seconds })}\n`);

const stop = () => process.exit(closedEarly > 0 ? 1 : 0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, Number(values['max-seconds']) * 1000);
