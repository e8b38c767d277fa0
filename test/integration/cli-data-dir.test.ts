// The issue's path: `tpsd start --config FILE` run from one folder, `tpsd
// history --config FILE` from another, with a relative data_dir in FILE:
// both use the folder beside FILE, so history finds what the daemon wrote.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BASE_POOL } from '../fixtures/daemon.ts';
import { runLoad, sleep } from '../fixtures/telemetry.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
// --import tsx resolves from the working directory; from a folder outside the checkout it needs tsx's own path.
const TSX = import.meta.resolve('tsx');

function tpsd(args: string[], cwd: string) {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, out: () => stdout, err: () => stderr };
}

describe('data_dir relative to the config file', () => {
  it('tpsd history run from another folder finds the database tpsd start wrote', async () => {
    const base = tempDir('tpsd-datadir-');
    for (const d of ['etc', 'start-here', 'read-here']) mkdirSync(join(base, d));
    const file = join(base, 'etc', 'tpsd.json');
    writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: 100, data_dir: 'data',
      policy: { mode: 'fair' }, pools: [BASE_POOL] }));

    const d = tpsd(['start', '--config', file], join(base, 'start-here'));
    let port = 0;
    for (let i = 0; i < 600 && port === 0; i++) {
      for (const line of d.out().split('\n')) {
        try { const j = JSON.parse(line) as { port?: number; msg?: string }; if (j.port && /listening/.test(j.msg ?? '')) port = j.port; } catch { /* partial */ }
      }
      if (port === 0) await sleep(50);
    }
    assert.ok(port > 0, `the daemon listens: ${d.err()}`);
    let stop = false;
    const load = runLoad(port, ['api/crit'], () => stop, { batch: 5, pauseMs: 5 });
    await sleep(600);
    stop = true;
    await load;
    d.child.kill('SIGTERM');
    assert.equal(await d.exit, 0, d.err());

    assert.ok(existsSync(join(base, 'etc', 'data', 'tpsd.db')), 'the database is beside the config file');
    assert.ok(!existsSync(join(base, 'start-here', 'data')), 'not in the folder tpsd start ran from');
    const h = tpsd(['history', 'api/crit', '--config', file, '--since', '10m'], join(base, 'read-here'));
    assert.equal(await h.exit, 0, h.err());
    assert.match(h.out(), /^api\/crit \(service in pool api\): \d+ per-tick rows/m);
  });
});
