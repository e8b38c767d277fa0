// Revenue-aware tiers (control/tier-split.ts, water-fill.ts): a tier's
// value_per_request orders the tiers of one priority class (the more
// valuable one's demand filled first) and divides the class's slack in
// proportion to value; priority still comes first, guarantees hold, a tier
// without a value counts as its service's lowest, a service without values
// is divided exactly as the code before them divided it (a fingerprint of
// 1200 seeded splits, recorded on 5fe6376).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { TierSplit, tierValues } from '../../../src/control/tier-split.ts';
import { waterFill } from '../../../src/control/water-fill.ts';
import { Rng } from '../../../src/ppo/rng.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { splitFingerprint } from '../../fixtures/tier-split-cases.ts';
import { pool, service } from './helpers.ts';

/** splitFingerprint() of the code before value_per_request was used (5fe6376, /tmp script over that checkout). */
const FINGERPRINT_BEFORE = 'facae5521fe0e755337f60eda84002b7c337fed1f95038579089e311baac73cf';

/** The tier group of service p/s with these tiers (each: name, priority, optional value_per_request). */
function group(tiers: Record<string, unknown>[]) {
  const config = validateConfig({
    log: { level: 'silent' },
    pools: [{ name: 'p', capacity_tps: 10_000, services: [{ name: 's', priority: 'HIGH', max_tps: 10_000,
      tenants: { tiers: tiers.map((t) => ({ tps: 100, ...t })), max: 10 } }] }],
  }, {});
  return new TierSplit(KeyIndex.fromConfig(config)).groups[0];
}

const split = (tiers: Record<string, unknown>[], reach: number, demand: number[]): number[] =>
  Array.from(TierSplit.divide(group(tiers), reach, demand, demand.map(() => 0)), (x) => Math.round(x * 1000) / 1000);

describe('tier split by value per request', () => {
  it('divides a service none of whose tiers sets a value exactly as before (and all-equal values the same)', () => {
    assert.equal(splitFingerprint({ validateConfig, KeyIndex, TierSplit, Rng }), FINGERPRINT_BEFORE);
    class EqualValues extends TierSplit {
      constructor(keys: KeyIndex) {
        super(keys);
        this.groups.forEach((g, i) => { this.groups[i] = { ...g, values: new Float64Array(g.tiers.length).fill(2.5) }; });
      }
    }
    assert.equal(splitFingerprint({ validateConfig, KeyIndex, TierSplit: EqualValues, Rng }), FINGERPRINT_BEFORE,
      'equal values take the value path and divide as without');
  });

  it('fills the more valuable tier\'s demand first within a class', () => {
    const tiers = [{ name: 'basic', priority: 'HIGH', value_per_request: 1 }, { name: 'plus', priority: 'HIGH', value_per_request: 5 }];
    assert.deepEqual(split(tiers, 100, [80, 80]), [20, 80]);
    assert.deepEqual(split(tiers.map(({ name, priority }) => ({ name, priority })), 100, [80, 80]), [50, 50], 'without values: max-min');
  });

  it('keeps priority first: a CRITICAL tier of low value before a LOW tier of high value', () => {
    const tiers = [{ name: 'cheap', priority: 'CRITICAL', value_per_request: 1 }, { name: 'rich', priority: 'LOW', value_per_request: 100 }];
    assert.deepEqual(split(tiers, 100, [80, 80]), [80, 20]);
  });

  it('gives the slack within a class by value, the classes keeping their class weights', () => {
    const tiers = [
      { name: 'crit', priority: 'CRITICAL', value_per_request: 1 },
      { name: 'pro', priority: 'HIGH', value_per_request: 3 },
      { name: 'std', priority: 'HIGH', value_per_request: 1 },
    ];
    // Nobody asks: all 160 is slack. Weights 8 : 4 x 1.5 : 4 x 0.5 (without values 8 : 4 : 4).
    assert.deepEqual(split(tiers, 160, [0, 0, 0]), [80, 60, 20]);
    assert.deepEqual(split(tiers.map(({ name, priority }) => ({ name, priority })), 160, [0, 0, 0]), [80, 40, 40]);
  });

  it('counts a tier without a value as its service\'s lowest; a tier of value 0 gets slack only when the others are full', () => {
    const values = tierValues(group([
      { name: 'a', priority: 'HIGH', value_per_request: 4 }, { name: 'b', priority: 'HIGH' }, { name: 'c', priority: 'LOW', value_per_request: 2 },
    ]).tiers);
    assert.deepEqual(Array.from(values!), [4, 2, 2]);
    assert.equal(tierValues(group([{ name: 'a', priority: 'HIGH' }]).tiers), null);
    const zero = [{ name: 'free', priority: 'HIGH', value_per_request: 0 }, { name: 'paid', priority: 'HIGH', value_per_request: 1 }];
    assert.deepEqual(split(zero, 100, [0, 0]), [0, 100]);
    const allZero = [{ name: 'x', priority: 'HIGH', value_per_request: 0 }, { name: 'y', priority: 'HIGH', value_per_request: 0 }];
    assert.deepEqual(split(allZero, 100, [0, 0]), [50, 50]);
  });

  it('divides as docs/tenants.md\'s example says', () => {
    const tiers = (values: boolean) => [
      { name: 'enterprise', priority: 'CRITICAL', tps: 120, ...(values ? { value_per_request: 2 } : {}) },
      { name: 'pro', priority: 'HIGH', tps: 40, ...(values ? { value_per_request: 3 } : {}) },
      { name: 'plus', priority: 'HIGH', tps: 40, ...(values ? { value_per_request: 1 } : {}) },
      { name: 'free', priority: 'LOW', tps: 10 },
    ];
    assert.deepEqual(split(tiers(true), 500, [100, 300, 300, 50]).map(Math.round), [100, 300, 100, 0]);
    assert.deepEqual(split(tiers(false), 500, [100, 300, 300, 50]).map(Math.round), [100, 200, 200, 0]);
    assert.deepEqual(split(tiers(true), 500, [0, 0, 0, 0]).map(Math.round), [235, 176, 59, 29]);
    assert.deepEqual(split(tiers(false), 500, [0, 0, 0, 0]).map(Math.round), [235, 118, 118, 29]);
  });

  it('honours guarantees whatever the values, and never hands out more than there is', () => {
    const obs = pool(300, [
      service({ priority: 1, demandTps: 400, minTps: 120 }),
      service({ priority: 1, demandTps: 400 }),
      service({ priority: 3, demandTps: 400, minTps: 50 }),
    ], { stepCap: Number.MAX_VALUE, stepFloorTps: 300 });
    const a = waterFill(obs, [400, 400, 400], [0.1, 10, 0.01]);
    assert.ok(a[0] >= 120 - 1e-9, `guaranteed 120, got ${a[0]}`);
    assert.ok(a[2] >= 50 - 1e-9, `guaranteed 50, got ${a[2]}`);
    assert.ok(Math.abs(a[0] + a[1] + a[2] - 300) < 1e-6);
    assert.deepEqual(Array.from(a, Math.round), [120, 130, 50]);
  });
});
