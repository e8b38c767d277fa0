// Surge and abuse defence for tenants (docs/tenants.md "Surge and abuse"):
// each tick, the tenants that moved are classed by the detector
// (surge-detector.ts) as normal, surge or attack, each tenant service too;
// an attacker's bucket gets its tier's defensive limit (tiers[].defense:
// tps_fraction of the tier's tps) until cooldown_s after the last tick it
// sent while classed attack, then its tier's rate back. Every class change, limit and lift is an
// event (the daemon writes them as limit_audit rows, at most
// MAX_EVENTS_PER_TICK a tick) and counted per tier and class for /metrics.
//
// Threads: main thread only, in the controller's tick. The I/O threads count
// each tenant's asks and own-bucket denials (shm/tenant-counters.ts); this
// reads the slots the tick's sweep found touched, plus those still settling from earlier ticks
// and those under a defensive limit, never the whole table. The limit is
// written into the tenant's slot as a tier change writes rates
// (TenantTable.setTier, the same tier): the I/O threads read it on their next
// take. A tier change by an admin meanwhile writes the tier's rate; the next
// tick that sees the tenant puts the defensive rate back.
//
// State is one entry per tenant slot (the detector's words, the counters last
// read, the slot's generation), so it is bounded by the tenant table; when
// the slot's generation moves (its tenant was forgotten, another made), the
// detector's state and any limit go with the old tenant. A reload (SIGHUP)
// gives the guard the new config's tiers (reconfigure): their defence
// applies from the next tick, to the tenants held then too.

import type { KeyIndex } from '../shm/key-index.ts';
import { MILLI, type ShmViews } from '../shm/layout.ts';
import { TC_OWN_DENIED, TC_REQUESTED, type TenantCounterReader } from '../shm/tenant-counters.ts';
import { TenantTable } from '../shm/tenant-table.ts';
import { ATTACK, NORMAL, SurgeDetector, TENANT_CLASSES, type DetectorOptions } from './surge-detector.ts';
import { MarkSet } from '../shm/mark-set.ts';

/** Audit events kept per tick; beyond it they are counted (droppedEvents), the limits still apply. */
export const MAX_EVENTS_PER_TICK = 256;
/** A service is under attack when tenants classed attack asked for at least this share of its tokens. */
export const SERVICE_ATTACK_SHARE = 0.5;

export interface GuardEvent {
  /** `pool/service/TENANT`, or a service's key. */
  readonly key: string;
  /** 'classify' (field 'class'), 'defend' and 'lift' (field 'rate_tps'). */
  readonly action: 'classify' | 'defend' | 'lift';
  readonly field: 'class' | 'rate_tps';
  /** A class name, or a rate in tokens/s. */
  readonly from: string | number;
  readonly to: string | number;
  /** The evidence: rate, denial ratio, baseline, z, the tier. */
  readonly detail: string;
}

/** Per tier, for /metrics (labels: the tier's key and the class). */
export interface TierGuardCounts {
  readonly tier: string;
  /** Entries into each class (TENANT_CLASSES order) since start. */
  readonly changes: number[];
  /** Tenants in each class now (normal: those watched, not every live tenant). */
  readonly current: number[];
  defended: number;
  applied: number;
  lifted: number;
}

export class TenantGuard {
  readonly detector: SurgeDetector;
  /** This tick's events (cleared at the next tick). */
  events: GuardEvent[] = [];
  droppedEvents = 0;
  /** Per tier bucket with tenants, in bucket order. */
  readonly tiers: TierGuardCounts[] = [];
  /** Each tenant service's key and class now. */
  readonly services: { readonly key: string; readonly bucket: number; cls: number }[] = [];
  private readonly table: TenantTable;
  /** Per bucket: a tier's counts (undefined for other buckets). */
  private readonly tierAt: (TierGuardCounts | undefined)[];
  /** Per bucket: a tenant service's index in `services`, else -1. */
  private readonly serviceAt: Int32Array;
  private readonly serviceDetector: SurgeDetector;
  private readonly lastAsked: Int32Array;
  private readonly lastDenied: Int32Array;
  private readonly gen: Int32Array;
  /** The tier bucket and class the slot is counted under in TierGuardCounts.current (tier -1: not counted). */
  private readonly countedTier: Int32Array;
  private readonly countedClass: Uint8Array;
  /** The tier bucket whose `defended` count holds the slot. */
  private readonly defendedTier: Int32Array;
  /** Shared-clock ms until which the slot is held at its defensive limit; 0: not defended. */
  private readonly defendedUntil: Float64Array;
  private readonly visited: MarkSet;
  private watch: number[] = [];
  private defended: number[] = [];
  private readonly serviceAsked: Float64Array;
  private readonly serviceAttackAsked: Float64Array;

