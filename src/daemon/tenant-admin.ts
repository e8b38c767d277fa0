// Tenant tiers on the main thread: op 17 TENANTS (get, set, rm, list;
// `tpsd tenants`), the assignments persisted in SQLite with their audit rows
// (storage/tenant-tiers.ts) and re-applied at start, and the sweep that
// forgets idle tenants each tick (shm/tenant-table.ts).
//
// Threads: main thread only. A change is validated, persisted and audited,
// written to the tenant's slot in shared memory if it lives, then sent to
// every I/O thread ('tenant-tier'), which keeps it for the tenants it makes
// (io/tenant-keys.ts). A tenant never picks its tier: only this module, on
// an admin token's request, changes one.

import { TENANT_PATTERN } from '../config/tenants-schema.ts';
import type { TenantTier } from '../io/messages.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { TIER_MARK, type KeyIndex } from '../shm/key-index.ts';
import { MILLI, type ShmViews } from '../shm/layout.ts';
import { TenantTable } from '../shm/tenant-table.ts';
import type { TenantTierStore } from '../storage/tenant-tiers.ts';
import { LimitsError } from './live-limits.ts';

/** TENANTS list: entries when no limit is given, and the most one reply carries. */
export const LIST_DEFAULT = 100;
export const LIST_MAX = 10_000;
/** The longest time between two sweeps of idle tenants. */
export const SWEEP_EVERY_MS = 1000;

interface ServiceTenants {
  readonly service: number;
  readonly key: string;
  readonly idleMs: number;
  readonly defaultTier: string;
  /** Tier name -> tier bucket. */
  readonly tiers: Map<string, number>;
}

export interface TenantsLogger {
  warn(obj: object, msg: string): void;
}

export class TenantDirectory {
  readonly table: TenantTable;
  private readonly services = new Map<string, ServiceTenants>();
  private readonly byBucket = new Map<number, ServiceTenants>();
  /** Assignments: service key -> tenant -> tier name. */
  private readonly assigned = new Map<string, Map<string, string>>();
  private readonly idleMsOf = (service: number): number => this.byBucket.get(service)?.idleMs ?? Infinity;
  private lastSweepMs: number | null = null;
  private sweepEveryMs = SWEEP_EVERY_MS;

  constructor(
    private keys: KeyIndex,
    views: ShmViews,
    private readonly store: TenantTierStore | null,
    private readonly broadcast: (m: { type: 'tenant-tier' } & TenantTier) => void,
    /** The shared clock's ms (the buckets' time). */
    private readonly nowMs: () => number,
  ) {
    this.table = new TenantTable(views);
    this.reconfigure(keys);
  }

  /**
   * The services' tenants sections of `keys`: at start, and a reloaded
   * config's (the same key set, daemon/reload.ts): its idle_s and its tiers'
   * tps and burst, which an admin's tier change writes, apply from now.
   */
  reconfigure(keys: KeyIndex): void {
    this.keys = keys;
    this.services.clear();
    this.byBucket.clear();
    this.sweepEveryMs = SWEEP_EVERY_MS;
    for (const s of keys.specs) {
      if (s.tenants === null) continue;
      const tiers = new Map(s.tenants.tiers.map((t) => [t.name, keys.find(`${s.key}/${TIER_MARK}${t.name}`)]));
      const entry = { service: s.index, key: s.key, idleMs: s.tenants.idle_s * 1000, defaultTier: s.tenants.default_tier, tiers };
      this.services.set(s.key, entry);
      this.byBucket.set(s.index, entry);
      this.sweepEveryMs = Math.min(this.sweepEveryMs, entry.idleMs / 2);
    }
  }

  /** Re-reads the persisted assignments (start); one whose service or tier is gone is skipped, logged and audited. Returns them for the I/O threads. */
  restore(log: TenantsLogger, nowMs = Date.now()): TenantTier[] {
    const out: TenantTier[] = [];
    for (const a of this.store?.list() ?? []) {
      const svc = this.services.get(a.serviceKey);
      const tier = svc?.tiers.get(a.tier);
      if (svc === undefined || tier === undefined) {
        const reason = svc === undefined ? 'the service has no tenants in this config' : `no tier "${a.tier}" in this config`;
        log.warn({ service: a.serviceKey, tenant: a.tenant, tier: a.tier, reason }, 'tenant tier not re-applied');
        this.store?.skipped(a.serviceKey, a.tenant, a.tier, reason, nowMs);
        continue;
      }
      this.remember(svc.key, a.tenant, a.tier);
      out.push({ service: svc.service, name: a.tenant, tier });
    }
    return out;
  }

  /**
   * Forgets idle tenants (called after each tick). The sweep reads every
   * slot (about 1 ms per 100 000 tenants of max), so it runs at most every
   * SWEEP_EVERY_MS, or half the shortest idle_s if that is sooner.
   */
  sweep(nowMs: number): number {
    if (this.lastSweepMs !== null && ((nowMs - this.lastSweepMs) | 0) < this.sweepEveryMs) return 0;
    this.lastSweepMs = nowMs;
    return this.table.sweep(nowMs, this.idleMsOf);
  }

