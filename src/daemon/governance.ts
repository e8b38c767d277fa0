// Governance (config `governance.approve_above`, a step ratio): large limit
// changes wait for an admin's approval while the old limit stays.
//
// - An operator's change (op 16 LIMITS set or rm) that moves a numeric
//   limit by more than the ratio, up or down (a cut to a hundredth is as
//   much an outage as a rise a hundredfold is an overload), is held instead
//   of applied; the reply carries the pending change. A priority alone is
//   never held.
// - The allocator's cap for a tenant tier (control/tier-split.ts, through
//   TierGate) may move freely up to `ratio` times the tier's approved level;
//   a higher proposal is held and the cap stays at that ceiling. The level
//   is the tier's first cap after start (or the last approved, persisted),
//   not last tick's cap, so a ramp cannot creep past it tick by tick and an
//   idle dip and return asks nothing. Falls are never held.
//
// Abuse bounds: one pending change per source and key (a newer one replaces
// it under a new id, so approving an id always applies what was reviewed),
// at most MAX_PENDING in all (then OVERLOADED for operators; the allocator
// keeps its ceiling unrecorded); ids are 96 random bits, unrelated to the
// key; a declined tier rise is not asked again until a proposal exceeds it by
// the ratio. Op 18 APPROVALS needs an admin token (checked on the I/O thread).
//
// Threads: main thread only: admin ops arrive through admin.ts, the gate is
// called from the controller's tick, both on this thread.

import { randomBytes } from 'node:crypto';
import { ErrorCode } from '../protocol/errors.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import type { ApprovalStore, PendingRecord } from '../storage/approvals.ts';
import type { LimitValue } from '../storage/overrides.ts';
import type { AdminRequest } from '../io/messages.ts';
import { LimitsError, type LimitEntry, type LiveLimits } from './live-limits.ts';

/** The most changes pending at once (operator and allocator together). */
export const MAX_PENDING = 1000;
/** The allocator's field in a pending change and the audit trail. */
export const ALLOCATION_FIELD = 'allocation_tps';

export interface GovernanceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A pending change as op 18 lists it. */
export interface PendingView {
  id: string; source: string; key: string; action: string; old: Record<string, LimitValue>; new: Record<string, LimitValue>;
  /** The largest factor between an old and a new value; null: from or to 0. */
  step: number | null; requested_at_ms: number; requested_by: string;
}

/** The largest factor between the old and the new numeric values (1: none moved; Infinity: to or from 0). */
export function stepOf(old: Record<string, LimitValue>, next: Record<string, LimitValue>): number {
  let step = 1;
  for (const [f, n] of Object.entries(next)) {
    const o = old[f];
    if (typeof n !== 'number' || typeof o !== 'number' || n === o) continue;
    step = Math.max(step, o <= 0 || n <= 0 ? Infinity : Math.max(n / o, o / n));
  }
  return step;
}

export class Governance {
  private readonly pending = new Map<string, PendingRecord>();
  /** `${source} ${key}` -> id. */
  private readonly byTarget = new Map<string, string>();
  /** Tier bucket -> approved level (tokens/s). */
  private readonly levels = new Map<number, number>();
  /** Tier bucket -> the declined rise: not asked again below it times the ratio. */
  private readonly declined = new Map<number, number>();
  private warnedFull = false;

  constructor(
    private readonly keys: KeyIndex,
    private readonly limits: () => LiveLimits,
    /** governance.approve_above in force (reloads apply), or null: off. */
    private readonly ratio: () => number | null,
    private readonly store: ApprovalStore | null,
    private readonly log: GovernanceLogger,
  ) {}

  get size(): number { return this.pending.size; }

  /** Reads the pending changes and approved levels back (start); a tier change whose tier is gone is dropped, audited. */
  restore(nowMs = Date.now()): number {
    if (this.store === null) return 0;
    for (const [key, level] of this.store.levels()) {
      const b = this.keys.find(key);
      if (b >= 0 && this.keys.specs[b].tier !== null) this.levels.set(b, level);
    }
    for (const p of this.store.list()) {
      if (p.source === 'allocator' && this.tierBucket(p.key) < 0) {
        this.store.resolve(p, 'skipped', 'tpsd start', nowMs, `dropped at start: ${p.key} is not a tier in this config`);
        continue;
      }
      this.remember(p);
    }
    if (this.pending.size > 0) this.log.info({ pending: this.pending.size }, 'limit changes pending approval');
    return this.pending.size;
  }

