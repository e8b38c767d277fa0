// The telemetry database's schema, as numbered migrations. PRAGMA user_version
// holds the number of the last one applied; db.ts applies the missing ones in
// order, each in its own transaction. Never edit a migration that has shipped:
// add the next one.
//
// Tables (times are Unix epoch milliseconds, counts are per tick):
//   keys            one id per key ever seen (history outlives config changes)
//   ticks           one row per controller tick: duration, rows written
//   telemetry       per tick per key, in time order (so a tick's rows fill a
//                   few pages at the end of the table; a (key, time) index
//                   would dirty one page per key per tick): tokens requested (demand), granted,
//                   denied; releases ok / failed / throttled (upstream 429);
//                   expired leases; latency sum/count; queue, in-flight and
//                   the limit in force during the tick. Rows of idle keys
//                   whose limit did not change are skipped. A key's rows are
//                   read tick by tick through `ticks` (one lookup per tick).
//   telemetry_1m    telemetry rolled up per key and minute (sums, maxima,
//                   and sums over samples for averages)
//   decisions       per tick per pool: mode, policy applied, fallback reason,
//                   allocation before / proposed / after per service (the
//                   services that changed since the pool's previous row; all
//                   in its first and every 3 600th: daemon/decision-rows.ts),
//                   safety clamps and why, shadow regret
//   limit_overrides live limits set with `tpsd limits set` (re-applied at start)
//   limit_audit     every set / rm / rejected / skipped limit change
//   models          the PPO models the daemon has loaded
//   model_audit     (2) every `tpsd model promote`: promoted or refused, from
//                   which version to which, by whom, with the evaluation
//   tenant_tiers    (3) the tier an admin placed a tenant in (`tpsd tenants
//                   set`, op 17), keyed by its service's key and its name;
//                   changes are audited in limit_audit (field 'tier')
//   pending_changes (4) limit changes held for approval (governance): an
//                   operator's op 16 change or a tier's allocation rise, one
//                   per source and key, by a random id; held / replaced /
//                   approved / declined rows go to limit_audit
//   approved_levels (4) a tier allocation's approved level (the envelope
//                   the allocator moves in without approval)
//   would_deny      (5) a column of telemetry and telemetry_1m: tokens a dry
//                   run (enforce: false) granted that would have been denied
//   keys.last_ms    (5) a tenant key's last write, within TENANT_ID_REFRESH_MS
//                   (telemetry-store.ts): a tenant key whose rows retention
//                   has all removed is deleted (daemon/tenant-rows.ts writes
//                   rows for the busiest tenants only)
//   late            (6) a column of telemetry and telemetry_1m, beside
//                   latency_count: releases whose latency passed the pool's
//                   upstream.slo_ms (C_RELEASED_LATE, on the key and every
//                   key above it); rows from before read 0

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const COUNTS = `
  requested REAL NOT NULL, granted REAL NOT NULL, denied REAL NOT NULL,
  ok REAL NOT NULL, failed REAL NOT NULL, throttled REAL NOT NULL, expired REAL NOT NULL,
  latency_sum_us REAL NOT NULL, latency_count REAL NOT NULL`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'telemetry, decisions, limit overrides, model registry',
    sql: `
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE keys (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, pool TEXT NOT NULL);
CREATE TABLE ticks (
  ts_ms INTEGER PRIMARY KEY, tick INTEGER NOT NULL, dt_ms REAL NOT NULL,
  duration_ms REAL NOT NULL, rows INTEGER NOT NULL, mode TEXT NOT NULL);
CREATE TABLE telemetry (
  ts_ms INTEGER NOT NULL, key_id INTEGER NOT NULL, tick INTEGER NOT NULL, dt_ms REAL NOT NULL,${COUNTS},
  queue INTEGER NOT NULL, in_flight INTEGER NOT NULL, limit_tps REAL NOT NULL,
  PRIMARY KEY (ts_ms, key_id)) WITHOUT ROWID;
CREATE TABLE telemetry_1m (
  key_id INTEGER NOT NULL, minute_ms INTEGER NOT NULL, samples INTEGER NOT NULL, dt_ms REAL NOT NULL,${COUNTS},
  queue_sum REAL NOT NULL, queue_max INTEGER NOT NULL, in_flight_sum REAL NOT NULL, in_flight_max INTEGER NOT NULL,
  limit_sum REAL NOT NULL, limit_min REAL NOT NULL, limit_max REAL NOT NULL,
  PRIMARY KEY (key_id, minute_ms)) WITHOUT ROWID;
CREATE INDEX telemetry_1m_minute ON telemetry_1m (minute_ms);
CREATE TABLE decisions (
  id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tick INTEGER NOT NULL, pool TEXT NOT NULL,
  mode TEXT NOT NULL, policy TEXT NOT NULL, fallback_reason TEXT, model TEXT NOT NULL,
  capacity_tps REAL NOT NULL, effective_tps REAL NOT NULL, demand_tps REAL NOT NULL,
  services TEXT NOT NULL, clamps TEXT NOT NULL, shadow_regret REAL);
CREATE INDEX decisions_ts ON decisions (ts_ms);
CREATE TABLE limit_overrides (
  key TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
  set_at_ms INTEGER NOT NULL, set_by TEXT NOT NULL, PRIMARY KEY (key, field)) WITHOUT ROWID;
CREATE TABLE limit_audit (
  id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, action TEXT NOT NULL, key TEXT NOT NULL,
  field TEXT, old_value TEXT, new_value TEXT, actor TEXT NOT NULL, detail TEXT);
CREATE INDEX limit_audit_ts ON limit_audit (ts_ms);
CREATE TABLE models (
  id INTEGER PRIMARY KEY, version TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT, bytes INTEGER,
  first_seen_ms INTEGER NOT NULL, last_loaded_ms INTEGER NOT NULL, loads INTEGER NOT NULL,
  UNIQUE (version, path));
`,
  },
  {
    version: 2,
    name: 'model promotion audit',
    sql: `
CREATE TABLE model_audit (
  id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, action TEXT NOT NULL, version TEXT NOT NULL, previous TEXT,
  path TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT);
CREATE INDEX model_audit_ts ON model_audit (ts_ms);
`,
  },
  {
    version: 3,
    name: 'tenant tiers',
    sql: `
CREATE TABLE tenant_tiers (
  service_key TEXT NOT NULL, tenant TEXT NOT NULL, tier TEXT NOT NULL,
  set_at_ms INTEGER NOT NULL, set_by TEXT NOT NULL, PRIMARY KEY (service_key, tenant)) WITHOUT ROWID;
`,
  },
  {
    version: 4,
    name: 'governance: pending limit changes and approved tier levels',
    sql: `
CREATE TABLE pending_changes (
  id TEXT PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, request TEXT NOT NULL,
  old TEXT NOT NULL, new TEXT NOT NULL, step REAL, requested_at_ms INTEGER NOT NULL, requested_by TEXT NOT NULL,
  UNIQUE (source, key)) WITHOUT ROWID;
CREATE TABLE approved_levels (
  key TEXT PRIMARY KEY, level_tps REAL NOT NULL, set_at_ms INTEGER NOT NULL, set_by TEXT NOT NULL) WITHOUT ROWID;
`,
  },
  {
    version: 5,
    name: 'would_deny in telemetry rows; tenant keys\' last write',
    sql: `
ALTER TABLE telemetry ADD COLUMN would_deny REAL NOT NULL DEFAULT 0;
ALTER TABLE telemetry_1m ADD COLUMN would_deny REAL NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN last_ms INTEGER;
CREATE INDEX keys_tenant_last ON keys (last_ms) WHERE kind = 'tenant';
`,
  },
  {
    version: 6,
    name: 'late releases (latency past slo_ms) in telemetry rows',
    sql: `
ALTER TABLE telemetry ADD COLUMN late REAL NOT NULL DEFAULT 0;
ALTER TABLE telemetry_1m ADD COLUMN late REAL NOT NULL DEFAULT 0;
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
