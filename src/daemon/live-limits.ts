// The limits in force: the config's, overlaid with live overrides
// (`tpsd limits set|rm`, protocol op 16 LIMITS). Validates a change against
// the whole pool (min <= max, the pool's minimums within its capacity),
// persists it with its audit rows (storage/overrides.ts), then hands it to the
// controller, which applies it from the next tick. At start, restore()
// re-applies the persisted overrides; one that no longer fits the config is
// skipped, logged and audited, not deleted.
//
// Threads: main thread only. I/O threads forward admin requests here by
// message (io/messages.ts) and relay the answer.

import { CodedError } from '../protocol/coded-error.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { priorityName, type KeyIndex } from '../shm/key-index.ts';
import type { LimitValue, OverrideStore } from '../storage/overrides.ts';
import { MAX_TPS } from '../config/schema.ts';
import { PRIORITIES, type TpsdConfig } from '../config/types.ts';

export const FIELDS_BY_KIND = {
  pool: ['capacity_tps'],
  service: ['min_tps', 'max_tps', 'priority'],
  endpoint: ['max_tps'],
} as const;
const KINDS = ['pool', 'service', 'endpoint'] as const;

/** What applies a change (the Controller). */
export interface LimitsTarget {
  setLimits(b: number, limits: { minTps?: number; maxTps?: number; priority?: number }): void;
}

export interface LimitsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LimitEntry {
  key: string;
  kind: (typeof KINDS)[number];
  pool: string;
  effective: Record<string, LimitValue>;
  configured: Record<string, LimitValue>;
  overrides: Record<string, { value: LimitValue; set_at_ms: number; set_by: string }>;
}

/** A refused change: `code` is the protocol error code. */
export class LimitsError extends CodedError {
  constructor(override readonly code: number, message: string) { super(message); this.name = 'LimitsError'; }
}

type Override = { value: LimitValue; setAtMs: number; setBy: string };

export class LiveLimits {
  private readonly overrides = new Map<number, Map<string, Override>>();

  constructor(
    private readonly keys: KeyIndex,
    private readonly target: LimitsTarget,
    private readonly store: OverrideStore | null,
    private readonly log: LimitsLogger,
  ) {}

  /** Key b's config values (the specs keep them; overrides live in the controller): made when asked, not kept per key. */
  private configured(b: number): Record<string, LimitValue> {
    const s = this.keys.specs[b];
    if (s.depth === 0) return { capacity_tps: s.maxTps };
    if (s.depth === 1) return { min_tps: s.minTps, max_tps: s.maxTps, priority: priorityName(s.priority)! };
    return { max_tps: s.maxTps };
  }

  /** Whether changes survive a restart (telemetry.enabled). */
  get persisted(): boolean { return this.store !== null; }

  /** Number of overrides in force. */
  get count(): number {
    let n = 0;
    for (const m of this.overrides.values()) n += m.size;
    return n;
  }

  /** Re-applies the persisted overrides (pools first, so services' minimums check against their capacity). */
  restore(nowMs = Date.now()): { applied: number; skipped: number } {
    if (this.store === null) return { applied: 0, skipped: 0 };
    const byKey = new Map<string, Map<string, Override>>();
    for (const o of this.store.list()) {
      if (!byKey.has(o.key)) byKey.set(o.key, new Map());
      byKey.get(o.key)!.set(o.field, { value: o.value, setAtMs: o.setAtMs, setBy: o.setBy });
    }
    const order = [...byKey.keys()].sort((a, b) => a.split('/').length - b.split('/').length);
    let applied = 0, skipped = 0;
    for (const key of order) {
      const fields = byKey.get(key)!;
      try {
        const b = this.lookup(key);
        const values = Object.fromEntries([...fields].map(([f, o]) => [f, o.value]));
        this.apply(b, this.validate(b, values), fields);
        applied += fields.size;
      } catch (err) {
        skipped += fields.size;
        const detail = `not re-applied at start: ${(err as Error).message}`;
        this.log.warn({ key, fields: [...fields.keys()] }, `limit override ${detail}`);
        for (const [field, o] of fields) {
          this.store.audit({ tsMs: nowMs, action: 'skipped', key, field, oldValue: null, newValue: o.value, actor: 'tpsd start', detail });
        }
      }
    }
    if (applied > 0) this.log.info({ overrides: applied }, 'limit overrides re-applied');
    return { applied, skipped };
  }

