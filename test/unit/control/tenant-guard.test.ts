// The surge and abuse defence on the main thread (control/tenant-guard.ts)
// over a real shared-memory tenant table and per-tenant counters: an attacker is
// held at its tier's defensive rate, a tenant that stops is lifted after the
// cool-down and not limited again for being still classed attack, a limit an
// admin's tier change overwrote is put back, and a forgotten tenant's state
// and limit go with its slot (the next tenant there starts clean).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { ATTACK, NORMAL } from '../../../src/control/surge-detector.ts';
import { TenantGuard } from '../../../src/control/tenant-guard.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm, tenantSlotsFor } from '../../../src/shm/layout.ts';
import { TC_OWN_DENIED, TC_REQUESTED, TenantCounterReader, TenantCounters, allocateTenantCounters, tenantCounterViews } from '../../../src/shm/tenant-counters.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';

const config = validateConfig({ pools: [{ name: 'p', capacity_tps: 5000, services: [{ name: 's', priority: 'LOW', max_tps: 5000,
  tenants: { tiers: [{ name: 'std', priority: 'LOW', tps: 20, burst: 4, defense: { tps_fraction: 0.25, cooldown_s: 3 } }], max: 8, idle_s: 1 } }] }] }, {});
const keys = KeyIndex.fromConfig(config);
const SERVICE = keys.find('p/s');
const TIER = keys.find('p/s/~std');

function setup() {
  const slots = tenantSlotsFor(8);
  const views = allocateShm(keys.size, 1, slots);
  const cv = tenantCounterViews(allocateTenantCounters(slots, 1), slots, 1);
  const counters = new TenantCounters(cv, 0);
  const reader = new TenantCounterReader(cv);
  // As an I/O thread counts a tenant's acquires, and as the controller's tick sweeps before the guard runs.
  const activity = {
    asked: (slot: number, tokens: number) => counters.count(slot, TC_REQUESTED, tokens),
    denied: (slot: number, tokens: number) => counters.count(slot, TC_OWN_DENIED, tokens),
  };
  const table = new TenantTable(views);
  const guard = new TenantGuard(keys, views, reader);
  const tick = (dtS: number, nowMs: number): void => { reader.sweep(); guard.tick(dtS, nowMs); };
  const make = (name: string, nowMs: number): number => {
    const b = new TextEncoder().encode(name);
    const slot = table.create(SERVICE, b, 0, b.length, table.hash(SERVICE, b, 0, b.length), 8, TIER, 20_000, 4_000, nowMs);
    assert.ok(slot >= 0);
    return slot;
  };
  return { table, activity, guard, tick, make };
}

describe('tenant guard', () => {
  it('holds an attacker at tps_fraction of its tier, lifts it cooldown_s after it stopped, and does not limit it again while it is quiet', () => {
    const { table, activity, guard, tick, make } = setup();
    const slot = make('mallory', 0);
    let now = 0;
    let events: string[] = [];
    const tickWith = (asked: number, denied: number) => {
      if (asked > 0) { activity.asked(slot, asked); activity.denied(slot, denied); }
      now += 1000;
      tick(1, now);
      events.push(...guard.events.filter((e) => e.key === 'p/s/mallory').map((e) => `${e.action} ${e.from}->${e.to}`));
    };
    for (let k = 0; k < 3; k++) tickWith(600, 580);
    assert.equal(guard.detector.classOf(slot), ATTACK);
    assert.equal(table.rateMilli(slot), 5_000, '0.25 x 20 tokens/s');
    assert.deepEqual(events, ['classify normal->attack', 'defend 20->5']);
    events = [];
    assert.equal(guard.tiers[0].defended, 1);
    assert.equal(guard.services[0].cls, ATTACK, 'all of the service\'s asks are the attacker\'s');
    // An admin's tier change writes the tier's rate; the next tick puts the defensive one back.
    table.setTier(slot, TIER, 20_000, 4_000, now);
    tickWith(600, 590);
    assert.equal(table.rateMilli(slot), 5_000);
    // It stops: still classed attack for a while, the limit holds for cooldown_s from its last attacking tick, then lifts.
    tickWith(0, 0);
    tickWith(0, 0);
    assert.equal(table.rateMilli(slot), 5_000);
    tickWith(0, 0);
    assert.equal(table.rateMilli(slot), 20_000, 'lifted 3 s after the last attacking tick');
    assert.deepEqual(events, ['lift 5->20']);
    assert.equal(guard.tiers[0].lifted, 1);
    assert.equal(guard.tiers[0].defended, 0);
    for (let k = 0; k < 3; k++) tickWith(0, 0);
    assert.equal(table.rateMilli(slot), 20_000, 'not limited again for its old class');
    assert.equal(guard.tiers[0].applied, 1);
  });

  it('lets a forgotten tenant\'s class and limit go with its slot', () => {
    const { table, activity, guard, tick, make } = setup();
    const slot = make('mallory', 0);
    for (let t = 1; t <= 3; t++) { activity.asked(slot, 600); activity.denied(slot, 590); tick(1, t * 1000); }
    assert.equal(guard.tiers[0].defended, 1);
    assert.equal(guard.tiers[0].current[ATTACK], 1);
    // Idle past idle_s: retired at one sweep, emptied at the next.
    table.sweep(10_000, () => 1000);
    table.sweep(10_100, () => 1000);
    assert.equal(table.isLive(slot), false);
    tick(1, 11_000);
    assert.equal(guard.tiers[0].defended, 0);
    assert.equal(guard.tiers[0].current[ATTACK], 0);
    const again = make('mallory', 11_000);
    assert.equal(table.rateMilli(again), 20_000, 'made again at its tier\'s rate');
    activity.asked(again, 5);
    tick(1, 12_000);
    assert.equal(guard.detector.classOf(again), NORMAL, 'no history carried over');
    assert.equal(guard.tiers[0].defended, 0);
  });
});
