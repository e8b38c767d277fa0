// Tenant tier assignments (`tpsd tenants set|rm|import`, protocol op 17) and
// their audit rows (in limit_audit, field 'tier', key `pool/service/TENANT`).
//
// Threads: main thread only, on its connection. A change and its audit row
// are written in one transaction before the change is applied, so a tier in
// force is always on disk and in the audit trail.

import type { Db } from './db.ts';

export interface StoredTier {
  serviceKey: string;
  tenant: string;
  tier: string;
  setAtMs: number;
  setBy: string;
}

export class TenantTierStore {
  private readonly upsert;
  private readonly remove;
  private readonly audit;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(`INSERT INTO tenant_tiers (service_key, tenant, tier, set_at_ms, set_by) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (service_key, tenant) DO UPDATE SET tier = excluded.tier, set_at_ms = excluded.set_at_ms, set_by = excluded.set_by`);
    this.remove = db.prepare('DELETE FROM tenant_tiers WHERE service_key = ? AND tenant = ?');
    this.audit = db.prepare(`INSERT INTO limit_audit (ts_ms, action, key, field, old_value, new_value, actor, detail)
      VALUES (?, ?, ?, 'tier', ?, ?, ?, ?)`);
  }

  list(): StoredTier[] {
    const rows = this.db.prepare('SELECT service_key, tenant, tier, set_at_ms, set_by FROM tenant_tiers ORDER BY service_key, tenant').all() as
      { service_key: string; tenant: string; tier: string; set_at_ms: number; set_by: string }[];
    return rows.map((r) => ({ serviceKey: r.service_key, tenant: r.tenant, tier: r.tier, setAtMs: r.set_at_ms, setBy: r.set_by }));
  }

  /** Writes assignments (one or many: import) with one audit row each, in one transaction. */
  set(changes: readonly { serviceKey: string; tenant: string; old: string | null; tier: string }[], actor: string, nowMs: number): void {
    this.db.transaction(() => {
      for (const c of changes) {
        this.upsert.run(c.serviceKey, c.tenant, c.tier, nowMs, actor);
        this.audit.run(nowMs, 'set', `${c.serviceKey}/${c.tenant}`, json(c.old), json(c.tier), actor, null);
      }
    })();
  }

  /** Removes an assignment (the tenant goes back to the default tier, `reverted`). */
  rm(serviceKey: string, tenant: string, old: string, reverted: string, actor: string, nowMs: number): void {
    this.db.transaction(() => {
      this.remove.run(serviceKey, tenant);
      this.audit.run(nowMs, 'rm', `${serviceKey}/${tenant}`, json(old), json(reverted), actor, null);
    })();
  }

  /** An assignment not re-applied at start (its service or tier is gone from the config): audited, kept. */
  skipped(serviceKey: string, tenant: string, tier: string, reason: string, nowMs: number): void {
    this.audit.run(nowMs, 'skipped', `${serviceKey}/${tenant}`, json(tier), null, 'tpsd start', reason);
  }
}

const json = (v: string | null): string | null => (v === null ? null : JSON.stringify(v));
