// `tpsd status` rendering (golden output) and the terminal helpers the verbs share.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/cli/args.ts';
import { render } from '../../../src/cli/status.ts';
import { bar, num, parseDuration, sparkline, table } from '../../../src/cli/terminal.ts';
import type { StatusSnapshot } from '../../../src/io/status.ts';

const k = (key: string, kind: string, priority: string | null, limit: number, tps: number, demand: number, denied: number, queue: number, inf: number, conc = 0) => ({
  key, pool: 'payments', kind, priority, limit_tps: limit, burst: 10, tps, demand_tps: demand, denied_tps: denied, throttled_tps: 0, failed_tps: 0,
  latency_avg_us: 0, queue, in_flight: inf, concurrency: conc, remaining: 5, capacity_tps: 1500, effective_capacity_tps: 1200, mode: 'ppo' });

const GOLDEN = `tpsd/0.1.0 at ws://127.0.0.1:7070  mode ppo  tick 42 (every 1000 ms)  up 62.1m
POOL      CAPACITY  EFFECTIVE  MODE  TPS  DEMAND  UTIL
payments      1500       1200  ppo   600     750  █████░░░░░  50%

KEY                           PRIO      LIMIT   TPS  DEMAND  DENIED  429/S  QUEUE    INFL  UTIL
payments                      -          1176   600     750     150      0      0      12  █████░░░░░  51%
  payments/checkout           CRITICAL    800   400     420      20      0      3  12/100  █████░░░░░  50%
    payments/checkout/refund  CRITICAL     50  12.5    12.5       0      0      0       0  ███░░░░░░░  25%
  payments/reporting          LOW           0     0     330     330      0     25       0  ░░░░░░░░░░   0%
`;

describe('tpsd status rendering', () => {
  it('prints the pool summary and one aligned row per key with a utilisation bar', () => {
    const snapshot = {  server: 'tpsd/0.1.0', v: 1, mode: 'ppo', tick_ms: 1000, tick: 42, io_thread: 0, uptime_s: 3725,
  pools: [{ name: 'payments', capacity_tps: 1500, effective_capacity_tps: 1200, mode: 'ppo', tps: 600, demand_tps: 750 }],
  keys: [k('payments', 'pool', null, 1176, 600, 750, 150, 0, 12), k('payments/checkout', 'service', 'CRITICAL', 800, 400, 420, 20, 3, 12, 100),
    k('payments/checkout/refund', 'endpoint', 'CRITICAL', 50, 12.5, 12.5, 0, 0, 0), k('payments/reporting', 'service', 'LOW', 0, 0, 330, 330, 25, 0)] } as unknown as StatusSnapshot;
    assert.equal(render(snapshot, 'ws://127.0.0.1:7070'), GOLDEN);
  });
});

describe('terminal helpers', () => {
  it('parse durations and refuse anything else', () => {
    assert.equal(parseDuration('1h', 'since'), 3_600_000);
    assert.equal(parseDuration('1h30m', 'since'), 5_400_000);
    assert.equal(parseDuration('500ms', 'x'), 500);
    assert.equal(parseDuration('2d', 'x'), 172_800_000);
    for (const bad of ['', '1', 'h', '1y', '-1h', '1h foo']) assert.throws(() => parseDuration(bad, 'since'), UsageError, bad);
  });

  it('draw sparklines, bars, numbers and tables', () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█');
    assert.equal(sparkline([0, 0]), '▁▁');
    assert.equal(sparkline([1, Number.NaN]), '█ ');
    assert.equal(bar(0.5), '█████░░░░░  50%');
    assert.equal(bar(2), '██████████ 200%');
    assert.deepEqual([num(0), num(12.34), num(1234), num(12345), num(2_500_000), num(Number.NaN)], ['0', '12.3', '1234', '12.3k', '2.5M', '-']);
    assert.equal(table([['A', 'BB'], ['ccc', '1']], new Set([1])), 'A    BB\nccc   1\n');
  });
});