  /**
   * Op 16 set or rm: the reply body of a held change, or null when it is not
   * held (governance off, a small change, or one LiveLimits will refuse).
   */
  screen(req: AdminRequest): Record<string, unknown> | null {
    const ratio = this.ratio();
    if (ratio === null || req.key === null || (req.action !== 'set' && req.action !== 'rm')) return null;
    const limits = this.limits();
    const change = req.action === 'set' ? previewSet(limits, req.key, req.changes) : previewRm(limits, req.key, req.fields);
    if (change === null) return null;
    const step = stepOf(change.old, change.next);
    if (step <= ratio) return null;
    const p: PendingRecord = {
      id: newId(), source: 'operator', key: req.key, action: req.action, request: change.request,
      old: change.old, next: change.next, step, requestedAtMs: Date.now(), requestedBy: req.actor,
    };
    this.hold(p, true);
    this.log.info({ id: p.id, key: p.key, old: p.old, new: p.next, step, actor: req.actor }, 'limit change held for approval');
    return { ...(limits.get(req.key) as LimitEntry), persisted: limits.persisted, held: view(p) };
  }

  /** Op 18 APPROVALS. Throws LimitsError (its protocol code) for a refused request. */
  answer(action: string, id: string | null, actor: string): unknown {
    if (action === 'list') {
      const pending = [...this.pending.values()].sort((a, b) => a.requestedAtMs - b.requestedAtMs).map(view);
      return { approve_above: this.ratio(), max: MAX_PENDING, persisted: this.store !== null, pending };
    }
    const p = id === null ? undefined : this.pending.get(id);
    if (p === undefined) throw new LimitsError(ErrorCode.UNKNOWN_KEY, `no pending change with id ${JSON.stringify(id)}`);
    const nowMs = Date.now();
    if (action === 'reject') {
      this.store?.resolve(p, 'declined', actor, nowMs, 'rejected');
      this.forget(p);
      const b = this.tierBucket(p.key);
      if (p.source === 'allocator' && b >= 0) this.declined.set(b, p.next[ALLOCATION_FIELD] as number);
      this.log.info({ id: p.id, key: p.key, actor }, 'pending limit change rejected');
      return { rejected: view(p) };
    }
    const entry = this.apply(p, actor, nowMs);
    this.log.info({ id: p.id, key: p.key, new: p.next, actor }, 'pending limit change approved');
    return { approved: view(p), ...(entry === null ? {} : { entry }) };
  }

  /** TierGate: the cap to write for tier bucket `tier` this tick. */
  admit(tier: number, proposedTps: number): number {
    const ratio = this.ratio();
    if (ratio === null) return proposedTps;
    const level = this.levels.get(tier);
    if (level === undefined) { this.levels.set(tier, proposedTps); return proposedTps; }
    const ceiling = level * ratio;
    if (proposedTps <= ceiling) return proposedTps;
    this.holdRise(tier, level, proposedTps, ratio);
    return ceiling;
  }

  /** Applies an approved change: operator changes through LiveLimits (re-validated now), tier levels here. */
  private apply(p: PendingRecord, actor: string, nowMs: number): LimitEntry | null {
    let entry: LimitEntry | null = null;
    if (p.source === 'operator') {
      const limits = this.limits();
      try {
        entry = Array.isArray(p.request) ? limits.rm(p.key, p.request, actor, nowMs) : limits.set(p.key, p.request, actor, nowMs);
      } catch (err) {
        if (!(err instanceof LimitsError)) throw err;
        throw new LimitsError(err.code as number, `${p.id} cannot apply now (still pending; reject it or change the limits first): ${err.message}`);
      }
    }
    // Written before the level moves: an approval the database refused changes nothing (OVERLOADED).
    this.store?.resolve(p, 'approved', actor, nowMs, 'approved');
    const b = p.source === 'allocator' ? this.tierBucket(p.key) : -1;
    if (b >= 0) { this.levels.set(b, p.next[ALLOCATION_FIELD] as number); this.declined.delete(b); }
    this.forget(p);
    return entry;
  }