  constructor(private keys: KeyIndex, views: ShmViews, private readonly counts: TenantCounterReader, options?: DetectorOptions) {
    const slots = views.layout.tenantSlots;
    this.table = new TenantTable(views);
    this.detector = new SurgeDetector(slots, options);
    this.lastAsked = new Int32Array(slots);
    this.lastDenied = new Int32Array(slots);
    this.gen = new Int32Array(slots);
    this.countedTier = new Int32Array(slots).fill(-1);
    this.countedClass = new Uint8Array(slots);
    this.defendedTier = new Int32Array(slots);
    this.defendedUntil = new Float64Array(slots);
    this.visited = new MarkSet(slots);
    this.tierAt = new Array<TierGuardCounts | undefined>(keys.size).fill(undefined);
    this.serviceAt = new Int32Array(keys.size).fill(-1);
    for (const s of keys.specs) {
      if (s.tier !== null) {
        const counts = { tier: s.key, changes: [0, 0, 0], current: [0, 0, 0], defended: 0, applied: 0, lifted: 0 };
        this.tiers.push(counts);
        this.tierAt[s.index] = counts;
      }
      if (s.tenants !== null) { this.serviceAt[s.index] = this.services.length; this.services.push({ key: s.key, bucket: s.index, cls: NORMAL }); }
    }
    this.serviceDetector = new SurgeDetector(this.services.length, options);
    this.serviceAsked = new Float64Array(this.services.length);
    this.serviceAttackAsked = new Float64Array(this.services.length);
  }

  /**
   * A reloaded config's keys (the same key set, daemon/reload.ts): its
   * tiers' `defense`, tps and burst apply from the next tick. A tenant held
   * now keeps its hold, at tps_fraction of the new tps (keepDefences writes
   * it), and its cool-down runs from its last attack tick with the new
   * cooldown_s.
   */
  reconfigure(next: KeyIndex): void {
    for (const slot of this.defended) {
      if (this.defendedUntil[slot] === 0) continue;
      const tier = this.defendedTier[slot];
      const lastAttackMs = this.defendedUntil[slot] - this.keys.specs[tier].tier!.defense.cooldown_s * 1000;
      this.defendedUntil[slot] = Math.max(1, lastAttackMs + next.specs[tier].tier!.defense.cooldown_s * 1000);
    }
    this.keys = next;
  }

  /** One tick of `dtS` seconds ending at `nowMs` (the shared clock, the buckets' time). */
  tick(dtS: number, nowMs: number): void {
    this.events = [];
    this.visited.clear();
    this.serviceAsked.fill(0);
    this.serviceAttackAsked.fill(0);
    const previous = this.watch;
    this.watch = [];
    const c = this.counts;
    for (let k = 0; k < c.movedCount; k++) this.visit(c.moved[k], dtS, nowMs);
    for (const slot of previous) this.visit(slot, dtS, nowMs);
    this.keepDefences(nowMs);
    this.classifyServices(dtS);
  }

  private visit(slot: number, dtS: number, nowMs: number): void {
    if (!this.visited.add(slot)) return;
    const t = this.table;
    const askedTotal = this.counts.total(slot, TC_REQUESTED);
    const deniedTotal = this.counts.total(slot, TC_OWN_DENIED);
    const asked = (askedTotal - this.lastAsked[slot]) | 0;
    const denied = (deniedTotal - this.lastDenied[slot]) | 0;
    this.lastAsked[slot] = askedTotal;
    this.lastDenied[slot] = deniedTotal;
    if (!t.isLive(slot)) { this.forget(slot); return; }
    if (t.genOf(slot) !== this.gen[slot]) { this.forget(slot); this.gen[slot] = t.genOf(slot); }
    const tier = t.tierOf(slot);
    const spec = this.keys.specs[tier].tier;
    if (spec === null) return;
    const before = this.detector.classOf(slot);
    const cls = this.detector.observe(slot, asked, denied, dtS, spec.tps);
    this.count(slot, tier, cls);
    if (cls !== before) {
      this.tierAt[tier]!.changes[cls]++;
      this.event(slot, 'classify', 'class', TENANT_CLASSES[before], TENANT_CLASSES[cls], tier);
    }
    const svc = this.serviceAt[t.serviceOf(slot)];
    if (svc >= 0) {
      this.serviceAsked[svc] += asked;
      if (cls === ATTACK) this.serviceAttackAsked[svc] += asked;
    }
    // Held while it keeps sending as an attacker; the cool-down runs from its last such tick (a tenant that stopped is
    // still classed attack for a while, and is not limited again for it).
    if (cls === ATTACK && asked > 0) this.defend(slot, tier, nowMs);
    if (!this.detector.settled(slot) || this.defendedUntil[slot] > 0) this.watch.push(slot);
    else this.uncount(slot);
  }

