// The schema of the `pools` section (part of schema.ts's validator): pools,
// their services and endpoints, with names unique among siblings, rates and
// bursts within what shared memory holds (defaults.ts), defaults taken from
// the parent (a service's max_tps from its pool's capacity, an endpoint's
// from its service), the sum of a pool's min_tps within its capacity, and a
// pool's `upstream`: how the upstream counts (window, default sliding_1s).

import {
  DEFAULT_UPSTREAM_WINDOW, MAX_BUCKETS, MAX_TENANTS, MAX_BURST, MAX_CONCURRENCY, MAX_TPS, MAX_UPSTREAM_MS, defaultBurst, defaultPoolBurst,
} from './defaults.ts';
import { readTenants, tenantSlotsWanted } from './tenants-schema.ts';
import { FieldReader, isPlainObject, joinIndex, joinKey, type JsonObject, type NumberRule } from './field-reader.ts';
import {
  PRIORITIES, UPSTREAM_WINDOWS, type EndpointConfig, type PoolConfig, type ServiceConfig, type UpstreamConfig,
} from './types.ts';

/** Pool, service and endpoint names; '/' is reserved as the key separator. */
export const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const NAME_EXPECTED = 'a name of 1 to 64 characters from A-Z, a-z, 0-9, "_", ".", ":", "-"';

const TPS: NumberRule = { above: 0, max: MAX_TPS };
const MIN_TPS: NumberRule = { min: 0, max: MAX_TPS };
const BURST: NumberRule = { integer: true, min: 1, max: MAX_BURST };
const CONCURRENCY: NumberRule = { integer: true, min: 0, max: MAX_CONCURRENCY, expected: `an integer from 0 (unlimited) to ${MAX_CONCURRENCY}` };

const UPSTREAM_MS: NumberRule = { above: 0, max: MAX_UPSTREAM_MS };

const POOL_KEYS = ['name', 'capacity_tps', 'burst', 'upstream', 'shared', 'enforce', 'services'];
const UPSTREAM_KEYS = ['window', 'slo_ms', 'timeout_ms'];
const SERVICE_KEYS = ['name', 'priority', 'min_tps', 'max_tps', 'burst', 'concurrency', 'endpoints', 'enforce', 'tenants'];
const ENDPOINT_KEYS = ['name', 'max_tps', 'burst', 'concurrency', 'enforce'];

/** The `pools` array; refused whole when it would need more than MAX_BUCKETS buckets. */
export function readPools(r: FieldReader, root: JsonObject): PoolConfig[] {
  const items = r.array(root, '', 'pools', 'pool objects', 1) ?? [];
  const buckets = countBuckets(items);
  if (buckets > MAX_BUCKETS) {
    r.failWith('pools', `at most ${MAX_BUCKETS} buckets (pools + services + endpoints + tiers)`, `${buckets}`);
    return [];
  }
  const names = new Map<string, string>();
  const pools = items.map((item, i) => readPool(r, item, joinIndex('pools', i), names));
  const tenants = tenantSlotsWanted(pools.flatMap((p) => p.services ?? []));
  if (tenants > MAX_TENANTS) r.failWith('pools', `the sum of every tenants.max to be at most ${MAX_TENANTS}`, `${tenants}`);
  return pools;
}

/**
 * `enforce` in the effective config: present only when false (a dry run), so
 * a config without dry runs reads back as it did before the field existed.
 */
export function dryRun(enforce: boolean | undefined): { enforce?: false } {
  return enforce === false ? { enforce: false } : {};
}

function countBuckets(pools: unknown[]): number {
  let count = pools.length;
  for (const pool of pools) {
    if (!isPlainObject(pool) || !Array.isArray(pool.services)) continue;
    count += pool.services.length;
    for (const service of pool.services) {
      if (isPlainObject(service) && Array.isArray(service.endpoints)) count += service.endpoints.length;
      if (isPlainObject(service) && isPlainObject(service.tenants) && Array.isArray(service.tenants.tiers)) count += service.tenants.tiers.length;
    }
  }
  return count;
}

function readName(r: FieldReader, obj: JsonObject, path: string, names: Map<string, string>, what: string): string | undefined {
  const name = r.matching(obj, path, 'name', NAME_PATTERN, NAME_EXPECTED);
  if (name === undefined) return undefined;
  const first = names.get(name);
  if (first !== undefined) {
    r.failWith(joinKey(path, 'name'), `a unique ${what} name`, `${JSON.stringify(name)} (already used by ${first})`);
  } else {
    names.set(name, joinKey(path, 'name'));
  }
  return name;
}

