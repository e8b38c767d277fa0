// What the controller decides for one pool in one tick, made once on the main
// thread and read, not recomputed, by whoever reports it: telemetry
// (daemon/tick-recorder.ts), /metrics (fallback counts by kind, through
// DaemonStats), the simulator and status.

import type { PoolObservation, ServiceObservation } from '../ppo/observation.ts';

/** Why a policy's proposal was not applied; a closed list (the /metrics label values). */
export const FALLBACK_KINDS = ['missing_model', 'deadline', 'busy', 'invalid_output', 'error'] as const;
export type FallbackKind = (typeof FALLBACK_KINDS)[number];

export interface Fallback {
  readonly kind: FallbackKind;
  /** Human-readable, for logs and telemetry ("NaN in allocation", "error: <message>"). */
  readonly reason: string;
}

/** The policy runner's answer for one pool (policy-runner.ts). */
export interface Decision {
  /** The proposal applied, before the safety layer. */
  readonly raw: Float64Array;
  /** The policy whose proposal is applied. */
  readonly applied: string;
  /** Set when the policy's proposal was unusable and fair's was applied instead. */
  readonly fallback: Fallback | null;
  /** Shadow mode: PPO's proposal (before safety), recorded, not applied. */
  readonly shadow: Float64Array | null;
}

/** The controller's record of one pool's tick. */
export interface PoolDecision {
  readonly obs: PoolObservation;
  readonly decision: Decision;
  /** After the safety layer: what the buckets get, tokens/s per service. */
  readonly alloc: Float64Array;
  /** Each service's min_tps guarantee this tick (the safety layer's stage 2). */
  readonly guarantees: Float64Array;
  /** Shadow mode: the regret judged this tick (shadow-regret.ts), else null. */
  readonly shadowRegret: number | null;
  /** Which service observations this evaluation rebuilt, from which list (service-observations.ts); null: all of them. */
  readonly rebuilt: Rebuilt | null;
}

/** obs.services is `from` (the pool's previous list) with the entries at `positions` (ascending) rebuilt; every other entry is from's object. */
export interface Rebuilt {
  readonly from: readonly ServiceObservation[];
  readonly positions: Int32Array;
}
