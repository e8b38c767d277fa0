// The HTTP/JSON API (PROTOCOL.md "HTTP/JSON on the same port") against a
// real daemon: every status and header of the contract's table, auth off and
// on, waits answered later, an aborted waiter that leaks nothing, bodies that
// are not JSON or too large, keep-alive, a RELEASE landing on another I/O
// thread than the lease's, a stop that does not hang on idle keep-alive
// sockets, the curl and Python examples of docs/http-api.md, run as written
// there, and `tpsd bench --client http`.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../src/config/schema.ts';
import { startDaemon } from '../../src/daemon/daemon.ts';
import { startTestDaemon, tempDir } from '../fixtures/daemon.ts';

type Daemon = Awaited<ReturnType<typeof startTestDaemon>>;

const POOL = {
  name: 'h', capacity_tps: 1000, burst: 100, services: [
    { name: 'fast', priority: 'HIGH', max_tps: 1000, burst: 100 },
    // One token, then one every 20 s: exhausted for the length of any test.
    { name: 'frozen', priority: 'HIGH', max_tps: 0.05, burst: 1 },
    { name: 'conc', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 1 },
    { name: 'two', priority: 'HIGH', max_tps: 1000, burst: 2 },
    { name: 'pair', priority: 'HIGH', max_tps: 0.05, burst: 2 },
  ],
};
const AUTH = {
  tokens: [
    { token: 'tok-h', keys: ['h/'] },
    { token: 'tok-other', keys: ['h/fast'] },
  ],
};

interface Answer { status: number; headers: http.IncomingHttpHeaders; json: Record<string, unknown>; reused: boolean }

/** POSTs `body` (an object, or a raw string/Buffer sent as is) over `agent`. */
function post(port: number, path: string, body: unknown, o: { agent?: http.Agent | false; token?: string } = {}): Promise<Answer> {
  const raw = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: o.agent ?? false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode!, headers: res.headers, json: JSON.parse(text), reused: req.reusedSocket });
        } catch { reject(new Error(`not JSON (${res.statusCode}): ${text}`)); }
      });
    });
    req.on('error', reject);
    req.end(raw);
  });
}

async function keyStatus(port: number, key: string): Promise<{ queue: number; in_flight: number }> {
  const snap = await (await fetch(`http://127.0.0.1:${port}/v1/status`)).json() as { keys: { key: string; queue: number; in_flight: number }[] };
  return snap.keys.find((k) => k.key === key)!;
}

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function assertError(a: Answer, http: number, code: number, name: string): void {
  assert.equal(a.status, http, JSON.stringify(a.json));
  assert.equal(a.headers['content-type'], 'application/json');
  assert.equal(a.json.code, code);
  assert.equal(a.json.error, name);
  assert.equal(typeof a.json.message, 'string');
}

