// The per-pool decision rows of a tick (control/decision.ts records, made by
// the controller), carrying only the services whose figures changed since
// the pool's previous row (main thread, called by TickRecorder right after
// the controller's tick; the SQLite work is on the writer thread).
//
// A service is carried when any of its figures differs from the pool's
// previous posted row: the limit before, the proposal, the allocation after,
// PPO's shadow proposal, max_tps or the guarantee. A pool's first row (and the
// first after a dropped tick) carries every service, so that reading a pool's
// rows from its first one on gives every service's figures at every tick. The
// pool's own figures (policy, fallback, capacities, demand, regret) are in
// every row. Every FULL_ROW_EVERY rows a pool's row carries every service
// again (pools staggered), so that once retention has deleted a pool's first
// rows (storage/retention.ts) the rows left still hold every service's
// figures from the oldest full one on. decisionPositions says which service each carried row is (its
// place in the pool's service list); `tpsd decisions` shows what each row
// carries (storage/telemetry-store.ts, cli/decisions.ts).
//
// Cost: per evaluated pool one pass of typed-array compares; when the
// pool's proposal, allocation and guarantees are the very arrays of its
// previous row (kept by control/pool-decisions.ts), only the services whose
// observation the evaluation rebuilt (PoolDecision.rebuilt: those that may
// have moved, control/service-observations.ts) are looked at, or, when the
// previous row is not the list they were rebuilt from, one pass of reference
// compares over the pool's service observations. Nothing is copied: the
// previous row's arrays are the previous record's, which nobody writes.

import type { Controller } from '../control/controller.ts';
import type { PoolDecision } from '../control/decision.ts';
import { DEC, DEC_FIELDS, type DecisionRow } from '../storage/telemetry-store.ts';

/** A pool's rows between two that carry every service (3 600: an hour of 1 s ticks, far below the decisions' retention). */
export const FULL_ROW_EVERY = 3600;

export interface DecisionBatch {
  decisions: DecisionRow[];
  /** DEC_FIELDS per carried service. */
  values: Float64Array;
  /** Per carried service, its place in its pool's service list. */
  positions: Int32Array;
}

/** Whether service i's figures in `a` differ from those in `b` (b: the pool's previous posted row). */
function changed(a: PoolDecision, b: PoolDecision, i: number): boolean {
  const s = a.obs.services[i];
  const t = b.obs.services[i];
  if (s !== t && (s.limitTps !== t.limitTps || s.maxTps !== t.maxTps)) return true;
  if (a.decision.raw[i] !== b.decision.raw[i] || a.alloc[i] !== b.alloc[i] || a.guarantees[i] !== b.guarantees[i]) return true;
  const x = a.decision.shadow;
  const y = b.decision.shadow;
  return x === null ? y !== null : y === null || x[i] !== y[i];
}

/** True when both records hold the very same proposal, allocation and guarantee arrays, and no shadow proposal. */
function sameArrays(a: PoolDecision, b: PoolDecision): boolean {
  return a.decision.raw === b.decision.raw && a.alloc === b.alloc && a.guarantees === b.guarantees
    && a.decision.shadow === null && b.decision.shadow === null;
}

export class DecisionRows {
  /** Per pool ordinal: the record of its previous posted row; null: the next row carries every service. */
  private readonly previous: (PoolDecision | null)[];
  /** Per pool ordinal: rows since its last one carrying every service. */
  private readonly sinceFull: Int32Array;
  private values = new Float64Array(256 * DEC_FIELDS);
  private positions = new Int32Array(256);
  /** The pools of the last collect(), forgotten again if its rows are dropped. */
  private lastPools: readonly number[] = [];

  constructor(pools: number) {
    this.previous = new Array<PoolDecision | null>(pools).fill(null);
    // Staggered, so that pools evaluated together from the start do not all carry every service at the same tick.
    this.sinceFull = Int32Array.from({ length: pools }, (_, k) => (k * 97) % FULL_ROW_EVERY);
  }

  /** The rows of the pools the controller's last tick evaluated. */
  collect(controller: Controller): DecisionBatch {
    let r = 0;
    const decisions: DecisionRow[] = [];
    for (const k of controller.evaluated) {
      const rec = controller.last[k];
      const { obs, decision } = rec;
      const n = obs.services.length;
      const prev = this.previous[k];
      const periodic = ++this.sinceFull[k] >= FULL_ROW_EVERY;
      if (periodic) this.sinceFull[k] = 0;
      const all = prev === null || prev.obs.services.length !== n || periodic;
      const offset = r;
      if (all) for (let i = 0; i < n; i++) this.put(r++, rec, i);
      else if (sameArrays(rec, prev) && rec.rebuilt !== null && rec.rebuilt.from === prev.obs.services) {
        // The same proposal, allocation and guarantees (control/pool-decisions.ts kept them), and the observations
        // those of the previous row but the rebuilt ones: only those can have changed.
        const p = rec.rebuilt.positions;
        for (let j = 0; j < p.length; j++) if (changed(rec, prev, p[j])) this.put(r++, rec, p[j]);
      } else if (sameArrays(rec, prev)) {
        // Only a service whose observation is a new object can have changed.
        const now = obs.services;
        const then = prev.obs.services;
        for (let i = 0; i < n; i++) if (now[i] !== then[i] && changed(rec, prev, i)) this.put(r++, rec, i);
      } else for (let i = 0; i < n; i++) if (changed(rec, prev, i)) this.put(r++, rec, i);
      this.previous[k] = rec;
      decisions.push({
        pool: obs.key, policy: decision.applied, fallbackReason: decision.fallback?.reason ?? null,
        capacityTps: obs.capacityTps, effectiveTps: obs.effectiveTps, demandTps: obs.totalDemandTps,
        stepCap: obs.stepCap, stepFloorTps: obs.stepFloorTps, shadowRegret: rec.shadowRegret, offset, services: r - offset,
      });
    }
    this.lastPools = controller.evaluated;
    return { decisions, values: this.values.slice(0, r * DEC_FIELDS), positions: this.positions.slice(0, r) };
  }

  /** The last collect()'s rows were not posted: its pools' next rows carry every service. */
  dropped(): void {
    for (const k of this.lastPools) this.previous[k] = null;
  }

  private put(r: number, rec: PoolDecision, i: number): void {
    if (r === this.positions.length) {
      const positions = new Int32Array(r * 2);
      positions.set(this.positions);
      this.positions = positions;
      const values = new Float64Array(r * 2 * DEC_FIELDS);
      values.set(this.values);
      this.values = values;
    }
    const s = rec.obs.services[i];
    const o = r * DEC_FIELDS;
    const v = this.values;
    v[o + DEC.BEFORE] = s.limitTps;
    v[o + DEC.PROPOSED] = rec.decision.raw[i];
    v[o + DEC.AFTER] = rec.alloc[i];
    v[o + DEC.SHADOW] = rec.decision.shadow === null ? Number.NaN : rec.decision.shadow[i];
    v[o + DEC.MAX_TPS] = s.maxTps;
    v[o + DEC.GUARANTEE] = rec.guarantees[i];
    this.positions[r] = i;
  }
}
