// `tpsd recommend` on a real SQLite file whose rows are written the way the
// daemon writes them (TelemetryStore.writeTick, one batch per 100 ms tick,
// a tick row every tick, no key row for an idle key whose limit did not
// change). Only stretches where demand pressed the limit and the upstream
// answered no 429 count; a history without one says it cannot show the
// upstream's limit and suggests no change.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/schema.ts';
import { KeyIndex } from '../../src/shm/key-index.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { ROW, ROW_FIELDS, TelemetryStore, type TickBatch } from '../../src/storage/telemetry-store.ts';
import { tempDir } from '../fixtures/daemon.ts';
import { runCli } from '../fixtures/telemetry.ts';

const TICK_MS = 100;
const config = validateConfig({
  tick_ms: TICK_MS,
  pools: [{ name: 'up', capacity_tps: 100, services: [{ name: 'svc', priority: 'HIGH', max_tps: 100 }] }],
}, {});

/** What one key did in one tick (tokens). */
interface KeyTick { requested: number; granted: number; denied?: number; throttled?: number; limitTps: number }

/** Writes `ticks` 100 ms ticks ending now; `at(i)` is svc's tick i (null: idle). The pool row mirrors svc. */
function writeHistory(dir: string, ticks: number, at: (i: number) => KeyTick | null): void {
  const db = openDatabase(dir);
  const keys = KeyIndex.fromConfig(config);
  const store = new TelemetryStore(db, keys);
  const pool = keys.specs.find((s) => s.key === 'up')!.index;
  const svc = keys.specs.find((s) => s.key === 'up/svc')!.index;
  const start = Date.now() - ticks * TICK_MS;
  const lastLimit = new Map<number, number>();
  for (let i = 0; i < ticks; i++) {
    const k = at(i);
    const buckets: number[] = [];
    const values = new Float64Array(2 * ROW_FIELDS);
    for (const b of [pool, svc]) {
      // The daemon leaves out an idle key whose limit did not change.
      if (k === null && lastLimit.has(b)) continue;
      const o = buckets.length * ROW_FIELDS;
      const limit = k?.limitTps ?? lastLimit.get(svc) ?? 100;
      values[o + ROW.REQUESTED] = k?.requested ?? 0;
      values[o + ROW.GRANTED] = k?.granted ?? 0;
      values[o + ROW.DENIED] = k?.denied ?? 0;
      values[o + ROW.OK] = (k?.granted ?? 0) - (k?.throttled ?? 0);
      values[o + ROW.THROTTLED] = k?.throttled ?? 0;
      values[o + ROW.LATENCY_SUM_US] = (k?.granted ?? 0) * 20_000;
      values[o + ROW.LATENCY_COUNT] = k?.granted ?? 0;
      values[o + ROW.LIMIT_TPS] = limit;
      lastLimit.set(b, limit);
      buckets.push(b);
    }
    store.writeTick({
      tsMs: start + (i + 1) * TICK_MS, tick: i + 1, dtMs: TICK_MS, durationMs: 0.2, mode: 'fair', model: 'none',
      count: buckets.length, buckets: Int32Array.from(buckets), values: values.slice(0, buckets.length * ROW_FIELDS),
      decisions: [], decisionValues: new Float64Array(0),
    } satisfies TickBatch);
  }
  db.close();
}

/** A seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rec {
  key: string;
  recommendation: { verdict: string; sustainedTps: number | null; optimalTps: number | null; applyTps: number | null;
    evidence: { pressedSamples: number; busiestTps: number; note: string } };
}

async function recommendJson(dir: string, key: string): Promise<Rec> {
  const r = await runCli(['recommend', key, '--data', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const [rec] = JSON.parse(r.stdout) as Rec[];
  return rec;
}

describe('tpsd recommend', () => {
  it('bursty demand with idle gaps under a 100/s upstream: demand-limited, no cut suggested', async () => {
    // 10 minutes: bursts of 3-7 s at 100-150/s offered against tpsd's 100/s
    // (what is above 100/s is denied), then 4-9 s idle. No upstream 429.
    const dir = tempDir();
    const next = rng(15);
    const plan: (KeyTick | null)[] = [];
    while (plan.length < 6000) {
      const burst = 30 + Math.floor(next() * 40), idle = 40 + Math.floor(next() * 50);
      for (let i = 0; i < burst; i++) {
        const requested = 10 + Math.floor(next() * 6);
        plan.push({ requested, granted: Math.min(10, requested), denied: Math.max(0, requested - 10), limitTps: 100 });
      }
      for (let i = 0; i < idle; i++) plan.push(null);
    }
    writeHistory(dir, 6000, (i) => plan[i]);

    const text = await runCli(['recommend', '--data', dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.doesNotMatch(text.stdout, /apply: tpsd limits set/, 'no limit change suggested');
    assert.match(text.stdout, /up\/svc: .*demand-limited/);
    assert.match(text.stdout, /the history does not show the upstream's limit/);
    assert.match(text.stdout, /no change suggested/);

    const rec = await recommendJson(dir, 'up/svc');
    assert.equal(rec.recommendation.verdict, 'demand-limited');
    assert.equal(rec.recommendation.applyTps, null);
    assert.equal(rec.recommendation.sustainedTps, null);
    assert.ok(rec.recommendation.evidence.busiestTps > 30 && rec.recommendation.evidence.busiestTps < 70,
      `the busiest minute averaged its idle gaps: ${rec.recommendation.evidence.busiestTps}`);
    assert.ok(rec.recommendation.evidence.pressedSamples > 1000, 'the bursts pressed the limit');
  });

  it('steady demand above the limit with 429s at a higher limit: 95 % of the best pressed 429-free stretch', async () => {
    // 3 min pressing a 200/s limit without 429s, then 2 min at 300/s with 429s, then idle.
    const dir = tempDir();
    writeHistory(dir, 3000 + 600, (i) => {
      if (i < 1800) return { requested: 25, granted: 20, denied: 5, limitTps: 200 };
      if (i < 3000) return { requested: 35, granted: 30, denied: 5, throttled: 3, limitTps: 300 };
      return null;
    });
    const rec = await recommendJson(dir, 'up/svc');
    assert.equal(rec.recommendation.verdict, 'measured');
    assert.ok(Math.abs(rec.recommendation.sustainedTps! - 200) < 1e-6, String(rec.recommendation.sustainedTps));
    assert.ok(Math.abs(rec.recommendation.applyTps! - 190) < 1e-6);
    const text = await runCli(['recommend', 'up/svc', '--data', dir]);
    assert.match(text.stdout, /apply: tpsd limits set up\/svc --max-tps 190/);
  });

  it('demand pressing the limit and never a 429: the figures are a floor, no cut suggested', async () => {
    const dir = tempDir();
    writeHistory(dir, 1200, () => ({ requested: 12, granted: 10, denied: 2, limitTps: 100 }));
    const rec = await recommendJson(dir, 'up/svc');
    assert.equal(rec.recommendation.verdict, 'upstream-limit-not-seen');
    assert.ok(Math.abs(rec.recommendation.sustainedTps! - 100) < 1e-6);
    assert.equal(rec.recommendation.applyTps, null);
    const text = await runCli(['recommend', 'up/svc', '--data', dir]);
    assert.doesNotMatch(text.stdout, /apply: tpsd limits set/);
    assert.match(text.stdout, /no change suggested/);
  });
});