  /** A tier's proposal above its ceiling: recorded unless the pending (or declined) one already covers it. */
  private holdRise(tier: number, level: number, proposedTps: number, ratio: number): void {
    const key = this.keys.specs[tier].key;
    const current = this.pending.get(this.byTarget.get(`allocator ${key}`) ?? '');
    const covered = current?.next[ALLOCATION_FIELD] ?? this.declined.get(tier);
    if (covered !== undefined && proposedTps <= (covered as number) * ratio) return;
    const next = Math.round(proposedTps * 1000) / 1000;
    const p: PendingRecord = {
      id: newId(), source: 'allocator', key, action: 'allocate', request: { [ALLOCATION_FIELD]: next },
      old: { [ALLOCATION_FIELD]: level }, next: { [ALLOCATION_FIELD]: next }, step: proposedTps / level,
      requestedAtMs: Date.now(), requestedBy: 'allocator',
    };
    if (this.hold(p, false)) this.log.info({ id: p.id, key, level, proposed: next }, 'tier allocation rise held for approval');
  }

  /** Records a held change (replacing the same source and key's); false (or OVERLOADED) when MAX_PENDING are held. */
  private hold(p: PendingRecord, refuse: boolean): boolean {
    const replaced = this.pending.get(this.byTarget.get(`${p.source} ${p.key}`) ?? '') ?? null;
    if (replaced === null && this.pending.size >= MAX_PENDING) {
      const message = `${MAX_PENDING} limit changes are pending approval: approve or reject some first`;
      if (refuse) throw new LimitsError(ErrorCode.OVERLOADED, message);
      if (!this.warnedFull) this.log.warn({ key: p.key }, `${message} (tier rises stay at their ceiling, unrecorded)`);
      this.warnedFull = true;
      return false;
    }
    try {
      this.store?.hold(p, replaced);
    } catch (err) {
      // An operator's change not on disk is not held (answered OVERLOADED); the tick must not fail on a full disk.
      if (refuse) throw err;
      this.log.warn({ err, key: p.key, id: p.id }, 'a held tier rise could not be written to the database: kept in memory only');
    }
    if (replaced !== null) this.forget(replaced);
    this.remember(p);
    return true;
  }

  private remember(p: PendingRecord): void {
    this.pending.set(p.id, p);
    this.byTarget.set(`${p.source} ${p.key}`, p.id);
  }

  private forget(p: PendingRecord): void {
    this.pending.delete(p.id);
    if (this.byTarget.get(`${p.source} ${p.key}`) === p.id) this.byTarget.delete(`${p.source} ${p.key}`);
    if (this.pending.size < MAX_PENDING) this.warnedFull = false;
  }

  private tierBucket(key: string): number {
    const b = this.keys.find(key);
    return b >= 0 && this.keys.specs[b].tier !== null ? b : -1;
  }
}

/** 96 random bits: nobody learns or guesses another change's id from its own, its key or its time. */
const newId = (): string => `chg_${randomBytes(12).toString('base64url')}`;

function view(p: PendingRecord): PendingView {
  return { id: p.id, source: p.source, key: p.key, action: p.action, old: p.old, new: p.next,
    step: Number.isFinite(p.step) ? Math.round(p.step * 1000) / 1000 : null, requested_at_ms: p.requestedAtMs, requested_by: p.requestedBy };
}

type Preview = { request: Record<string, LimitValue> | string[]; old: Record<string, LimitValue>; next: Record<string, LimitValue> };

/** A set's values before and after, or null when LiveLimits would refuse it (it answers and audits that). */
function previewSet(limits: LiveLimits, key: string, changes: Record<string, unknown>): Preview | null {
  let valid: Record<string, LimitValue>;
  let entry: LimitEntry;
  try {
    valid = limits.check(key, changes);
    entry = limits.get(key) as LimitEntry;
  } catch { return null; }
  const old = Object.fromEntries(Object.keys(valid).map((f) => [f, entry.effective[f]]));
  return { request: valid, old, next: valid };
}

/** An rm's values before and after (the configured ones), or null when there is nothing to remove or it names a bad field. */
function previewRm(limits: LiveLimits, key: string, fields: readonly string[]): Preview | null {
  let entry: LimitEntry;
  try { entry = limits.get(key) as LimitEntry; } catch { return null; }
  if (fields.some((f) => !Object.hasOwn(entry.configured, f))) return null;
  const removed = (fields.length === 0 ? Object.keys(entry.overrides) : fields).filter((f) => Object.hasOwn(entry.overrides, f));
  if (removed.length === 0) return null;
  return {
    request: removed,
    old: Object.fromEntries(removed.map((f) => [f, entry.effective[f]])),
    next: Object.fromEntries(removed.map((f) => [f, entry.configured[f]])),
  };
}