  entry(b: number): LimitEntry {
    const spec = this.keys.specs[b];
    const overrides: LimitEntry['overrides'] = {};
    for (const [f, o] of this.overrides.get(b) ?? []) overrides[f] = { value: o.value, set_at_ms: o.setAtMs, set_by: o.setBy };
    return {
      key: spec.key, kind: KINDS[spec.depth], pool: this.keys.specs[spec.pool].key,
      effective: this.effective(b), configured: this.configured(b), overrides,
    };
  }

  /** Every key's entry, or one key's. */
  get(key: string | null): LimitEntry | { keys: LimitEntry[] } {
    if (key === null) return { keys: this.keys.specs.map((s) => this.entry(s.index)) };
    return this.entry(this.lookup(key));
  }

  /** The change as set() would apply it (normalized), without applying it; throws LimitsError as set() would. */
  check(key: string, changes: Record<string, unknown>): Record<string, LimitValue> {
    return this.validate(this.lookup(key), changes);
  }

  set(key: string, changes: Record<string, unknown>, actor: string, nowMs = Date.now()): LimitEntry {
    const b = this.lookup(key);
    let valid: Record<string, LimitValue>;
    try {
      valid = this.validate(b, changes);
    } catch (err) {
      this.rejected(key, changes, actor, (err as Error).message, nowMs);
      throw err;
    }
    const before = this.effective(b);
    const rows = Object.entries(valid).map(([field, value]) => ({ field, old: before[field], value }));
    this.store?.set(key, rows, actor, nowMs);
    const fields = new Map(Object.entries(valid).map(([f, v]) => [f, { value: v, setAtMs: nowMs, setBy: actor }]));
    this.apply(b, valid, fields);
    this.log.info({ key, changes: valid, before: Object.fromEntries(rows.map((r) => [r.field, r.old])), actor }, 'limit override set');
    return this.entry(b);
  }

  /** Removes overrides (all of the key's when `fields` is empty); the config's values apply again. */
  rm(key: string, fields: string[], actor: string, nowMs = Date.now()): LimitEntry {
    const b = this.lookup(key);
    const current = this.overrides.get(b) ?? new Map<string, Override>();
    const allowed: readonly string[] = FIELDS_BY_KIND[KINDS[this.keys.specs[b].depth]];
    for (const f of fields) {
      if (!allowed.includes(f)) throw new LimitsError(ErrorCode.BAD_REQUEST, `${key} has no field "${f}"; its fields: ${allowed.join(', ')}`);
    }
    const removed = (fields.length === 0 ? [...current.keys()] : fields).filter((f) => current.has(f));
    if (removed.length === 0) return this.entry(b);
    const reverted: Record<string, LimitValue> = {};
    for (const f of removed) reverted[f] = this.configured(b)[f];
    const rest = Object.fromEntries([...current].filter(([f]) => !removed.includes(f)).map(([f, o]) => [f, o.value]));
    let valid: Record<string, LimitValue>;
    try {
      valid = this.validate(b, { ...reverted, ...rest });
    } catch (err) {
      throw new LimitsError(ErrorCode.BAD_REQUEST, `removing ${removed.join(', ')} would leave ${(err as Error).message}`);
    }
    const before = this.effective(b);
    this.store?.rm(key, removed.map((field) => ({ field, old: before[field], reverted: reverted[field] })), actor, nowMs);
    for (const f of removed) current.delete(f);
    if (current.size === 0) this.overrides.delete(b);
    this.push(b, valid);
    this.log.info({ key, removed, reverted, actor }, 'limit override removed');
    return this.entry(b);
  }

  private lookup(key: string): number {
    const b = this.keys.lookup(key);
    if (b < 0) throw new LimitsError(ErrorCode.UNKNOWN_KEY, `no bucket with key "${key}"`);
    return b;
  }

