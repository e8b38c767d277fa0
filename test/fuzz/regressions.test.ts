// Regression tests for bugs that fuzzing and fault testing found in src/
// (all fixed): each states the behaviour the protocol or the design asks for.
// Daemons that such a bug would kill run as child processes, so the runner
// survives a regression.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LeaseTable } from '../../src/io/lease-table.ts';
import { DecodeError, decodeAll } from '../../src/protocol/codec.ts';
import { spawnDaemon, writeConfig } from '../fixtures/cli-daemon.ts';
import { BASE_POOL, RawClient, startTestDaemon } from '../fixtures/daemon.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const CONFIG = { listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, pools: [BASE_POOL] };

/** Sends one message to a `tpsd start` child; returns the close code and whether the daemon survived 20 s. */
async function hitChildDaemon(bytes: Uint8Array): Promise<{ close: number | string; alive: boolean; exit: string }> {
  const d = spawnDaemon(['--config', writeConfig(CONFIG)]);
  const port = await d.port;
  try {
    const c = await RawClient.open(port);
    c.sendBytes(bytes);
    const close = await c.closed(2000).catch(() => 'no close within 2 s');
    const exited = await Promise.race([d.exit.then((e) => `exited ${e.code ?? e.signal}`), new Promise<string>((r) => setTimeout(r, 20_000, ''))]);
    return { close, alive: exited === '', exit: exited };
  } finally {
    d.child.kill('SIGKILL');
  }
}

