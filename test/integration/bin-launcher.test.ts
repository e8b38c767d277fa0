// bin/tpsd.mjs as an operator runs it (the installed `tpsd`, `npm start`, the
// systemd unit's ExecStart): `tpsd start` runs the daemon's main thread from
// a bundle, without tsx's module hooks thread (one thread fewer than the same
// daemon with TPSD_NO_BUNDLE, which forces tsx), and so does the default
// policy's PPO inference worker (one thread more than static, not two); when
// the bundle cannot be made, the daemon runs under tsx all the same and says why in its log; the
// other verbs run as they did. Real processes; thread counts from /proc.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BASE_POOL, RawClient } from '../fixtures/daemon.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/tpsd.mjs');

interface Launched { pid: number; port: number; out: () => string; stop: () => Promise<number | null> }

/** `node bin/tpsd.mjs start --config FILE` from another folder than the checkout, with `env` added; resolves once it listens. */
function launch(file: string, env: Record<string, string> = {}): Promise<Launched> {
  const child = spawn(process.execPath, [BIN, 'start', '--config', file], { cwd: tmpdir(), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = () => { child.kill('SIGTERM'); return exited; };
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        try {
          const j = JSON.parse(line) as { port?: number; msg?: string };
          if (j.port && /listening/.test(String(j.msg))) resolve({ pid: child.pid!, port: j.port, out: () => out, stop });
        } catch { /* not a whole JSON line */ }
      }
    });
    void exited.then((code) => reject(new Error(`tpsd start exited (${code}) before listening:\n${out}`)));
  });
}

/** A config file; `policy` null: none set, the default one (ppo). */
function config(policy: { mode: string } | null = { mode: 'static' }): string {
  const dir = tempDir('tpsd-bin-');
  const file = join(dir, 'tpsd.json');
  writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, io_threads: 2, ...(policy === null ? {} : { policy }), data_dir: join(dir, 'data'), pools: [BASE_POOL] }));
  return file;
}

async function serves(port: number): Promise<void> {
  const c = await RawClient.open(port);
  assert.equal((await c.call([1, 1, 'api/low', 1, 0]))[2], 0, 'an acquire is granted');
  c.close();
}

const threads = (pid: number) => readdirSync(`/proc/${pid}/task`).length;

/** The thread count once it has stayed the same for 12 reads 250 ms apart (threads a daemon starts late, e.g. a worker's loader, have started). */
async function settledThreads(pid: number): Promise<number> {
  let last = threads(pid);
  for (let same = 0; same < 12;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = threads(pid);
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

describe('bin/tpsd.mjs', () => {
  it('tpsd start: the main thread runs from a bundle, one thread (tsx\'s loader) fewer than under tsx', async () => {
    const file = config();
    const bundled = await launch(file);
    let counts: [number, number];
    try {
      await serves(bundled.port);
      const underTsx = await launch(file, { TPSD_NO_BUNDLE: '1' });
      try {
        await serves(underTsx.port);
        counts = [threads(bundled.pid), threads(underTsx.pid)];
      } finally {
        assert.equal(await underTsx.stop(), 0);
      }
    } finally {
      assert.equal(await bundled.stop(), 0);
    }
    assert.equal(counts[0], counts[1] - 1, `threads: bundled ${counts[0]}, under tsx ${counts[1]}`);
    assert.doesNotMatch(bundled.out(), /could not be bundled/);
  });

  it('tpsd start on the default policy (ppo): its inference worker runs from a bundle, one thread more than static', async () => {
    const ppo = await launch(config(null));
    let counts: [number, number];
    try {
      await serves(ppo.port);
      const fixed = await launch(config());
      try {
        await serves(fixed.port);
        counts = [await settledThreads(ppo.pid), await settledThreads(fixed.pid)];
      } finally {
        assert.equal(await fixed.stop(), 0);
      }
    } finally {
      assert.equal(await ppo.stop(), 0);
    }
    // Under tsx the worker would register a module hooks thread of its own: two more.
    assert.equal(counts[0], counts[1] + 1, `threads: ppo ${counts[0]}, static ${counts[1]}`);
    assert.doesNotMatch(ppo.out(), /could not be bundled/);
  });

  it('tpsd start when the bundle cannot be made: runs under tsx and logs why', async () => {
    // A temp dir that does not exist: the bundle's mkdtemp fails (tsx makes the folder for its cache afterwards).
    const missing = join(tempDir('tpsd-bin-tmp-'), 'missing');
    const d = await launch(config(), { TMPDIR: missing });
    try {
      await serves(d.port);
    } finally {
      assert.equal(await d.stop(), 0);
    }
    const warning = d.out().split('\n').find((l) => /could not be bundled/.test(l));
    assert.ok(warning !== undefined, d.out());
    const j = JSON.parse(warning) as { level: number; reason: string };
    assert.equal(j.level, 40, 'a warning');
    assert.match(j.reason, /ENOENT.*mkdtemp/);
  });

  it('the other verbs run under tsx as before, from any folder', () => {
    const help = spawnSync(process.execPath, [BIN, '--help'], { cwd: tmpdir(), encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: tpsd VERB/);
    const check = spawnSync(process.execPath, [BIN, 'check-config', config()], { cwd: tmpdir(), encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    const startHelp = spawnSync(process.execPath, [BIN, 'start', '--help'], { cwd: tmpdir(), encoding: 'utf8' });
    assert.equal(startHelp.status, 0, startHelp.stderr);
    assert.match(startHelp.stdout, /--config FILE/);
  });
});