  private effective(b: number): Record<string, LimitValue> {
    const out = this.configured(b);
    for (const [f, o] of this.overrides.get(b) ?? []) out[f] = o.value;
    return out;
  }

  /** Checks `changes` for key b; returns them normalized, or throws LimitsError (BAD_REQUEST). */
  private validate(b: number, changes: Record<string, unknown>): Record<string, LimitValue> {
    const spec = this.keys.specs[b];
    const kind = KINDS[spec.depth];
    const allowed: readonly string[] = FIELDS_BY_KIND[kind];
    const bad = (msg: string) => new LimitsError(ErrorCode.BAD_REQUEST, msg);
    const out: Record<string, LimitValue> = {};
    if (Object.keys(changes).length === 0) throw bad(`nothing to change; ${spec.key} (${kind}) has: ${allowed.join(', ')}`);
    for (const [f, v] of Object.entries(changes)) {
      if (!allowed.includes(f)) throw bad(`a ${kind} has no live field "${f}"; ${spec.key} has: ${allowed.join(', ')}`);
      if (f === 'priority') {
        const p = typeof v === 'string' ? v.toUpperCase() : v;
        if (typeof p !== 'string' || !(PRIORITIES as readonly string[]).includes(p)) throw bad(`priority must be one of ${PRIORITIES.join(', ')}, found ${JSON.stringify(v)}`);
        out[f] = p;
      } else {
        const ok = typeof v === 'number' && Number.isFinite(v) && v <= MAX_TPS && (f === 'min_tps' ? v >= 0 : v > 0);
        if (!ok) throw bad(`${f} must be a number ${f === 'min_tps' ? '>= 0' : '> 0'} and <= ${MAX_TPS}, found ${JSON.stringify(v)}`);
        out[f] = v as number;
      }
    }
    const next = { ...this.effective(b), ...out };
    if (kind === 'service' && (next.min_tps as number) > (next.max_tps as number)) {
      throw bad(`min_tps ${next.min_tps} above max_tps ${next.max_tps} for ${spec.key}`);
    }
    if (kind !== 'endpoint') {
      const pool = spec.pool;
      const capacity = (pool === b ? next : this.effective(pool)).capacity_tps as number;
      let mins = 0;
      for (const s of this.keys.specs) if (s.depth === 1 && s.pool === pool) mins += (s.index === b ? next : this.effective(s.index)).min_tps as number;
      if (mins > capacity * (1 + 1e-12)) throw bad(`the minimums of pool ${this.keys.specs[pool].key} would add up to ${mins}, above its capacity_tps ${capacity}`);
    }
    return out;
  }

  private apply(b: number, valid: Record<string, LimitValue>, fields: Map<string, Override>): void {
    const current = this.overrides.get(b) ?? new Map<string, Override>();
    for (const [f, o] of fields) if (valid[f] !== undefined) current.set(f, { ...o, value: valid[f] });
    this.overrides.set(b, current);
    this.push(b, valid);
  }

  /** Hands the given fields (as effective now) to the controller. */
  private push(b: number, fields: Record<string, LimitValue>): void {
    const e = this.effective(b);
    const has = (f: string) => fields[f] !== undefined;
    this.target.setLimits(b, {
      minTps: has('min_tps') ? e.min_tps as number : undefined,
      maxTps: has('max_tps') ? e.max_tps as number : has('capacity_tps') ? e.capacity_tps as number : undefined,
      priority: has('priority') ? PRIORITIES.indexOf(e.priority as (typeof PRIORITIES)[number]) : undefined,
    });
  }

  private rejected(key: string, changes: Record<string, unknown>, actor: string, why: string, nowMs: number): void {
    this.log.warn({ key, changes, actor, reason: why }, 'limit override rejected');
    this.store?.audit({ tsMs: nowMs, action: 'rejected', key, field: Object.keys(changes).join(',') || null, oldValue: null,
      newValue: null, actor, detail: `${why} (asked: ${JSON.stringify(changes)})` });
  }
}