describe('regressions found by fuzzing', () => {
  it('msgpackr-bundle-loop: 9 bytes (ext 0x62 of size -4) close the connection with 1002 instead of killing the daemon', { timeout: 60_000 }, async () => {
    // src/protocol/codec.ts decodeAll -> msgpackr unpackMultiple: the bundled-strings
    // extension moves the read position back before the extension, so the decode
    // loop never ends; the I/O thread spins and allocates until V8 aborts the
    // process (SIGTRAP, "Fatal JavaScript invalid size error") in ~10 s.
    const r = await hitChildDaemon(new Uint8Array([0xa0, 0xa0, 0xd6, 0x62, 0xff, 0xff, 0xff, 0xfc, 0xc0]));
    assert.deepEqual(r, { close: 1002, alive: true, exit: '' });
  });

  it('hello-version-json: HELLO whose v is a BigInt, a cycle or 20k levels deep closes with 1002, the requests before it answered', async () => {
    // src/io/hello.ts: JSON.stringify(body.v) for the error message
    // throws (BigInt from ext 0x42; cycle from ext 0x69/0x70; stack overflow); since
    // b71a33c the I/O thread survives but the connection is closed with 1011 and the
    // replies to the message's earlier requests (leases granted) are dropped.
    const daemon = await startTestDaemon();
    try {
      const deep = new Uint8Array(20_000 + 8);
      deep.set([0x93, 0x00, 0x03, 0x81, 0xa1, 0x76]);
      deep.fill(0x91, 6, 6 + 20_000);
      deep[deep.length - 2] = 0xc0;
      const cases: [string, Uint8Array][] = [
        ['bigint', new Uint8Array([0x93, 0x00, 0x01, 0x81, 0xa1, 0x76, 0xd4, 0x42, 0x01])],
        ['cycle', new Uint8Array([0x93, 0x00, 0x02, 0x81, 0xa1, 0x76, 0xd6, 0x69, 0, 0, 0, 1, 0x91, 0xd6, 0x70, 0, 0, 0, 1])],
        ['deep', deep.subarray(0, deep.length - 1)],
      ];
      for (const [what, bytes] of cases) {
        const c = await RawClient.open(daemon.port);
        c.send([1, 9, 'api/low', 1, 0]); // answered first, in the same message as the HELLO
        c.sendBytes(bytes);
        const id = bytes[2];
        // Extension types and nesting past 32 levels are refused before decoding (msgpack-scan.ts).
        assert.equal(await c.closed(), 1002, `${what}: closed as a protocol error`);
        assert.equal(c.replies.find((r) => r[1] === id), undefined);
        assert.equal((await c.reply(9))[2], 0, `${what}: the earlier ACQUIRE answered`);
        c.close();
      }
    } finally {
      await daemon.stop();
    }
  });

  it('array32-preallocation: a 5-byte array32 header does not cost the I/O thread 100+ ms and 100+ MB', () => {
    // msgpackr readArray allocates `new Array(length)` for the declared length
    // before it finds that the message ends; 0x01f00000 elements: ~190 ms, ~250 MB
    // transient. Each such message closes its connection, but costs far more than
    // the handshake that precedes it. A pre-check that a declared count fits in
    // the remaining bytes (each element takes at least one) in codec.ts avoids it.
    const t0 = performance.now();
    assert.throws(() => decodeAll(new Uint8Array([0xdd, 0x01, 0xf0, 0x00, 0x00])), DecodeError);
    const ms = performance.now() - t0;
    assert.ok(ms < 20, `decoding took ${ms.toFixed(0)} ms`);
  });

  it('lease-fifo-compaction: every lease of a thread ends at its TTL', () => {
    // src/io/lease-table.ts compactFifo() compacts the expiry ring in place from
    // index 0 while reading from `head`: when the ring wraps (head > 0) it
    // overwrites entries it has not read yet. The lost leases never expire: their
    // concurrency slots leak until restart and in_flight never drains (seen live:
    // in_flight of a pool stuck at 133 after a fuzz run with 3 s TTL).
    const lt = new LeaseTable(0, 1 << 20, 2);
    const owner = 1;
    lt.create(1, 0, 100, owner);
    lt.expire(50, () => {});
    lt.create(1, 0, 150, owner);
    const c = lt.create(1, 0, 150, owner);
    lt.expire(100, () => {}); // the first ends; head moves to 1
    lt.release(c, owner); // a stale entry
    for (let i = 0; i < 3; i++) lt.create(1, 0, 200, owner); // the ring fills: compaction with head 1
    let ended = 0;
    lt.expire(1_000_000, () => { ended++; });
    assert.equal(ended, 4, 'the 4 live leases end');
    assert.equal(lt.active, 0, 'no lease left active');
  });

  it('stop-with-keepalive: stopping the daemon with an HTTP keep-alive connection open exits cleanly (10 runs)', { timeout: 300_000 }, async () => {
    // src/io/io-worker.ts stop() closes the listen socket and the WebSocket
    // connections, not HTTP keep-alive sockets (fetch keeps them; so does a
    // Prometheus scraper); the worker then exits with uWS handles open and Node
    // aborts the process: "uv_loop_close() while having open handles" (exit 134).
    const script = join(tempDir('tpsd-repro-'), 'stop.mts');
    writeFileSync(script, `import { startTestDaemon } from '${ROOT}test/fixtures/daemon.ts';
      const d = await startTestDaemon({ io_threads: 2 });
      await (await fetch('http://127.0.0.1:' + d.port + '/healthz')).text();
      await d.stop();\n`);
    const codes: (number | null)[] = [];
    for (let i = 0; i < 10; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: 'ignore' });
      codes.push(await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))));
    }
    assert.deepEqual(codes.filter((c) => c !== 0), [], `exit codes: ${codes.join(' ')}`);
  });

  it('msgpackr-state: the same message decodes the same way every time', () => {
    // msgpackr (with msgpackr-extract, as Node loads it) keeps state between calls:
    // here a map key with invalid UTF-8 ("nG\x17\x84"): the first decode stops
    // after 1 value, later ones return 8 (a HELLO, an ACQUIRE, a RELEASE, ...). In
    // the daemon the outcome depends on what other clients sent to that thread.
    const x = Buffer.from('9200cee499f8c19300ce339ee69d83a17601a46e471784616d65a866757a7a2d323631a081a66a756e6b2f62c09501cea9' +
      '924c44a46a756e6b02009502ce2cac06a1cf001fffffffffffff02ce0004881c9501ce84c74c5924725cb17ff78fa96a756e6b2f736c6f77031d', 'hex');
    const outcome = () => { try { return `ok ${JSON.stringify(decodeAll(x))}`; } catch (err) { return `${(err as DecodeError).kind} ${JSON.stringify((err as DecodeError).values)}`; } };
    const first = outcome();
    assert.equal(outcome(), first);
  });

  it('decode-error-kind: a complete but too deeply nested message is not reported as "incomplete"', () => {
    // msgpackr flags its stack overflow (a RangeError) as incomplete; codec.ts
    // passes that on, so a stream reader would wait for bytes that never come.
    const bytes = new Uint8Array(200_001).fill(0x91);
    bytes[200_000] = 0xc0;
    assert.throws(() => decodeAll(bytes), (err: unknown) => err instanceof DecodeError && err.kind === 'corrupt');
  });
});