describe('HTTP/JSON API, auth off', () => {
  let daemon: Daemon;
  let port: number;
  before(async () => {
    daemon = await startTestDaemon({ pools: [POOL], policy: { mode: 'static' }, lease_ttl_ms: 60_000 });
    port = daemon.port;
  });
  after(() => daemon.stop());

  it('acquire: 200 {lease, remaining}, defaults tokens 1 and wait_ms 0; release: 200 {}', async () => {
    const a = await post(port, '/v1/acquire', { key: 'h/pair' });
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-type'], 'application/json');
    assert.ok(Number.isSafeInteger(a.json.lease) && (a.json.lease as number) > 0, 'the lease is a plain number');
    assert.equal(a.json.remaining, 1);
    const b = await post(port, '/v1/acquire', { key: 'h/pair', tokens: 1, wait_ms: 0 });
    assert.equal(b.json.remaining, 0);
    const r = await post(port, '/v1/release', { lease: a.json.lease });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {});
    assert.deepEqual((await post(port, '/v1/release', { lease: b.json.lease, outcome: 1, latency_us: 1500 })).json, {});
  });

  it('denied: 429 {retry_after_ms} with Retry-After in whole seconds, rounded up', async () => {
    await post(port, '/v1/acquire', { key: 'h/frozen' });
    const d = await post(port, '/v1/acquire', { key: 'h/frozen' });
    assert.equal(d.status, 429);
    assert.equal(d.headers['content-type'], 'application/json');
    const ms = d.json.retry_after_ms as number;
    assert.ok(Number.isInteger(ms) && ms > 1000, `retry_after_ms ${ms}`);
    assert.deepEqual(Object.keys(d.json), ['retry_after_ms']);
    assert.equal(d.headers['retry-after'], String(Math.ceil(ms / 1000)));
  });

  it('a waiting acquire is granted later, over the same keep-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const held = await post(port, '/v1/acquire', { key: 'h/conc' }, { agent });
      assert.equal(held.status, 200);
      const waiting = post(port, '/v1/acquire', { key: 'h/conc', wait_ms: 20_000 });
      await until(async () => (await keyStatus(port, 'h/conc')).queue === 1, 'the waiter to queue');
      assert.equal((await post(port, '/v1/release', { lease: held.json.lease }, { agent })).status, 200);
      const granted = await waiting;
      assert.equal(granted.status, 200);
      assert.ok((granted.json.lease as number) > 0);
      const second = await post(port, '/v1/release', { lease: granted.json.lease }, { agent });
      assert.equal(second.status, 200);
      assert.ok(second.reused, 'the keep-alive socket was reused');
    } finally {
      agent.destroy();
    }
  });

  it('a wait that runs out is a 429 answered later', async () => {
    await post(port, '/v1/acquire', { key: 'h/frozen' });
    const d = await post(port, '/v1/acquire', { key: 'h/frozen', wait_ms: 50 });
    assert.equal(d.status, 429);
    assert.equal(d.headers['retry-after'], String(Math.ceil((d.json.retry_after_ms as number) / 1000)));
  });

  it('an aborted waiting call leaks nothing: its waiter is gone and never takes the slot', async () => {
    const held = await post(port, '/v1/acquire', { key: 'h/conc' });
    assert.equal(held.status, 200);
    const sock = net.connect(port, '127.0.0.1');
    const body = JSON.stringify({ key: 'h/conc', wait_ms: 30_000 });
    sock.write(`POST /v1/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await until(async () => (await keyStatus(port, 'h/conc')).queue === 1, 'the waiter to queue');
    sock.destroy();
    await until(async () => (await keyStatus(port, 'h/conc')).queue === 0, 'the aborted waiter to leave the queue');
    assert.equal((await post(port, '/v1/release', { lease: held.json.lease })).status, 200);
    // Had the aborted waiter taken the freed slot, this would wait in vain.
    const next = await post(port, '/v1/acquire', { key: 'h/conc', wait_ms: 5000 });
    assert.equal(next.status, 200, JSON.stringify(next.json));
    assert.equal((await keyStatus(port, 'h/conc')).in_flight, 1);
    assert.equal((await post(port, '/v1/release', { lease: next.json.lease })).status, 200);
    assert.equal((await keyStatus(port, 'h/conc')).in_flight, 0);
  });

  it('400 BAD_REQUEST: wrong types, tokens 0, a key too long, a body that is not a JSON object', async () => {
    for (const body of [
      { key: 'h/fast', tokens: 0 }, { key: 'h/fast', tokens: '1' }, { key: 'h/fast', tokens: 1.5 }, { key: 'h/fast', wait_ms: -1 },
      { key: 'h/fast', tokens: [1] }, {}, { key: 7 }, { key: 'x'.repeat(300) }, { key: null },
    ]) {
      assertError(await post(port, '/v1/acquire', body), 400, 16, 'BAD_REQUEST');
    }
    for (const raw of ['not json', '[1,2]', '"str"', 'null', '', '{"key":', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]) {
      assertError(await post(port, '/v1/acquire', raw), 400, 16, 'BAD_REQUEST');
    }
    for (const body of [{}, { lease: -1 }, { lease: 'x' }, { lease: 1, outcome: 9 }, { lease: 1, latency_us: 0.5 }]) {
      assertError(await post(port, '/v1/release', body), 400, 16, 'BAD_REQUEST');
    }
  });

  it('400 for a body over max_message_bytes; the connection stays usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = JSON.stringify({ key: 'h/fast', pad: 'x'.repeat(70_000) });
      const a = await post(port, '/v1/acquire', big, { agent });
      assertError(a, 400, 16, 'BAD_REQUEST');
      assert.match(a.json.message as string, /over 65536 bytes/);
      const b = await post(port, '/v1/acquire', { key: 'h/fast' }, { agent });
      assert.equal(b.status, 200);
      assert.ok(b.reused);
      // Far too large: answered 400 and disconnected while the client may still be
      // sending (it may then see the reset before the answer); the daemon serves on.
      const huge = await post(port, '/v1/acquire', JSON.stringify({ pad: 'y'.repeat(2 * 1024 * 1024) })).catch((err: NodeJS.ErrnoException) => err);
      if (huge instanceof Error) assert.ok(['ECONNRESET', 'EPIPE'].includes(huge.code ?? ''), String(huge));
      else assertError(huge, 400, 16, 'BAD_REQUEST');
      assert.equal((await post(port, '/v1/acquire', { key: 'h/fast' })).status, 200);
    } finally {
      agent.destroy();
    }
  });

  it('400 TOKENS_EXCEED_BURST; 404 UNKNOWN_KEY and UNKNOWN_LEASE', async () => {
    assertError(await post(port, '/v1/acquire', { key: 'h/two', tokens: 3 }), 400, 22, 'TOKENS_EXCEED_BURST');
    assertError(await post(port, '/v1/acquire', { key: 'h/nope' }), 404, 17, 'UNKNOWN_KEY');
    assertError(await post(port, '/v1/release', { lease: 123456789 }), 404, 19, 'UNKNOWN_LEASE');
    const a = await post(port, '/v1/acquire', { key: 'h/fast' });
    assert.equal((await post(port, '/v1/release', { lease: a.json.lease })).status, 200);
    assertError(await post(port, '/v1/release', { lease: a.json.lease }), 404, 19, 'UNKNOWN_LEASE');
  });

  it('hints on release: an object of numbers is taken, a wrong type is 400', async () => {
    const a = await post(port, '/v1/acquire', { key: 'h/fast' });
    // The pool's own capacity: hints that change nothing here (the next suite shows what they do).
    const hints = { limit: 1000, remaining: 400, reset_ms: 500, window_ms: 1000, retry_after_ms: 0, vendor: 'ignored' };
    assert.equal((await post(port, '/v1/release', { lease: a.json.lease, outcome: 2, latency_us: 10, hints })).status, 200);
    const b = await post(port, '/v1/acquire', { key: 'h/fast' });
    assertError(await post(port, '/v1/release', { lease: b.json.lease, hints: { limit: '100' } }), 400, 16, 'BAD_REQUEST');
    assertError(await post(port, '/v1/release', { lease: b.json.lease, hints: [1] }), 400, 16, 'BAD_REQUEST');
    assert.equal((await post(port, '/v1/release', { lease: b.json.lease })).status, 200, 'a refused release changed nothing');
  });

  it('405 for another method on the calls', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/acquire`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
  });

  it('a RELEASE on another I/O thread than the lease\'s is relayed to it', async () => {
    // Keep-alive connections stay on one thread; a lease id names its thread (id % 16).
    const byThread = new Map<number, http.Agent>();
    const agents: http.Agent[] = [];
    try {
      for (let i = 0; i < 64 && byThread.size < 2; i++) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(agent);
        const a = await post(port, '/v1/acquire', { key: 'h/fast' }, { agent });
        byThread.set((a.json.lease as number) % 16, agent);
        await post(port, '/v1/release', { lease: a.json.lease }, { agent });
      }
      assert.equal(byThread.size, 2, 'connections landed on both I/O threads');
      const [a0, a1] = [byThread.get(0)!, byThread.get(1)!];
      const lease = (await post(port, '/v1/acquire', { key: 'h/conc' }, { agent: a0 })).json.lease as number;
      assert.equal(lease % 16, 0);
      assert.equal((await post(port, '/v1/release', { lease }, { agent: a1 })).status, 200, 'released from thread 1');
      assertError(await post(port, '/v1/release', { lease }, { agent: a0 }), 404, 19, 'UNKNOWN_LEASE');
      assert.equal((await keyStatus(port, 'h/conc')).in_flight, 0, 'the slot was freed');
    } finally {
      for (const a of agents) a.destroy();
    }
  });
});

