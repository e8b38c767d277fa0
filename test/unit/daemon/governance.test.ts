// Governance's rules without a daemon: the step of a change, op 18's
// request shapes, the tier gate (the level is the reference, so a ramp cannot
// creep; one pending per tier, replaced only by a rise beyond it by the
// ratio; a rejected rise not asked again below the ratio; approval moves the
// level), the cap on pending changes, and nothing at all when it is off.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { Governance, MAX_PENDING, stepOf } from '../../../src/daemon/governance.ts';
import { LimitsError, LiveLimits, type LimitEntry } from '../../../src/daemon/live-limits.ts';
import { parseApprovals } from '../../../src/io/admin-op.ts';
import type { AdminRequest } from '../../../src/io/messages.ts';
import { ErrorCode } from '../../../src/protocol/errors.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { ApprovalStore } from '../../../src/storage/approvals.ts';
import { openDatabase } from '../../../src/storage/db.ts';
import { tempDir } from '../../fixtures/daemon.ts';

const quiet = { info() {}, warn() {} };
/** The controller's side of LiveLimits: nothing to apply in these tests. */
const noTarget = { setLimits() {} };

function setup(services: number, ratio: { value: number | null }, store: ApprovalStore | null = null) {
  const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 2_000_000, services: [
    { name: 't', priority: 'HIGH', max_tps: 5000, tenants: { tiers: [{ name: 'free', priority: 'LOW', tps: 10 }] } },
    ...Array.from({ length: services }, (_, i) => ({ name: `s${i}`, priority: 'LOW', max_tps: 1000 })),
  ] }] }, {});
  const keys = KeyIndex.fromConfig(config);
  const limits = new LiveLimits(keys, noTarget, null, quiet);
  const gov = new Governance(keys, () => limits, () => ratio.value, store, quiet);
  return { keys, limits, gov, tier: keys.find('p/t/~free') };
}
const set = (key: string, changes: Record<string, unknown>): AdminRequest =>
  ({ op: 'limits', action: 'set', key, changes, fields: [], actor: 'test' });
const pendingOf = (gov: Governance) => (gov.answer('list', null, 'test') as { pending: { id: string; new: Record<string, number> }[] }).pending;