  /** Holds an attacker at its tier's defensive limit until cooldown_s after its last attack tick. */
  private defend(slot: number, tier: number, nowMs: number): void {
    const spec = this.keys.specs[tier].tier!;
    const fresh = this.defendedUntil[slot] === 0;
    this.defendedUntil[slot] = nowMs + spec.defense.cooldown_s * 1000;
    if (!fresh) return;
    this.defended.push(slot);
    this.defendedTier[slot] = tier;
    const rateTps = spec.tps * spec.defense.tps_fraction;
    this.table.setTier(slot, tier, Math.round(rateTps * MILLI), Math.round(spec.burst * MILLI), nowMs);
    const counts = this.tierAt[tier]!;
    counts.defended++;
    counts.applied++;
    this.event(slot, 'defend', 'rate_tps', spec.tps, rateTps, tier);
  }

  /** Lifts the limits whose cool-down is over; puts back one an admin's tier change overwrote; drops those of forgotten tenants. */
  private keepDefences(nowMs: number): void {
    const still: number[] = [];
    for (const slot of this.defended) {
      if (this.defendedUntil[slot] === 0) continue; // forgotten with its tenant
      if (!this.table.isLive(slot) || this.table.genOf(slot) !== this.gen[slot]) { this.forget(slot); continue; }
      const tier = this.table.tierOf(slot);
      const spec = this.keys.specs[tier].tier!;
      if (nowMs >= this.defendedUntil[slot]) {
        this.defendedUntil[slot] = 0;
        this.table.setTier(slot, tier, Math.round(spec.tps * MILLI), Math.round(spec.burst * MILLI), nowMs);
        this.tierAt[this.defendedTier[slot]]!.defended--;
        this.tierAt[tier]!.lifted++;
        this.event(slot, 'lift', 'rate_tps', spec.tps * spec.defense.tps_fraction, spec.tps, tier);
        continue;
      }
      const rateMilli = Math.round(spec.tps * spec.defense.tps_fraction * MILLI);
      if (this.table.rateMilli(slot) !== rateMilli) this.table.setTier(slot, tier, rateMilli, Math.round(spec.burst * MILLI), nowMs);
      still.push(slot);
      if (!this.visited.has(slot)) this.watch.push(slot);
    }
    this.defended = still;
  }

  /** The slot's tenant is gone (or another lives there): its class counts, state and limit go with it. */
  private forget(slot: number): void {
    this.uncount(slot);
    if (this.defendedUntil[slot] > 0) {
      this.tierAt[this.defendedTier[slot]]!.defended--;
      this.defendedUntil[slot] = 0;
    }
    this.detector.reset(slot);
  }

  /** Keeps the per-tier class counts (current: the tenants being watched, by class). */
  private count(slot: number, tier: number, cls: number): void {
    this.uncount(slot);
    this.tierAt[tier]!.current[cls]++;
    this.countedTier[slot] = tier;
    this.countedClass[slot] = cls;
  }

  private uncount(slot: number): void {
    const counted = this.countedTier[slot];
    if (counted >= 0) this.tierAt[counted]!.current[this.countedClass[slot]]--;
    this.countedTier[slot] = -1;
  }

  private classifyServices(dtS: number): void {
    for (let i = 0; i < this.services.length; i++) {
      const svc = this.services[i];
      const asked = this.serviceAsked[i];
      let cls = this.serviceDetector.observe(i, asked, 0, dtS, Infinity);
      if (asked > 0 && this.serviceAttackAsked[i] >= SERVICE_ATTACK_SHARE * asked) cls = ATTACK;
      if (cls !== svc.cls) {
        this.push({ key: svc.key, action: 'classify', field: 'class', from: TENANT_CLASSES[svc.cls], to: TENANT_CLASSES[cls],
          detail: JSON.stringify({ asked_tps: round(asked / dtS), attack_share: asked > 0 ? round(this.serviceAttackAsked[i] / asked) : 0,
            baseline_tps: round(this.serviceDetector.baselineTps(i)), z: round(this.serviceDetector.zScore(i)) }) });
        svc.cls = cls;
      }
    }
  }

  private event(slot: number, action: GuardEvent['action'], field: GuardEvent['field'], from: string | number, to: string | number, tier: number): void {
    if (this.events.length >= MAX_EVENTS_PER_TICK) { this.droppedEvents++; return; }
    const d = this.detector;
    const service = this.keys.specs[this.table.serviceOf(slot)].key;
    this.push({ key: `${service}/${this.table.nameOf(slot)}`, action, field, from, to,
      detail: JSON.stringify({ tier: this.keys.specs[tier].key, rate_tps: round(d.rateTps(slot)), denial_ratio: round(d.denialRatio(slot)),
        baseline_tps: round(d.baselineTps(slot)), z: round(d.zScore(slot)) }) });
  }

  private push(e: GuardEvent): void {
    if (this.events.length >= MAX_EVENTS_PER_TICK) { this.droppedEvents++; return; }
    this.events.push(e);
  }
}

const round = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0);
