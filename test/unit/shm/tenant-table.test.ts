// The tenant table (src/shm/tenant-table.ts): a tenant is made once however
// many threads make it at the same time, `max` bounds a service, idle tenants
// are forgotten after a grace sweep and their slots reused, and a lookup made
// just before its tenant was forgotten is recognised as stale (stillIs), so
// the tokens it took go back.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { TENANT_INDEX_FIELDS, TENANT_NEIGHBORHOOD_SLOTS, allocateShm, tenantSlotsFor, type ShmViews } from '../../../src/shm/layout.ts';
import { TENANT_BUSY, TENANT_FULL, TenantTable } from '../../../src/shm/tenant-table.ts';
import { THREAD_BOOTSTRAP } from '../../../src/shm/threads.ts';

const SERVICE = 1;
const TIER = 2;
const enc = (s: string) => new TextEncoder().encode(s);

function tableFor(maxTenants: number, threads = 1): { views: ShmViews; table: TenantTable } {
  const views = allocateShm(4, threads, tenantSlotsFor(maxTenants));
  return { views, table: new TenantTable(views) };
}

function make(t: TenantTable, name: string, max: number, now = 0, service = SERVICE): number {
  const b = enc(name);
  const h = t.hash(service, b, 0, b.length);
  const found = t.find(service, b, 0, b.length, h);
  return found >= 0 ? found : t.create(service, b, 0, b.length, h, max, TIER, 10_000, 5_000, now);
}