function readPool(r: FieldReader, item: unknown, path: string, poolNames: Map<string, string>): PoolConfig {
  const obj = r.object(path, item, POOL_KEYS);
  if (obj === undefined) return {} as PoolConfig; // already reported
  const name = readName(r, obj, path, poolNames, 'pool');
  const capacity = r.number(obj, path, 'capacity_tps', TPS);
  const burst = r.number(obj, path, 'burst', BURST, defaultPoolBurst(capacity ?? 1));
  const upstream = readUpstream(r, obj.upstream, joinKey(path, 'upstream'));
  const shared = r.boolean(obj, path, 'shared', false);
  const enforce = r.boolean(obj, path, 'enforce', true);
  const items = r.array(obj, path, 'services', 'service objects', 1) ?? [];
  const servicesPath = joinKey(path, 'services');
  const names = new Map<string, string>();
  const services = items.map((s, i) => readService(r, s, joinIndex(servicesPath, i), names, capacity));

  const mins = services.map((s) => s.min_tps);
  if (capacity !== undefined && mins.every((m) => m !== undefined)) {
    const sum = mins.reduce((a, b) => a + b, 0);
    if (sum > capacity * (1 + 1e-12)) {
      r.failWith(servicesPath, `the sum of min_tps to be <= capacity_tps (${capacity})`, `${sum}`);
    }
  }
  return { name, capacity_tps: capacity, burst, upstream, shared, ...dryRun(enforce), services } as PoolConfig;
}

/** A pool's `upstream` object (optional): how the upstream counts its limit, its latency SLO, the callers' deadline. */
function readUpstream(r: FieldReader, item: unknown, path: string): UpstreamConfig {
  const obj = item === undefined ? {} : r.object(path, item, UPSTREAM_KEYS);
  if (obj === undefined) return {} as UpstreamConfig; // already reported
  const window = r.oneOf(obj, path, 'window', UPSTREAM_WINDOWS, DEFAULT_UPSTREAM_WINDOW);
  // null is what the effective config prints for "not set", so it reads back the same.
  const optional = (key: string) => (obj[key] === undefined || obj[key] === null ? null : r.number(obj, path, key, UPSTREAM_MS) ?? null);
  return { window, slo_ms: optional('slo_ms'), timeout_ms: optional('timeout_ms') } as UpstreamConfig;
}

function readService(
  r: FieldReader, item: unknown, path: string, serviceNames: Map<string, string>, capacity: number | undefined,
): ServiceConfig {
  const obj = r.object(path, item, SERVICE_KEYS);
  if (obj === undefined) return {} as ServiceConfig; // already reported
  const name = readName(r, obj, path, serviceNames, 'service');
  const priority = r.oneOf(obj, path, 'priority', PRIORITIES);
  const minTps = r.number(obj, path, 'min_tps', MIN_TPS, 0);
  // The default is the pool's capacity; if that is invalid (reported), skip.
  const maxTps = obj.max_tps === undefined && capacity === undefined ? undefined : r.number(obj, path, 'max_tps', TPS, capacity);
  if (minTps !== undefined && maxTps !== undefined && minTps > maxTps) {
    r.fail(joinKey(path, 'min_tps'), `a number <= max_tps (${maxTps})`, minTps);
  }
  const burst = r.number(obj, path, 'burst', BURST, defaultBurst(maxTps ?? 1));
  const concurrency = r.number(obj, path, 'concurrency', CONCURRENCY, 0);
  const items = r.array(obj, path, 'endpoints', 'endpoint objects', 0, []) ?? [];
  const endpointsPath = joinKey(path, 'endpoints');
  const names = new Map<string, string>();
  const endpoints = items.map((e, i) => readEndpoint(r, e, joinIndex(endpointsPath, i), names, maxTps));
  const enforce = r.boolean(obj, path, 'enforce', true);
  const tenants = readTenants(r, obj.tenants, joinKey(path, 'tenants'));
  return { name, priority, min_tps: minTps, max_tps: maxTps, burst, concurrency, endpoints, ...dryRun(enforce), ...(tenants === null ? {} : { tenants }) } as ServiceConfig;
}

function readEndpoint(
  r: FieldReader, item: unknown, path: string, names: Map<string, string>, serviceMaxTps: number | undefined,
): EndpointConfig {
  const obj = r.object(path, item, ENDPOINT_KEYS);
  if (obj === undefined) return {} as EndpointConfig; // already reported
  const name = readName(r, obj, path, names, 'endpoint');
  const maxTps = obj.max_tps === undefined && serviceMaxTps === undefined ? undefined : r.number(obj, path, 'max_tps', TPS, serviceMaxTps);
  const burst = r.number(obj, path, 'burst', BURST, defaultBurst(maxTps ?? 1));
  const concurrency = r.number(obj, path, 'concurrency', CONCURRENCY, 0);
  const enforce = r.boolean(obj, path, 'enforce', true);
  return { name, max_tps: maxTps, burst, concurrency, ...dryRun(enforce) } as EndpointConfig;
}
