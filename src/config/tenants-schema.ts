// The schema of a service's `tenants` section (part of pools-schema.ts):
// tiers with unique names, a priority, each tenant's rate and burst; the
// default tier among them; how many tenants may live at once and how long an
// idle one is kept. The meaning is in docs/tenants.md.

import { DEFAULT_DEFENSE_COOLDOWN_S, DEFAULT_DEFENSE_TPS_FRACTION, DEFAULT_TENANTS_MAX, MAX_DEFENSE_COOLDOWN_S, DEFAULT_TENANT_IDLE_S, MAX_BURST, MAX_TENANTS, MAX_TENANT_IDLE_S, MAX_TIERS, MAX_TPS, defaultBurst } from './defaults.ts';
import { joinIndex, joinKey, type FieldReader, type JsonObject } from './field-reader.ts';
import { PRIORITIES, type DefenseConfig, type TenantsConfig, type TierConfig } from './types.ts';

/** `enforce` in the effective config: present only when false (pools-schema.ts says why). */
const dryRun = (enforce: boolean | undefined): { enforce?: false } => (enforce === false ? { enforce: false } : {});

/** A tenant's name, the last segment of `pool/service/TENANT` (PROTOCOL.md). Tier names follow NAME_PATTERN. */
export const TENANT_PATTERN = /^[A-Za-z0-9_.:@-]{1,64}$/;
const TIER_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const TIER_NAME_EXPECTED = 'a tier name of 1 to 64 characters from A-Z, a-z, 0-9, "_", ".", ":", "-"';

const TENANTS_KEYS = ['tiers', 'default_tier', 'max', 'idle_s'];
const TIER_KEYS = ['name', 'priority', 'tps', 'burst', 'enforce', 'value_per_request', 'defense'];
const DEFENSE_KEYS = ['tps_fraction', 'cooldown_s'];

/** A service's `tenants` (absent or null: the service has none). */
export function readTenants(r: FieldReader, item: unknown, path: string): TenantsConfig | null {
  if (item === undefined || item === null) return null;
  const obj = r.object(path, item, TENANTS_KEYS);
  if (obj === undefined) return null; // already reported
  const items = r.array(obj, path, 'tiers', 'tier objects', 1) ?? [];
  const tiersPath = joinKey(path, 'tiers');
  if (items.length > MAX_TIERS) r.failWith(tiersPath, `at most ${MAX_TIERS} tiers`, `${items.length}`);
  const names = new Map<string, string>();
  const tiers = items.slice(0, MAX_TIERS).map((t, i) => readTier(r, t, joinIndex(tiersPath, i), names));
  // The first tier when not given (no tiers: already reported, nothing to default to).
  const first = tiers[0]?.name;
  const defaultTier = first === undefined && obj.default_tier === undefined ? undefined : r.string(obj, path, 'default_tier', first);
  if (defaultTier !== undefined && tiers.length > 0 && !names.has(defaultTier)) {
    r.failWith(joinKey(path, 'default_tier'), `one of the tiers' names (${[...names.keys()].map((n) => JSON.stringify(n)).join(', ')})`,
      JSON.stringify(defaultTier));
  }
  const max = r.number(obj, path, 'max', { integer: true, min: 1, max: MAX_TENANTS }, DEFAULT_TENANTS_MAX);
  const idleS = r.number(obj, path, 'idle_s', { above: 0, max: MAX_TENANT_IDLE_S }, DEFAULT_TENANT_IDLE_S);
  return { tiers, default_tier: defaultTier, max, idle_s: idleS } as TenantsConfig;
}

function readTier(r: FieldReader, item: unknown, path: string, names: Map<string, string>): TierConfig {
  const obj: JsonObject | undefined = r.object(path, item, TIER_KEYS);
  if (obj === undefined) return {} as TierConfig; // already reported
  const name = r.matching(obj, path, 'name', TIER_PATTERN, TIER_NAME_EXPECTED);
  if (name !== undefined) {
    const first = names.get(name);
    if (first !== undefined) r.failWith(joinKey(path, 'name'), 'a unique tier name', `${JSON.stringify(name)} (already used by ${first})`);
    else names.set(name, joinKey(path, 'name'));
  }
  const priority = r.oneOf(obj, path, 'priority', PRIORITIES);
  const tps = r.number(obj, path, 'tps', { above: 0, max: MAX_TPS });
  const burst = r.number(obj, path, 'burst', { integer: true, min: 1, max: MAX_BURST }, defaultBurst(tps ?? 1));
  const enforce = r.boolean(obj, path, 'enforce', true);
  const value = obj.value_per_request === undefined ? undefined : r.number(obj, path, 'value_per_request', { min: 0, max: 1e9 });
  const defense = readDefense(r, obj.defense, joinKey(path, 'defense'));
  return { name, priority, tps, burst, ...dryRun(enforce), ...(value === undefined ? {} : { value_per_request: value }), defense } as TierConfig;
}

/** A tier's `defense` (absent: the defaults): the fraction of the tier's tps an attacker keeps, and for how long. */
function readDefense(r: FieldReader, item: unknown, path: string): DefenseConfig {
  const defaults = { tps_fraction: DEFAULT_DEFENSE_TPS_FRACTION, cooldown_s: DEFAULT_DEFENSE_COOLDOWN_S };
  if (item === undefined) return defaults;
  const obj = r.object(path, item, DEFENSE_KEYS);
  if (obj === undefined) return defaults; // already reported
  const fraction = r.number(obj, path, 'tps_fraction', { above: 0, max: 1 }, DEFAULT_DEFENSE_TPS_FRACTION);
  const cooldown = r.number(obj, path, 'cooldown_s', { above: 0, max: MAX_DEFENSE_COOLDOWN_S }, DEFAULT_DEFENSE_COOLDOWN_S);
  return { tps_fraction: fraction ?? DEFAULT_DEFENSE_TPS_FRACTION, cooldown_s: cooldown ?? DEFAULT_DEFENSE_COOLDOWN_S };
}

/** The sum of every service's tenants.max: the tenant slots shared memory holds. */
export function tenantSlotsWanted(services: readonly { tenants?: TenantsConfig | null }[]): number {
  let n = 0;
  for (const s of services) n += s.tenants?.max ?? 0;
  return n;
}

export { MAX_TENANTS };
