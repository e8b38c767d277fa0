// The daemon's log: readable lines on a terminal, one JSON object per line
// when stdout is anything else (systemd's journal, a pipe, a file), and JSON
// on a terminal too with TPSD_LOG_FORMAT=json. The terminal is a real
// pseudo-terminal (util-linux `script`), in the main thread and the I/O
// threads alike.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BASE_POOL } from '../fixtures/daemon.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function configFile(): string {
  const dir = tempDir('tpsd-log-');
  const file = join(dir, 'tpsd.json');
  writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, data_dir: join(dir, 'data'),
    log: { level: 'debug' }, policy: { mode: 'fair' }, pools: [BASE_POOL] }));
  return file;
}

/**
 * Runs `tpsd start` with stdout on a pseudo-terminal (tty) or a pipe until it
 * logs that it listens, then SIGTERMs it; resolves with what it wrote.
 */
function runDaemon(tty: boolean, env: Record<string, string> = {}): Promise<{ out: string; code: number | null }> {
  const file = configFile();
  const node = `${process.execPath} --import tsx src/cli/main.ts start --config ${file}`;
  // The shell prints its pid, then becomes the daemon (exec): that pid gets the SIGTERM.
  const sh = `echo "PID $$"; exec ${node}`;
  const child = tty
    ? spawn('script', ['-qfec', sh, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env, TERM: 'xterm' } })
    : spawn('sh', ['-c', sh], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let pid = 0;
  let stopped = false;
  return new Promise((resolve) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      pid ||= Number(/PID (\d+)/.exec(out)?.[1] ?? 0);
      if (!stopped && pid > 0 && /listening on 127\.0\.0\.1:\d+/.test(out)) {
        stopped = true;
        process.kill(pid, 'SIGTERM');
      }
    });
    child.once('exit', (code) => resolve({ out: out.replace(/\r\n/g, '\n'), code }));
  });
}

/** The daemon's log lines (without the shell's PID line). */
const logLines = (out: string) => out.split('\n').filter((l) => l.trim() !== '' && !/^PID \d+$/.test(l));

describe('log format', () => {
  it('is readable on a terminal: time, level, thread, message, fields; no JSON', async () => {
    const { out, code } = await runDaemon(true);
    assert.equal(code, 0, out);
    const lines = logLines(out);
    assert.ok(lines.length >= 2, out);
    for (const l of lines) assert.ok(!l.trimStart().startsWith('{'), `not JSON: ${l}`);
    // e.g. "12:00:01.234 INFO  tpsd: listening on 127.0.0.1:40123 host=127.0.0.1 port=40123 io_threads=2 ..."
    const plain = lines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
    assert.ok(plain.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO +tpsd: listening on 127\.0\.0\.1:\d+ .*\bport=\d+/.test(l)), plain.join('\n'));
    assert.ok(plain.some((l) => /^\d\d:\d\d:\d\d\.\d{3} \w+ +io-\d: /.test(l)), `an I/O thread's line, pretty too:\n${plain.join('\n')}`);
  });

  it('is JSON on a terminal with TPSD_LOG_FORMAT=json, and always when stdout is a pipe', async () => {
    for (const [tty, env] of [[true, { TPSD_LOG_FORMAT: 'json' }], [false, {}], [false, { TPSD_LOG_FORMAT: 'pretty' }]] as const) {
      const { out, code } = await runDaemon(tty, env);
      assert.equal(code, 0, out);
      const lines = logLines(out);
      assert.ok(lines.length >= 2, out);
      for (const l of lines) {
        const j = JSON.parse(l) as { level: number; msg: string };
        assert.equal(typeof j.level, 'number', l);
      }
    }
  });
});
