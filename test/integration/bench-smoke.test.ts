// `tpsd bench` as a user runs it, for about a second against a test daemon:
// the JSON result has its shape and counts real decisions. No timing is
// asserted (benchmarks are programs, not timed tests).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { httpGet, startTestDaemon } from '../fixtures/daemon.ts';
import type { Daemon } from '../../src/daemon/daemon.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--json', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function checkShape(r: Record<string, any>): void {
  for (const k of ['target', 'options', 'windowS', 'messages', 'messagesPerSec', 'decisions', 'decisionsPerSec', 'granted', 'denied',
    'echoed', 'errors', 'lostConnections', 'latencyMs', 'sendLagMs', 'cpu']) assert.ok(k in r, `result has ${k}`);
  for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'mean', 'samples']) assert.equal(typeof r.latencyMs[k], 'number', `latencyMs.${k}`);
  assert.equal(typeof r.errors.total, 'number');
  assert.equal(typeof r.errors.kinds, 'object');
  assert.equal(typeof r.cpu.loadgen.seconds, 'number');
  assert.ok(r.decisions > 0, 'decisions were measured');
  assert.equal(r.decisions, r.granted + r.denied, 'every decision is a grant or a denial');
  assert.ok(r.latencyMs.p50 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max);
}

describe('tpsd bench', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startTestDaemon({
      pools: [{ name: 'bench', capacity_tps: 100_000, services: [{ name: 's0', priority: 'HIGH' }, { name: 's1', priority: 'LOW' }] }],
    });
  });
  after(async () => { await daemon.stop(); });

  it('closed loop over the raw client: JSON with decisions, both keys, no errors', async () => {
    const r = await bench(['--url', `ws://127.0.0.1:${daemon.port}`, '--keys', '2', '--connections', '2', '--pipeline', '4',
      '--batch', '2', '--duration', '1', '--warmup', '0.2', '--server-pid', String(process.pid)]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim());
    checkShape(res);
    assert.equal(res.target.server, 'tpsd');
    assert.equal(res.target.client, 'raw');
    assert.deepEqual(res.options, { connections: 2, pipeline: 4, batch: 2, keys: 2, durationS: 1, warmupS: 0.2, rate: null, threads: 2, release: false });
    assert.equal(res.errors.total, 0, JSON.stringify(res.errors));
    assert.equal(res.cpu.server.pid, process.pid);
    assert.equal(res.sendLagMs, null, 'closed loop: no schedule to lag behind');
  });

  it('open loop through the SDK: latency from the schedule, send lag reported', async () => {
    const r = await bench(['--url', `ws://127.0.0.1:${daemon.port}`, '--client', 'sdk', '--keys', 'bench/s0,bench/s1', '--connections', '2',
      '--pipeline', '8', '--rate', '500', '--duration', '1', '--warmup', '0']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim());
    checkShape(res);
    assert.equal(res.target.client, 'sdk');
    assert.equal(res.options.rate, 500);
    assert.equal(typeof res.sendLagMs.p99, 'number');
    assert.equal(res.cpu.server, null);
  });

  it('--release gives back every lease it is granted, through the raw client and the SDK', async () => {
    /** Leases granted and RELEASEs counted (outcome ok) on the pool, from /metrics. */
    const counts = async () => {
      const m = (await httpGet(daemon.port, '/metrics')).body;
      const num = (re: RegExp) => Number(re.exec(m)?.[1] ?? NaN);
      return { grants: num(/^tpsd_leases_granted_total\{key="bench",[^}]*\} (\d+)$/m), ok: num(/^tpsd_releases_total\{key="bench",[^}]*outcome="ok"\} (\d+)$/m) };
    };
    for (const client of ['raw', 'sdk']) {
      const before = await counts();
      const r = await bench(['--url', `ws://127.0.0.1:${daemon.port}`, '--client', client, '--release', '--keys', '2', '--connections', '2',
        '--pipeline', '4', '--batch', '2', '--duration', '1', '--warmup', '0']);
      assert.equal(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout.trim());
      assert.equal(res.options.release, true);
      const after = await counts();
      const grants = after.grants - before.grants, released = after.ok - before.ok;
      // The last grants can arrive after the run stopped and its connections closed: at most a few messages' worth.
      assert.ok(grants >= res.granted && released > 0.9 * grants && released <= grants, `${client}: ${released} of ${grants} leases released`);
    }
  });

  it('counts error replies by code instead of hiding them', async () => {
    const r = await bench(['--url', `ws://127.0.0.1:${daemon.port}`, '--keys', 'bench/s0,no/such-key', '--duration', '0.5', '--warmup', '0']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim());
    assert.ok(res.errors.kinds['code 17'] > 0, 'UNKNOWN_KEY replies are counted');
    assert.ok(res.decisions > 0);
    assert.match(r.stderr, /warning: .* failed/);
  });
});

describe('tpsd bench with its defaults', () => {
  // The pools of the shipped config (config/default.json), on a free port.
  const shipped = JSON.parse(readFileSync(new URL('../../config/default.json', import.meta.url), 'utf8')) as { pools: unknown[] };
  let daemon: Daemon;
  before(async () => { daemon = await startTestDaemon({ pools: shipped.pools }); });
  after(async () => { await daemon.stop(); });

  for (const scheme of ['ws', 'http']) {
    it(`against the default config (${scheme}://) uses a key the daemon has, named on stderr: no UNKNOWN_KEY`, async () => {
      const r = await bench(['--url', `${scheme}://127.0.0.1:${daemon.port}`, '--duration', '0.5', '--warmup', '0']);
      assert.equal(r.code, 0, r.stderr);
      const res = JSON.parse(r.stdout.trim());
      assert.equal(res.errors.total, 0, JSON.stringify(res.errors));
      assert.ok(res.granted > 0, 'acquires were granted');
      // payments/checkout has a concurrency limit that unreleased leases would fill: the first service without one.
      assert.match(r.stderr, /keys: payments\/orders \(from the daemon's STATUS\)/);
    });
  }

  it('says in --help which key it uses by default', async () => {
    const r = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'bench', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.once('exit', () => resolve(out));
    });
    assert.match(r, /default: the first service without a concurrency limit in the daemon's STATUS/);
  });
});
