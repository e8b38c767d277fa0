import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { run } from '../../src/cli/sim.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string) => { out.push(String(c)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => { err.push(String(c)); return true; }) as typeof process.stderr.write;
  try {
    const code = await run(argv);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

const dir = tempDir('tpsd-sim-');
const file = join(dir, 's.json');
writeFileSync(file, JSON.stringify({
  name: 'small', seed: 9, duration_s: 60, capacity_tps: 300,
  services: [
    { name: 'a', priority: 'CRITICAL', min_tps: 50, demand: { kind: 'step', tps: 100, at_s: 30, to_tps: 250 }, noise: 0.1 },
    { name: 'b', priority: 'LOW', demand: { kind: 'trace', points: [[0, 100], [60, 300]] } },
  ],
}));

test('tpsd sim --json prints the metrics of SCENARIOS.md', async () => {
  const { code, out } = await capture(['--scenario', file, '--policy', 'fair', '--json']);
  assert.equal(code, 0);
  const m = JSON.parse(out);
  for (const key of ['scenario', 'policy', 'utilization', 'served_ratio', 'violations', 'fulfillment', 'min_guarantee_met', 'queue_p99_ms', 'reward']) {
    assert.ok(key in m, key);
  }
  // Extra: late violations and the ticks with violations, [tick, count, late].
  assert.equal(typeof m.violations_late, 'number');
  assert.ok(Array.isArray(m.violations_by_tick));
  assert.equal(m.violations_by_tick.reduce((a: number, v: number[]) => a + v[1], 0), m.violations);
  assert.equal(m.scenario, 'small');
  assert.deepEqual(Object.keys(m.fulfillment), ['CRITICAL', 'LOW']);
});

test('tpsd sim --policy all prints a side-by-side table; bad input exits non-zero', async () => {
  const { code, out } = await capture(['--scenario', file, '--policy', 'all', '--seed', '3']);
  assert.equal(code, 0);
  assert.match(out.split('\n')[0], /static\s+proportional\s+fair\s+aimd\s+baseline\s+ppo/);
  assert.doesNotMatch(out, /slo_met|timeouts/, 'latency rows only for a latency-limited upstream');
  assert.equal((await capture(['--scenario', file, '--policy', 'nope'])).code, 2);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ name: 'x', duration_s: 10, capacity_tps: 10, services: [{ priority: 'URGENT', demand: { kind: 'wave' } }] }));
  const bad = await capture(['--scenario', join(dir, 'bad.json')]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /services\[0\]\.priority/);
  assert.match(bad.err, /services\[0\]\.demand\.kind/);
});

test('tpsd sim on a latency-limited upstream adds timeouts and slo_met, in the table and the JSON', async () => {
  const slow = join(dir, 'slow.json');
  writeFileSync(slow, JSON.stringify({
    name: 'slow', seed: 4, duration_s: 30, capacity_tps: 500, slo_ms: 200,
    upstream_latency: { base_ms: 20, knee_tps: 300, timeout_ms: 1000 },
    services: [{ name: 'a', priority: 'HIGH', demand: { kind: 'constant', tps: 400 } }],
  }));
  const table = await capture(['--scenario', slow, '--policy', 'fair']);
  assert.equal(table.code, 0);
  assert.match(table.out, /^timeouts\s+\d+$/m);
  assert.match(table.out, /^slo_met\s+[01]\.\d{3}$/m);
  const m = JSON.parse((await capture(['--scenario', slow, '--policy', 'fair', '--json'])).out);
  assert.ok(m.timeouts > 0, 'the first tick, at capacity_tps past the knee, times out');
  assert.ok(m.slo_met > 0.8 && m.slo_met <= 1, `${m.slo_met}`);
});

test('tpsd sim --policy oracle (simulator only) and --reward paid', async () => {
  const m = JSON.parse((await capture(['--scenario', file, '--policy', 'oracle', '--json'])).out);
  assert.equal(m.policy, 'oracle');
  const paid = JSON.parse((await capture(['--scenario', file, '--policy', 'oracle', '--reward', 'paid', '--json'])).out);
  assert.ok(paid.reward <= m.reward, 'the paid reward charges more for the same run');
  const all = await capture(['--scenario', file, '--policy', 'all']);
  assert.doesNotMatch(all.out.split('\n')[0], /oracle/, '`all` is the daemon\'s policies');
  assert.equal((await capture(['--scenario', file, '--reward', 'free'])).code, 2);
});