describe('HTTP/JSON API: release hints reach the controller', () => {
  let daemon: Daemon;
  before(async () => { daemon = await startTestDaemon({ pools: [POOL], tick_ms: 100 }); });
  after(() => daemon.stop());

  it('a hinted limit below the capacity lowers the pool\'s effective capacity (a quiet pool believes it)', async () => {
    const a = await post(daemon.port, '/v1/acquire', { key: 'h/fast' });
    const hints = { limit: 100, remaining: 40, reset_ms: 500, window_ms: 1000 };
    assert.equal((await post(daemon.port, '/v1/release', { lease: a.json.lease, latency_us: 10, hints })).status, 200);
    await until(async () => {
      const snap = await (await fetch(`http://127.0.0.1:${daemon.port}/v1/status`)).json() as { pools: { name: string; effective_capacity_tps: number }[] };
      return snap.pools.find((p) => p.name === 'h')!.effective_capacity_tps <= 100;
    }, 'pool h at the hinted 100/s');
  });
});

describe('HTTP/JSON API, auth on', () => {
  let daemon: Daemon;
  let port: number;
  before(async () => {
    daemon = await startTestDaemon({ pools: [POOL], policy: { mode: 'static' }, auth: AUTH, limits: { max_queue_per_key: 1 } });
    port = daemon.port;
  });
  after(() => daemon.stop());

  it('401 without a valid token, with WWW-Authenticate: Bearer', async () => {
    for (const token of [undefined, 'wrong']) {
      const a = await post(port, '/v1/acquire', { key: 'h/fast' }, { token });
      assertError(a, 401, 18, 'UNAUTHORIZED');
      assert.equal(a.headers['www-authenticate'], 'Bearer');
      assertError(await post(port, '/v1/release', { lease: 1 }, { token }), 401, 18, 'UNAUTHORIZED');
    }
  });

  it('403 for a key outside the token\'s scope; 200 inside it', async () => {
    assertError(await post(port, '/v1/acquire', { key: 'h/conc' }, { token: 'tok-other' }), 403, 18, 'UNAUTHORIZED');
    const a = await post(port, '/v1/acquire', { key: 'h/fast' }, { token: 'tok-other' });
    assert.equal(a.status, 200);
    assert.equal((await post(port, '/v1/release', { lease: a.json.lease }, { token: 'tok-other' })).status, 200);
  });

  it('a lease belongs to the token that acquired it', async () => {
    const a = await post(port, '/v1/acquire', { key: 'h/fast' }, { token: 'tok-h' });
    assertError(await post(port, '/v1/release', { lease: a.json.lease }, { token: 'tok-other' }), 404, 19, 'UNKNOWN_LEASE');
    assert.equal((await post(port, '/v1/release', { lease: a.json.lease }, { token: 'tok-h' })).status, 200);
  });

  it('503 OVERLOADED with Retry-After when the key\'s wait queue is full', async () => {
    const held = await post(port, '/v1/acquire', { key: 'h/conc' }, { token: 'tok-h' });
    const waiting = post(port, '/v1/acquire', { key: 'h/conc', wait_ms: 20_000 }, { token: 'tok-h' });
    await until(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/status`, { headers: { authorization: 'Bearer tok-h' } });
      const snap = await res.json() as { keys: { key: string; queue: number }[] };
      return snap.keys.find((k) => k.key === 'h/conc')!.queue === 1;
    }, 'the waiter to queue');
    const full = await post(port, '/v1/acquire', { key: 'h/conc', wait_ms: 1000 }, { token: 'tok-h' });
    assertError(full, 503, 20, 'OVERLOADED');
    assert.equal(full.headers['retry-after'], '1');
    await post(port, '/v1/release', { lease: held.json.lease }, { token: 'tok-h' });
    const granted = await waiting;
    assert.equal(granted.status, 200);
    await post(port, '/v1/release', { lease: granted.json.lease }, { token: 'tok-h' });
  });
});

describe('HTTP/JSON API at stop', () => {
  it('a waiting call is answered 503 SHUTTING_DOWN with Connection: close, and idle keep-alive sockets do not hold the stop', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, tick_ms: 100, data_dir: tempDir(), log: { level: 'warn' },
      policy: { mode: 'static' }, pools: [POOL],
    }, {});
    const daemon = await startDaemon(config, { logger: pino({ level: 'warn' }, sink), onFatal: (err) => { throw err; } });
    const agents = [0, 1, 2, 3].map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      // Idle keep-alive sockets on both threads (most likely), one waiting call.
      for (const agent of agents) assert.equal((await post(daemon.port, '/v1/acquire', { key: 'h/fast' }, { agent })).status, 200);
      await post(daemon.port, '/v1/acquire', { key: 'h/frozen' });
      // Over a keep-alive connection: a client that asked for Connection: close gets no such header back.
      const waiting = post(daemon.port, '/v1/acquire', { key: 'h/frozen', wait_ms: 30_000 }, { agent: agents[0] });
      await until(async () => (await keyStatus(daemon.port, 'h/frozen')).queue === 1, 'the waiter to queue');
      const stopped = daemon.stop();
      const answer = await waiting;
      assertError(answer, 503, 21, 'SHUTTING_DOWN');
      assert.equal(answer.headers['retry-after'], '1');
      assert.equal(answer.headers.connection, 'close');
      await stopped;
      assert.deepEqual(lines.filter((l) => l.includes('did not exit in time')), [], 'no I/O thread had to be terminated');
    } finally {
      for (const a of agents) a.destroy();
      await daemon.stop();
    }
  });
});

describe('the examples of docs/http-api.md', () => {
  const doc = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8');
  /** The code block after `<!-- test: NAME -->`. */
  const example = (name: string) => {
    const m = new RegExp(`<!-- test: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
    assert.ok(m, `docs/http-api.md has a "${name}" example`);
    return m[1];
  };
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  let daemon: Daemon;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    daemon = await startTestDaemon({ pools: [POOL], policy: { mode: 'static' }, auth: { tokens: [{ token: 'ex', keys: ['h/'] }] } });
    env = { ...process.env, TPSD_URL: `http://127.0.0.1:${daemon.port}`, TPSD_TOKEN: 'ex', KEY: 'h/fast' };
  });
  after(() => daemon.stop());

  it('curl (bash)', { skip: !has('curl') || !has('bash') ? 'needs curl and bash' : false }, () => {
    const run = spawnSync('bash', ['-euo', 'pipefail', '-c', example('bash')], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^acquire: \{"lease":\d+,"remaining":\d+\}$/m);
    assert.match(run.stdout, /^release: \{\}$/m);
    assert.match(run.stdout, /^HTTP\/1\.1 200 OK\r?$/m);
    assert.match(run.stdout, /\{"lease":\d+,"remaining":\d+\}\s*$/);
  });

  it('Python with only its standard library', { skip: !has('python3') ? 'needs python3' : false }, () => {
    const run = spawnSync('python3', ['-', 'h/fast'], { env, input: example('python'), encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n'), [0, 1, 2, 3, 4].map((i) => `call ${i}: upstream answered 200`));
  });
});

describe('tpsd bench --client http', () => {
  let daemon: Daemon;
  before(async () => { daemon = await startTestDaemon({ pools: [POOL], policy: { mode: 'static' } }); });
  after(() => daemon.stop());

  /** `tpsd bench --json` for about a second (no timing is asserted: benchmarks are programs). */
  const bench = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--json', '--url', `http://127.0.0.1:${daemon.port}`,
      '--duration', '1', '--warmup', '0.2', ...args], { cwd: fileURLToPath(new URL('../../', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });

  it('keep-alive connections, pipelined batches: real decisions, no errors', async () => {
    const r = await bench(['--keys', 'h/fast', '--connections', '2', '--pipeline', '4', '--batch', '2']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim());
    assert.equal(res.target.client, 'http');
    assert.ok(res.decisions > 0);
    assert.equal(res.decisions, res.granted + res.denied);
    assert.equal(res.errors.total, 0, JSON.stringify(res.errors));
    assert.equal(res.lostConnections, 0);
  });

  it('error answers are counted by their protocol code', async () => {
    const r = await bench(['--keys', 'h/fast,h/nope']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim());
    assert.ok(res.errors.kinds['code 17'] > 0, JSON.stringify(res.errors));
    assert.ok(res.decisions > 0);
  });
});