  /** Op 17 TENANTS. Throws LimitsError (its protocol code) for a refused request. */
  answer(action: string, key: string, changes: Record<string, unknown>, limit: number | undefined, actor: string): unknown {
    if (action === 'list') return this.list(key, typeof changes.tier === 'string' ? changes.tier : null, limit ?? LIST_DEFAULT);
    const { svc, name } = this.tenantKey(key);
    const before = this.assigned.get(svc.key)?.get(name) ?? null;
    if (action === 'get') return this.entry(svc, name);
    if (action === 'set') {
      const tier = String(changes.tier);
      if (!svc.tiers.has(tier)) {
        throw new LimitsError(ErrorCode.BAD_REQUEST, `no tier "${tier}" in ${svc.key} (${[...svc.tiers.keys()].join(', ')})`);
      }
      this.store?.set([{ serviceKey: svc.key, tenant: name, old: before ?? svc.defaultTier, tier }], actor, Date.now());
      this.remember(svc.key, name, tier);
      this.apply(svc, name, tier);
      return { ...this.entry(svc, name), previous: before ?? svc.defaultTier, persisted: this.store !== null };
    }
    if (before !== null) {
      this.store?.rm(svc.key, name, before, svc.defaultTier, actor, Date.now());
      this.assigned.get(svc.key)?.delete(name);
      this.apply(svc, name, null);
    }
    return { ...this.entry(svc, name), previous: before ?? svc.defaultTier, persisted: this.store !== null };
  }

  private remember(serviceKey: string, name: string, tier: string): void {
    let m = this.assigned.get(serviceKey);
    if (m === undefined) this.assigned.set(serviceKey, m = new Map());
    m.set(name, tier);
  }

  /** A tier change in force: the live tenant's slot now, the I/O threads by message (for tenants they make). */
  private apply(svc: ServiceTenants, name: string, tierName: string | null): void {
    const tier = svc.tiers.get(tierName ?? svc.defaultTier)!;
    const slot = this.table.findByName(svc.service, new TextEncoder().encode(name));
    if (slot >= 0) {
      const spec = this.keys.specs[tier].tier!;
      this.table.setTier(slot, tier, Math.round(spec.tps * MILLI), Math.round(spec.burst * MILLI), this.nowMs());
    }
    this.broadcast({ type: 'tenant-tier', service: svc.service, name, tier: tierName === null ? -1 : tier });
  }

  private tenantKey(key: string): { svc: ServiceTenants; name: string } {
    const slash = key.lastIndexOf('/');
    const svc = slash > 0 ? this.services.get(key.slice(0, slash)) : undefined;
    const name = key.slice(slash + 1);
    if (svc === undefined) throw new LimitsError(ErrorCode.UNKNOWN_KEY, `"${key}" is not pool/service/TENANT of a service with tenants`);
    if (!TENANT_PATTERN.test(name)) throw new LimitsError(ErrorCode.BAD_REQUEST, `tenant name "${name}" must match [A-Za-z0-9_.:@-]{1,64}`);
    return { svc, name };
  }

  private entry(svc: ServiceTenants, name: string): Record<string, unknown> {
    const assigned = this.assigned.get(svc.key)?.get(name) ?? null;
    const slot = this.table.findByName(svc.service, new TextEncoder().encode(name));
    return { key: `${svc.key}/${name}`, tier: assigned ?? svc.defaultTier, assigned: assigned !== null, live: slot >= 0,
      remaining: slot >= 0 ? this.table.remaining(slot) : null };
  }

  /** A service's tenants: those assigned a tier and those alive, at most `limit`, by name. */
  private list(serviceKey: string, tier: string | null, limit: number): unknown {
    const svc = this.services.get(serviceKey);
    if (svc === undefined) throw new LimitsError(ErrorCode.UNKNOWN_KEY, `"${serviceKey}" is not a service with tenants`);
    if (tier !== null && !svc.tiers.has(tier)) throw new LimitsError(ErrorCode.BAD_REQUEST, `no tier "${tier}" in ${svc.key}`);
    const tierName = new Map([...svc.tiers].map(([n, b]) => [b, n]));
    const rows = new Map<string, { tenant: string; tier: string; assigned: boolean; live: boolean }>();
    for (const [name, t] of this.assigned.get(svc.key) ?? []) rows.set(name, { tenant: name, tier: t, assigned: true, live: false });
    this.table.forEachLive(svc.service, (_slot, name, t) => {
      const row = rows.get(name);
      if (row !== undefined) row.live = true;
      else rows.set(name, { tenant: name, tier: tierName.get(t) ?? svc.defaultTier, assigned: false, live: true });
    });
    const all = [...rows.values()].filter((r) => tier === null || r.tier === tier).sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
    const cap = Math.min(limit, LIST_MAX);
    return { service: svc.key, total: all.length, truncated: all.length > cap, tenants: all.slice(0, cap),
      tiers: Object.fromEntries([...svc.tiers].map(([n, b]) => [n, Atomics.load(this.table.tierCount, b)])) };
  }
}