describe('tenant table', () => {
  it('waits for a claim of the same hash that a descheduled thread ends late, then makes the tenant (no spurious TENANT_BUSY)', async () => {
    const { views } = tableFor(100);
    // A generous bound (the daemon's is CLAIM_WAIT_MS): a loaded machine may deschedule the worker for milliseconds.
    const table = new TenantTable(views, 10_000);
    const b = enc('late');
    const h = table.hash(SERVICE, b, 0, b.length);
    const at = (h & (table.slots / TENANT_NEIGHBORHOOD_SLOTS - 1)) * TENANT_NEIGHBORHOOD_SLOTS * TENANT_INDEX_FIELDS;
    const tag = h & ~3;
    Atomics.store(views.tenantIndex, at, tag | 1); // CLAIMED (same hash) by a thread that stalls...
    const w = new Worker(THREAD_BOOTSTRAP, { workerData: {
      entry: new URL('../../fixtures/claim-ender-worker.ts', import.meta.url).href, index: views.tenantIndex, at, word: tag | 3, delayMs: 2 } });
    await new Promise((resolve) => w.once('message', resolve));
    // ...and gives it up 2 ms later (RETIRED): this thread waits for that, then makes the tenant in another slot.
    const slot = table.create(SERVICE, b, 0, b.length, h, 100, TIER, 10_000, 5_000, 0);
    await new Promise((resolve) => w.once('exit', resolve));
    assert.notEqual(slot, TENANT_BUSY);
    assert.ok(slot >= 0 && slot * TENANT_INDEX_FIELDS !== at);
    assert.equal(table.findByName(SERVICE, b), slot);
  });

  it('finds a tenant it made, by bytes, and not another service\'s of the same name', () => {
    const { table } = tableFor(100);
    const slot = make(table, 'acme', 100);
    assert.ok(slot >= 0);
    assert.equal(table.findByName(SERVICE, enc('acme')), slot);
    assert.equal(table.findByName(SERVICE + 1, enc('acme')), -1, 'another service');
    assert.equal(table.findByName(SERVICE, enc('acm')), -1);
    assert.equal(table.nameOf(slot), 'acme');
    assert.equal(table.tierOf(slot), TIER);
    assert.equal(table.remaining(slot), 5, 'a new tenant starts full (burst 5 tokens)');
    assert.equal(Atomics.load(table.tierCount, TIER), 1);
  });

  it('holds at most max tenants of a service, then TENANT_FULL', () => {
    const { table } = tableFor(10);
    for (let i = 0; i < 3; i++) assert.ok(make(table, `t${i}`, 3) >= 0);
    assert.equal(make(table, 't3', 3), TENANT_FULL);
    assert.ok(make(table, 't0', 3) >= 0, 'an existing one is still found');
    assert.equal(table.heldBy(SERVICE), 3);
  });

  it('forgets a tenant idle past idle_s at the second sweep (grace), then its slot is reused', () => {
    const { table } = tableFor(16); // one neighbourhood: the freed slot is the first empty one
    const a = make(table, 'a', 1, 0);
    assert.equal(make(table, 'b', 1, 0), TENANT_FULL);
    assert.equal(table.sweep(500, () => 1000), 0, 'not idle long enough');
    assert.equal(table.sweep(1500, () => 1000), 1, 'retired');
    assert.equal(table.findByName(SERVICE, enc('a')), -1, 'a retired tenant is not found');
    assert.equal(make(table, 'b', 1, 1500), TENANT_FULL, 'its slot is held until the next sweep');
    table.sweep(1600, () => 1000);
    const b = make(table, 'b', 1, 1600);
    assert.equal(b, a, 'the slot is reused');
    assert.equal(table.heldBy(SERVICE), 1);
    assert.equal(Atomics.load(table.tierCount, TIER), 1);
  });

  it('a lookup made just before its tenant was forgotten is stale: the tokens it took go back to the new tenant of the slot', () => {
    const { table } = tableFor(16);
    const a = make(table, 'a', 1, 0);
    const word = table.lastWord, gen = table.lastGen;
    assert.ok(table.stillIs(a, word, gen));
    // The main thread forgets 'a' and another thread reuses the slot for 'b' while the first thread holds its lookup.
    table.sweep(2000, () => 1000);
    table.sweep(2001, () => 1000);
    const b = make(table, 'b', 1, 2001);
    assert.equal(b, a);
    const before = table.remaining(b);
    assert.ok(table.take(a, 1000, 2001), 'the stale take lands on the slot');
    assert.equal(table.stillIs(a, word, gen), false, 'and is seen to be stale');
    table.giveBack(a, 1000);
    assert.equal(table.remaining(b), before, "b's tokens are untouched");
  });

  it('a claim of the same hash in progress (another thread making it) is waited for, never doubled', () => {
    const { views, table } = tableFor(16); // one neighbourhood: slots 0..31
    const b = enc('k');
    const h = table.hash(SERVICE, b, 0, b.length);
    Atomics.store(views.tenantIndex, 0, (h & ~3) | 1); // slot 0 CLAIMED with k's hash, its maker descheduled
    assert.equal(table.create(SERVICE, b, 0, b.length, h, 16, TIER, 1000, 1000, 0), -2, 'TENANT_BUSY, not a second slot');
    assert.equal(Atomics.load(views.tenantIndex, 2), 0, 'slot 1 untouched');
    Atomics.store(views.tenantIndex, 0, (h & ~3) | 3); // the maker gave its claim up (RETIRED)
    assert.equal(table.create(SERVICE, b, 0, b.length, h, 16, TIER, 1000, 1000, 0), 1, 'made in the next free slot');
  });

  it('while the main thread empties a slot of the neighbourhood (SEQ odd), nobody claims there', () => {
    const { views, table } = tableFor(16);
    const b = enc('k');
    const h = table.hash(SERVICE, b, 0, b.length);
    Atomics.store(views.tenantSeq, 0, 1);
    assert.equal(table.create(SERVICE, b, 0, b.length, h, 16, TIER, 1000, 1000, 0), -2);
    Atomics.store(views.tenantSeq, 0, 2);
    assert.equal(table.create(SERVICE, b, 0, b.length, h, 16, TIER, 1000, 1000, 0), 0);
  });

  it('a tier change moves the tenant and its count once, and trims its tokens to the new burst', () => {
    const { table } = tableFor(8);
    const s = make(table, 'x', 8);
    table.setTier(s, 3, 1000, 2000, 0);
    table.setTier(s, 3, 1000, 2000, 0); // a second thread applying the same change
    assert.equal(table.tierOf(s), 3);
    assert.equal(Atomics.load(table.tierCount, TIER), 0);
    assert.equal(Atomics.load(table.tierCount, 3), 1);
    assert.equal(table.remaining(s), 2);
  });

  it('several threads making the same new tenants at once: each is made once, none is lost', async () => {
    const threads = 4;
    const names = Array.from({ length: 200 }, (_, i) => `tenant-${i}`);
    const { views } = tableFor(256, threads);
    const go = new SharedArrayBuffer(4);
    const workers = Array.from({ length: threads }, (_, t) => new Worker(THREAD_BOOTSTRAP, {
      workerData: {
        entry: new URL('../../fixtures/tenant-hammer-worker.ts', import.meta.url).href,
        sab: views.sab, bucketCount: 4, threadCount: threads, tenantSlots: views.layout.tenantSlots, names, service: SERVICE,
        tier: TIER, max: 256, seed: 7 + t, rounds: 3, go,
      },
    }));
    const results = workers.map((w) => new Promise<number[]>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));
    await new Promise((r) => setTimeout(r, 300)); // every worker waits on the flag
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    const slots = await Promise.all(results);
    const table = new TenantTable(views);
    for (let i = 0; i < names.length; i++) {
      const seen = new Set(slots.map((s) => s[i]));
      assert.equal(seen.size, 1, `${names[i]}: every thread got the same slot (${[...seen]})`);
      assert.ok([...seen][0] >= 0, `${names[i]} was made (${[...seen]})`);
      assert.equal(table.findByName(SERVICE, enc(names[i])), [...seen][0]);
    }
    assert.equal(table.heldBy(SERVICE), names.length, 'no claim left over');
    assert.equal(Atomics.load(table.tierCount, TIER), names.length);
    let live = 0;
    table.forEachLive(SERVICE, () => { live++; });
    assert.equal(live, names.length, 'no duplicate');
  });
});
