// Lower bounds of the config's numeric fields whose floor means something:
// a service's min_tps (a guarantee cannot be negative), concurrency on
// services and endpoints (0 is "unlimited", below it is nonsense) and
// lease_ttl_ms (a lease lives at least 1 ms). For each: a value just below
// the bound is refused with one error naming the field's path, the bound
// itself is accepted and kept as given.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';
import { MAX_CONCURRENCY, MAX_TPS } from '../../../src/config/defaults.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';

const NO_ENV = {};

function config(service: Record<string, unknown>, root: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...root, pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW', ...service }] }] };
}

function errorsOf(raw: unknown): string[] {
  try {
    validateConfig(raw, NO_ENV);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.errors;
  }
  return assert.fail(`accepted ${JSON.stringify(raw)}`);
}

interface Bound {
  field: string;
  path: string;
  /** Just below the bound (and any other values on the wrong side worth naming). */
  below: number[];
  at: number;
  expected: string;
  raw: (v: number) => Record<string, unknown>;
  read: (c: TpsdConfig) => number;
}

const BOUNDS: Bound[] = [
  {
    field: 'min_tps', path: 'pools[0].services[0].min_tps', below: [-Number.MIN_VALUE, -0.001, -1, -MAX_TPS], at: 0,
    expected: `a number from 0 to ${MAX_TPS}`,
    raw: (v) => config({ min_tps: v }), read: (c) => c.pools[0].services[0].min_tps,
  },
  {
    field: 'service concurrency', path: 'pools[0].services[0].concurrency', below: [-1, -0.5, -MAX_CONCURRENCY], at: 0,
    expected: `an integer from 0 (unlimited) to ${MAX_CONCURRENCY}`,
    raw: (v) => config({ concurrency: v }), read: (c) => c.pools[0].services[0].concurrency,
  },
  {
    field: 'endpoint concurrency', path: 'pools[0].services[0].endpoints[0].concurrency', below: [-1, -0.5], at: 0,
    expected: `an integer from 0 (unlimited) to ${MAX_CONCURRENCY}`,
    raw: (v) => config({ endpoints: [{ name: 'e', concurrency: v }] }), read: (c) => c.pools[0].services[0].endpoints[0].concurrency,
  },
  {
    field: 'lease_ttl_ms', path: 'lease_ttl_ms', below: [0, 0.5, -1], at: 1,
    expected: 'an integer from 1 to 86400000',
    raw: (v) => config({}, { lease_ttl_ms: v }), read: (c) => c.lease_ttl_ms,
  },
];

describe('lower bounds of the config', () => {
  for (const b of BOUNDS) {
    it(`${b.field}: below ${b.at} refused naming ${b.path}, ${b.at} accepted`, () => {
      for (const v of b.below) {
        assert.deepEqual(errorsOf(b.raw(v)), [`${b.path}: expected ${b.expected}, found ${String(v)}`], `${b.field} = ${v}`);
      }
      assert.equal(b.read(validateConfig(b.raw(b.at), NO_ENV)), b.at);
    });
  }

  it('a negative min_tps cannot make room in the pool\'s sum of guarantees', () => {
    const pool = (mins: number[]) => ({ pools: [{ name: 'p', capacity_tps: 100,
      services: mins.map((m, i) => ({ name: `s${i}`, priority: 'LOW', min_tps: m })) }] });
    assert.deepEqual(validateConfig(pool([0, 100]), NO_ENV).pools[0].services.map((s) => s.min_tps), [0, 100]);
    // A negative guarantee would make room in the sum for other guarantees: 100 + 50 would pass as 100.
    assert.deepEqual(errorsOf(pool([-50, 100, 50])), [
      `pools[0].services[0].min_tps: expected a number from 0 to ${MAX_TPS}, found -50`,
    ]);
  });
});
