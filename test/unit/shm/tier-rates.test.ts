// A reload's new tier rates on the tenant table (TenantTable.setTierRates,
// daemon/reload.ts): every live tenant of the tier at the tier's old rate
// refills at the new one, one under a defensive limit keeps its rate, all
// take the new burst with what they hold trimmed to it, other tiers' tenants
// are untouched; a second pass (an I/O thread's, for tenants it made at the
// old rate before the change reached it) changes nothing more. Real shared
// memory, explicit times (ms), no timing. (A tenant made after the reload by
// an I/O thread: test/integration/reload-tenants.test.ts.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocateShm, tenantSlotsFor } from '../../../src/shm/layout.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';

const SERVICE = 1;
const TIER = 2;
const OTHER_TIER = 3;
const enc = (s: string) => new TextEncoder().encode(s);

function make(t: TenantTable, name: string, tier: number, rateMilli: number, burstMilli: number, now = 0): number {
  const b = enc(name);
  return t.create(SERVICE, b, 0, b.length, t.hash(SERVICE, b, 0, b.length), 100, tier, rateMilli, burstMilli, now);
}

/** Tokens granted one at a time from `slot` at `now` until refused. */
function drain(t: TenantTable, slot: number, now: number): number {
  let n = 0;
  while (t.take(slot, 1000, now)) n++;
  return n;
}

describe('tier rates changed by a reload', () => {
  it('moves the tier\'s tenants to the new rate and burst, keeps a defensive rate, leaves other tiers alone', () => {
    const table = new TenantTable(allocateShm(4, 1, tenantSlotsFor(100)));
    const a = make(table, 'a', TIER, 10_000, 8_000);
    const b = make(table, 'b', TIER, 10_000, 8_000);
    const held = make(table, 'held', TIER, 10_000, 8_000);
    table.setTier(held, TIER, 1_000, 8_000, 0); // a defensive limit: 1/s
    const other = make(table, 'other', OTHER_TIER, 10_000, 8_000);
    assert.equal(drain(table, b, 0), 8, 'b empties its 8 tokens');

    const changed = table.setTierRates({ tier: TIER, fromRateMilli: 10_000, rateMilli: 40_000, burstMilli: 3_000 }, 0);
    assert.equal(changed, 3, 'a, b and held');
    assert.equal(table.rateMilli(a), 40_000);
    assert.equal(table.rateMilli(held), 1_000, 'a defensive limit stays (the guard recomputes it)');
    assert.equal([a, b, held].map((s) => table.burstMilli(s)).join(), '3000,3000,3000');
    assert.equal(table.rateMilli(other), 10_000, 'another tier');
    assert.equal(table.burstMilli(other), 8_000);
    assert.equal(drain(table, a, 0), 3, 'a held 8 tokens: trimmed to the new burst of 3');
    assert.equal(drain(table, b, 50), 2, 'b earns at 40/s: 2 tokens in 50 ms (10/s would give none)');
    assert.equal(drain(table, b, 1050), 3, 'and no more than the new burst');
    assert.equal(table.setTierRates({ tier: TIER, fromRateMilli: 10_000, rateMilli: 40_000, burstMilli: 3_000 }, 1050), 0, 'again: nothing to change');
  });
});
