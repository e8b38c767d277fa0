// A thread's allowance of tenant tokens (src/io/tenant-allowance.ts) over a
// real tenant table: within one millisecond it grants exactly what the
// bucket holds, never more, however the takes fall into chunks; what it kept
// goes back at the next millisecond or a flush; a slow tenant is never
// chunked; a forgotten tenant's kept tokens are not given to the slot.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TenantAllowance } from '../../../src/io/tenant-allowance.ts';
import { MILLI, allocateShm, tenantSlotsFor } from '../../../src/shm/layout.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';

const SERVICE = 1;
const TIER = 2;

function tenant(rateMilli: number, burstMilli: number, now: number) {
  const views = allocateShm(4, 1, tenantSlotsFor(10));
  const table = new TenantTable(views);
  const b = new TextEncoder().encode('acme');
  const slot = table.create(SERVICE, b, 0, b.length, table.hash(SERVICE, b, 0, b.length), 10, TIER, rateMilli, burstMilli, now);
  assert.ok(slot >= 0);
  return { table, slot, word: table.lastWord, gen: table.lastGen };
}

/** Milli-tokens in the bucket (whole tokens: remaining() x MILLI). */
const inBucket = (t: TenantTable, slot: number) => t.remaining(slot) * MILLI;

describe('tenant allowance', () => {
  it('grants within a millisecond exactly what the bucket holds, and gives back what it kept', () => {
    const now = 100;
    const { table, slot, word, gen } = tenant(1000 * MILLI, 1000 * MILLI, now);
    const a = new TenantAllowance(table);
    let granted = 0;
    for (let i = 0; i < 5000; i++) if (a.take(slot, word, gen, MILLI, now)) granted++;
    assert.equal(granted, 1000, 'the burst, not a token more');
    assert.equal(inBucket(table, slot), 0);
    // A fresh start: 600 takes, some of it kept in chunks, then the millisecond ends.
    const { table: t2, slot: s2, word: w2, gen: g2 } = tenant(0, 1000 * MILLI, now);
    const a2 = new TenantAllowance(t2);
    for (let i = 0; i < 600; i++) assert.ok(a2.take(s2, w2, g2, MILLI, now));
    assert.ok(a2.holds());
    assert.ok(inBucket(t2, s2) < 400 * MILLI, 'chunks were taken');
    a2.flush(now + 1);
    assert.equal(inBucket(t2, s2), 400 * MILLI, 'what was kept is back: burst minus the grants');
  });

  it('never chunks a tenant whose bucket is small next to its acquires', () => {
    const now = 5;
    const { table, slot, word, gen } = tenant(10 * MILLI, 2 * MILLI, now);
    const a = new TenantAllowance(table);
    assert.ok(a.take(slot, word, gen, MILLI, now));
    assert.ok(a.take(slot, word, gen, MILLI, now));
    assert.equal(a.take(slot, word, gen, MILLI, now), false);
    a.flush(now + 1);
    assert.equal(inBucket(table, slot), 0, 'nothing was kept');
  });

  it('does not give a forgotten tenant\'s kept tokens to its slot', () => {
    const now = 7;
    const { table, slot, word, gen } = tenant(0, 1000 * MILLI, now);
    const a = new TenantAllowance(table);
    for (let i = 0; i < 10; i++) assert.ok(a.take(slot, word, gen, MILLI, now));
    const left = inBucket(table, slot);
    assert.ok(left < 990 * MILLI, 'some kept');
    // Forgotten (two sweeps), as idle.
    table.sweep(now + 10_000, () => 1);
    table.sweep(now + 10_000, () => 1);
    a.flush(now + 1);
    assert.equal(inBucket(table, slot), left, 'the slot got nothing back');
  });
});
