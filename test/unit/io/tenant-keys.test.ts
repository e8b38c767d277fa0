// TenantKeys.resolve (src/io/tenant-keys.ts): a tenant key read from a
// message (flat, its bytes in place with the key table's hash) and the same
// key as a string (general path) name the same tenant; the lookup memo never
// answers for another key (same length, another service, another name), for
// a tenant forgotten since, or for more keys than it holds; names outside
// the tenant alphabet and services without tenants are not tenants.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import { tenantSlotsWanted } from '../../../src/config/tenants-schema.ts';
import { RequestKey } from '../../../src/io/request-reader.ts';
import { NOT_TENANT, TenantKeys } from '../../../src/io/tenant-keys.ts';
import { MsgWriter } from '../../../src/protocol/codec.ts';
import { FlatReader } from '../../../src/protocol/flat-reader.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm, tenantSlotsFor } from '../../../src/shm/layout.ts';
import { TenantTable } from '../../../src/shm/tenant-table.ts';

const tenants = (max: number) => ({ tiers: [{ name: 'std', priority: 'HIGH', tps: 100, burst: 100 }], max });

function setup(max = 20_000) {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' },
    pools: [{ name: 'api', capacity_tps: 1000, services: [
      { name: 'v1', priority: 'HIGH', endpoints: [{ name: 'ep' }], tenants: tenants(max) },
      // Same key length as v1: a memo entry of api/v1/x must never answer api/v2/x.
      { name: 'v2', priority: 'LOW', tenants: tenants(max) },
      { name: 'plain', priority: 'LOW' },
    ] }],
  }, {});
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1, tenantSlotsFor(tenantSlotsWanted(config.pools[0].services)));
  const table = new TenantTable(views);
  return { keys, table, tk: new TenantKeys(keys, table), key: new RequestKey(keys), reader: new FlatReader() };
}

type Setup = ReturnType<typeof setup>;

/** Resolves `k` as a flat ACQUIRE's key (read from a message, at an odd offset in it). */
function resolveFlat(s: Setup, k: string, now = 0): number {
  const w = new MsgWriter();
  w.uint(7).array(5).uint(1).uint(1).str(k).uint(1).uint(0);
  const msg = w.take();
  assert.ok(s.reader.read(msg, 1), k);
  assert.ok(s.key.fromFlat(s.reader, msg, 2), k);
  return s.tk.resolve(s.key, now);
}

function resolveString(s: Setup, k: string, now = 0): number {
  s.key.fromString(k);
  return s.tk.resolve(s.key, now);
}

function serviceOf(s: Setup, slot: number): string {
  return s.keys.key(s.table.serviceOf(slot));
}

describe('TenantKeys.resolve', () => {
  it('a flat key and the same key as a string name one tenant, made once', () => {
    const s = setup();
    const a = resolveFlat(s, 'api/v1/acme');
    assert.ok(a >= 0);
    assert.equal(resolveString(s, 'api/v1/acme'), a);
    assert.equal(resolveFlat(s, 'api/v1/acme'), a);
    assert.equal(s.table.nameOf(a), 'acme');
    assert.equal(serviceOf(s, a), 'api/v1');
    assert.equal(s.table.heldBy(s.keys.lookup('api/v1')), 1);
  });

  it('keys of the same length never share an entry: another service, another name, a name without its slash', () => {
    const s = setup();
    const names = ['api/v1/acme', 'api/v2/acme', 'api/v1/acmf', 'api/v2/bcme', 'api/v1/a/cme'];
    const slots = names.map((k) => resolveFlat(s, k));
    for (let round = 0; round < 3; round++) {
      names.forEach((k, i) => {
        const slot = round === 1 ? resolveString(s, k) : resolveFlat(s, k);
        assert.equal(slot, slots[i], `${k} round ${round}`);
      });
    }
    assert.equal(new Set(slots.filter((x) => x >= 0)).size, 4);
    assert.equal(serviceOf(s, slots[1]), 'api/v2');
    assert.equal(s.table.nameOf(slots[2]), 'acmf');
    assert.equal(slots[4], NOT_TENANT, "'api/v1/a' is no service: not a tenant");
    // Same length as api/v1/acme, differing only in the service's last byte or in the slash.
    assert.equal(resolveFlat(s, 'api/v3/acme'), NOT_TENANT);
    assert.equal(resolveFlat(s, 'api/v1xacme'), NOT_TENANT);
  });

  it('more tenants than the memo holds: every key finds its own tenant, pass after pass', () => {
    const s = setup();
    const n = 6000; // the memo holds 4096
    const first = new Int32Array(n);
    for (let pass = 0; pass < 3; pass++) {
      for (let i = 0; i < n; i++) {
        const k = `api/${i % 3 === 0 ? 'v2' : 'v1'}/t-${(i * 7919) % n}`;
        const slot = resolveFlat(s, k);
        assert.ok(slot >= 0, k);
        if (pass === 0) first[i] = slot;
        else assert.equal(slot, first[i], k);
        assert.equal(`${serviceOf(s, slot)}/${s.table.nameOf(slot)}`, k);
      }
    }
    assert.equal(s.table.heldBy(s.keys.lookup('api/v1')) + s.table.heldBy(s.keys.lookup('api/v2')), n);
  });

  it('a tenant forgotten since it was found is made again, not answered from the memo', () => {
    const s = setup();
    const a = resolveFlat(s, 'api/v1/acme', 0);
    const genBefore = s.table.genOf(a);
    s.table.sweep(10_000, () => 1000); // idle: retired
    s.table.sweep(10_001, () => 1000); // emptied
    const again = resolveFlat(s, 'api/v1/acme', 10_002);
    assert.ok(again >= 0);
    assert.ok(again !== a || s.table.genOf(again) !== genBefore, 'a new tenant (another slot or generation)');
    assert.ok(s.table.stillIs(again, s.tk.word, s.tk.gen));
    assert.equal(s.table.nameOf(again), 'acme');
    assert.equal(resolveString(s, 'api/v1/acme', 10_003), again);
  });

  it('not tenants: a service without tenants, a configured key, a bad name, an empty name', () => {
    const s = setup();
    for (const k of ['api/plain/acme', 'api/v1', 'api/v1/', 'api/v1/bad name', 'api/v1/ünï', '/v1/acme', 'api', '']) {
      assert.equal(resolveString(s, k), NOT_TENANT, k);
    }
    for (const k of ['api/plain/acme', 'api/v1/', 'api/v1/bad name', 'api/v1/x'.padEnd(80, 'y')]) {
      assert.equal(resolveFlat(s, k), NOT_TENANT, k);
    }
  });
});
