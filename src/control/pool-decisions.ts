// Each awake pool's decision for the tick, and what it keeps from its last
// one (main thread, inside the controller's tick; nothing here is shared).
//
// An awake pool of 1 000 services with 10 moving would otherwise pay every
// tick, per service, for the policy, the guarantees and the safety layer,
// and allocate a few arrays of 1 000 doubles each (GC on the main thread).
// Three results are kept per pool and used again, exactly as they are, when
// nothing they are computed from moved since the pool's last evaluation:
//   - the policy's proposal, when the policy reads only the capacity and the
//     limits (AllocationPolicy.inputs === 'limits': static), the effective
//     capacity is the same and no limit changed;
//   - the guarantees (water-fill.ts), which read each service's `active`
//     flag, priority and min_tps and the effective capacity: kept when no
//     service's flag flipped (ServiceObservations.activeMoved), no limit
//     changed and the capacity is the same;
//   - the safety layer's output (safety.ts), which reads the proposal, the
//     allocation in force, the guarantees, max_tps and the capacity: kept when
//     the first three are the very arrays of last time, no limit changed and
//     the capacity is the same. A proposal equal value for value to the kept
//     one is replaced by the kept array first (a policy that reads demand,
//     such as fair, proposes anew each tick, often the same figures).
// A live limit change (Controller.setLimits, reconfigure) forgets the pool's
// results. Kept arrays are never written after they are made (the decision
// record, the pool's alloc and telemetry only read them), so sharing them
// between ticks is safe. The full tick (`incremental: false`) keeps nothing;
// test/unit/control/idle-keys.test.ts checks that both decide alike.

import type { PoolObservation } from '../ppo/observation.ts';
import type { Decision, PoolDecision, Rebuilt } from './decision.ts';
import type { PoolState } from './pool-rest.ts';
import type { PolicyRunner } from './policy-runner.ts';
import { applySafety, type SafetyOptions } from './safety.ts';
import type { ShadowRegret } from './shadow-regret.ts';
import { guarantees } from './water-fill.ts';

interface Kept {
  effectiveTps: number;
  decision: Decision;
  guarantees: Float64Array;
  alloc: Float64Array;
}

/** The same figures: the very array (kept from the last tick), or equal value for value. */
export function sameValues(a: Float64Array, b: Float64Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class PoolDecisions {
  /** Per pool ordinal: its last evaluation's results; null: none to keep (never evaluated, limits changed, or full ticks). */
  private readonly kept: (Kept | null)[];
  /** Results used again, by the last tick and in all (tests and benchmarks read them). */
  reused = { proposals: 0, guarantees: 0, allocations: 0 };

  constructor(pools: number, private readonly runner: PolicyRunner, private readonly safety: SafetyOptions,
    private readonly regret: ShadowRegret, private readonly incremental: boolean) {
    this.kept = new Array<Kept | null>(pools).fill(null);
  }

  /** Pool `ordinal`'s limits moved: its next decision keeps nothing from the last. */
  invalidate(ordinal: number): void {
    this.kept[ordinal] = null;
  }

  /** The policy's decision for the pool: last time's when the policy reads only capacity and limits and neither moved. */
  decide(pool: PoolState, obs: PoolObservation): Decision | Promise<Decision> {
    const k = this.kept[pool.ordinal];
    if (k !== null && this.runner.limitsOnly && k.decision.fallback === null && k.effectiveTps === obs.effectiveTps
      && k.decision.raw.length === obs.services.length) {
      this.reused.proposals++;
      return k.decision;
    }
    return this.runner.decide(obs);
  }

  /**
   * The pool's decision record: guarantees, the safety layer applied, and the
   * shadow regret; the pool's allocation in force moves on. `activeMoved`:
   * some service's active flag may have changed since the last evaluation;
   * `rebuilt`: which service observations this evaluation rebuilt (goes in the record).
   */
  record(pool: PoolState, obs: PoolObservation, decision: Decision, activeMoved: boolean, rebuilt: Rebuilt | null): PoolDecision {
    const k = this.kept[pool.ordinal];
    // A proposal equal, value for value, to the kept one is the kept array (fair's, while demand moves within what it grants).
    if (k !== null && decision.raw !== k.decision.raw && sameValues(decision.raw, k.decision.raw)) decision = { ...decision, raw: k.decision.raw };
    const sameCap = k !== null && k.effectiveTps === obs.effectiveTps;
    let g: Float64Array;
    if (sameCap && !activeMoved) { g = k.guarantees; this.reused.guarantees++; } else g = guarantees(obs);
    let alloc: Float64Array;
    if (sameCap && g === k.guarantees && decision.raw === k.decision.raw && pool.alloc === k.alloc) {
      alloc = k.alloc;
      this.reused.allocations++;
    } else alloc = applySafety(obs, decision.raw, pool.alloc, this.safety, g);
    const shadow = decision.shadow === null ? null : applySafety(obs, decision.shadow, pool.alloc, this.safety, g);
    pool.alloc = alloc;
    if (this.incremental) this.kept[pool.ordinal] = { effectiveTps: obs.effectiveTps, decision, guarantees: g, alloc };
    return { obs, decision, alloc, guarantees: g, shadowRegret: this.regret.judge(obs, shadow, alloc), rebuilt };
  }
}
