// GET a daemon's text page (/metrics, /healthz) on a connection closed after
// the reply: a probe that leaves no keep-alive socket behind to hold the
// daemon's stop or to be counted as a client. Used by benchmarks and the
// live fuzzer, on the main thread of their own process.

import { get } from 'node:http';

/** The body of GET `path` on 127.0.0.1:`port`. */
export function httpText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}