describe('governance', () => {
  it('measures the largest step of the numeric fields, both ways; from or to 0 is unbounded', () => {
    assert.equal(stepOf({ max_tps: 100 }, { max_tps: 250 }), 2.5);
    assert.equal(stepOf({ max_tps: 100 }, { max_tps: 25 }), 4);
    assert.equal(stepOf({ min_tps: 0, max_tps: 10 }, { min_tps: 5, max_tps: 10 }), Infinity);
    assert.equal(stepOf({ priority: 'LOW', max_tps: 10 }, { priority: 'HIGH', max_tps: 12 }), 1.2);
    assert.equal(stepOf({ priority: 'LOW' }, { priority: 'CRITICAL' }), 1);
  });

  it('reads op 18 requests and refuses every other shape', () => {
    assert.deepEqual(parseApprovals([18, 1, 'list']), { op: 'approvals', action: 'list', key: null, changes: {}, fields: [] });
    assert.equal((parseApprovals([18, 1, 'approve', 'chg_x']) as AdminRequest).changeId, 'chg_x');
    for (const bad of [[18, 1], [18, 1, 'list', 'x'], [18, 1, 'approve'], [18, 1, 'reject', 5], [18, 1, 'approve', ''],
      [18, 1, 'approve', 'x'.repeat(65)], [18, 1, 'approve', 'a', 'b'], [18, 1, 'delete', 'a'], [18, 1, { list: 1 }]]) {
      assert.equal(typeof parseApprovals(bad), 'string', JSON.stringify(bad));
    }
  });

  it('lets a tier move up to ratio x its level, holds more at that ceiling, one pending per tier', () => {
    const { gov, tier } = setup(0, { value: 2 });
    assert.equal(gov.admit(tier, 100), 100, 'the first cap is the level');
    assert.equal(gov.admit(tier, 190), 190);
    assert.equal(gov.admit(tier, 360), 200, 'no creep: measured against the level, not last tick');
    const [first] = pendingOf(gov);
    assert.deepEqual(first.new, { allocation_tps: 360 });
    assert.equal(gov.admit(tier, 700), 200);
    assert.deepEqual(pendingOf(gov).map((p) => p.id), [first.id], 'within the pending one times the ratio: unchanged');
    assert.equal(gov.admit(tier, 800), 200);
    const [second] = pendingOf(gov);
    assert.notEqual(second.id, first.id, 'beyond it: replaced under a new id');
    assert.equal(gov.admit(tier, 10), 10, 'falls are never held');
    assert.equal(pendingOf(gov).length, 1);

    gov.answer('reject', second.id, 'admin');
    assert.equal(gov.admit(tier, 1500), 200);
    assert.equal(pendingOf(gov).length, 0, 'a rejected rise is not asked again below it times the ratio');
    assert.equal(gov.admit(tier, 1700), 200);
    const [third] = pendingOf(gov);
    gov.answer('approve', third.id, 'admin');
    assert.equal(gov.admit(tier, 3000), 3000, 'the approved value is the new level');
    assert.equal(gov.admit(tier, 3500), 3400);
    assert.throws(() => gov.answer('approve', third.id, 'admin'), (e: LimitsError) => e.code === ErrorCode.UNKNOWN_KEY);
  });

  it('holds at most MAX_PENDING operator changes, then answers OVERLOADED; the same key replaces', () => {
    const { gov, limits } = setup(MAX_PENDING + 1, { value: 2 });
    for (let i = 0; i < MAX_PENDING; i++) assert.ok(gov.screen(set(`p/s${i}`, { max_tps: 1 })) !== null);
    assert.ok(gov.screen(set('p/s0', { max_tps: 2 })) !== null, 'the same key replaces, at the cap too');
    assert.equal(gov.size, MAX_PENDING);
    assert.throws(() => gov.screen(set(`p/s${MAX_PENDING}`, { max_tps: 1 })), (e: LimitsError) => e.code === ErrorCode.OVERLOADED);
    assert.equal(gov.screen(set(`p/s${MAX_PENDING}`, { max_tps: 600 })), null, 'a small change still passes');
    assert.equal(gov.screen(set('p/s1', { max_tps: 5, min_tps: 10 })), null, 'an invalid one is left to LiveLimits to refuse');
    assert.equal((limits.get('p/s1') as LimitEntry).effective.max_tps, 1000, 'nothing held was applied');
    const rm = (fields: string[]): AdminRequest => ({ op: 'limits', action: 'rm', key: `p/s${MAX_PENDING}`, changes: {}, fields, actor: 'test' });
    for (const f of ['constructor', '__proto__', 'toString', 'burst']) assert.equal(gov.screen(rm([f])), null, `rm of "${f}" is left to LiveLimits`);
  });

  it('a database that fails under the tick does not stop it: the tier stays at its ceiling, the rise is kept in memory', () => {
    const db = openDatabase(tempDir());
    const { gov, tier } = setup(1, { value: 2 }, new ApprovalStore(db));
    assert.equal(gov.admit(tier, 100), 100);
    db.close();
    assert.equal(gov.admit(tier, 500), 200);
    assert.equal(pendingOf(gov).length, 1, 'listed, to be decided');
    assert.throws(() => gov.screen(set('p/s0', { max_tps: 1 })), /database connection is not open/, 'an operator\'s change is refused, not held unpersisted');
  });

  it('judges an rm by the configured values it falls back to', () => {
    const { gov, limits } = setup(1, { value: 2 });
    limits.set('p/s0', { max_tps: 600 }, 'test');
    limits.set('p/s0', { max_tps: 400 }, 'test');
    const rm: AdminRequest = { op: 'limits', action: 'rm', key: 'p/s0', changes: {}, fields: [], actor: 'test' };
    const held = gov.screen(rm) as { held: { old: object; new: object; step: number }; effective: { max_tps: number } };
    assert.deepEqual([held.held.old, held.held.new, held.held.step, held.effective.max_tps], [{ max_tps: 400 }, { max_tps: 1000 }, 2.5, 400]);
    const [p] = pendingOf(gov);
    gov.answer('approve', p.id, 'admin');
    assert.equal((limits.get('p/s0') as LimitEntry).effective.max_tps, 1000, 'approved: the override is gone');
  });

  it('does nothing when off', () => {
    const { gov, tier } = setup(1, { value: null });
    assert.equal(gov.screen(set('p/s0', { max_tps: 1 })), null);
    assert.equal(gov.admit(tier, 100), 100);
    assert.equal(gov.admit(tier, 100_000), 100_000);
    assert.equal(gov.size, 0);
  });
});
