// Chooses each pool's raw allocation for the tick according to the policy
// mode (main thread). ppo: the model's proposal, or fair when it is missing,
// invalid (NaN/Inf/negative/wrong length), throws, or misses the deadline;
// shadow: the model proposes and is recorded, fair applies (the controller
// judges the regret, shadow-regret.ts); fallback/fair: fair; static: static.
// The sim may force any policy by name (override).
// Every fallback gets its kind (decision.ts) where it happens, and a reason in
// words; it is counted by kind and by reason and logged (first time, then
// every LOG_EVERY-th repeat, so a broken model does not flood the log).

import { runningMode, type PolicyMode } from '../config/types.ts';
import type { PoolObservation } from '../ppo/observation.ts';
import { FALLBACK_KINDS, type Decision, type Fallback, type FallbackKind } from './decision.ts';
import { createPolicy } from './policies/registry.ts';
import type { AllocationPolicy, PpoSource } from './policies/types.ts';
import { validateAllocation } from './safety.ts';

export type { PpoSource } from './policies/types.ts';

export interface ControlLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}


const LOG_EVERY = 60;

export class PolicyRunner {
  readonly fair = createPolicy('fair');
  private readonly staticPolicy = createPolicy('static');
  /** Fallbacks by reason (status; the log counts repeats of a reason). */
  readonly fallbacks = new Map<string, number>();
  /** Fallbacks by kind, every kind present (/metrics). */
  readonly fallbacksByKind = Object.fromEntries(FALLBACK_KINDS.map((k) => [k, 0])) as Record<FallbackKind, number>;
  private readonly busy = new Set<number>();

  constructor(
    readonly mode: PolicyMode,
    public ppo: PpoSource | null,
    private readonly deadlineMs: number,
    private readonly logger: ControlLogger | null,
    private readonly override: AllocationPolicy | null = null,
  ) {}

  /**
   * The pool's capacity for the coming tick: the policy's own (a forced
   * policy with a capacityTps hook, such as baseline), never above
   * discovery's (the simulator's oracle: never above capacity_tps);
   * discovery's when it has none or answers nonsense.
   */
  capacityTps(obs: PoolObservation): number {
    const hook = this.override?.capacityTps;
    if (hook === undefined) return obs.effectiveTps;
    let tps: number;
    try { tps = hook.call(this.override, obs); } catch { return obs.effectiveTps; }
    if (!Number.isFinite(tps) || tps < 0) return obs.effectiveTps;
    return Math.min(this.override?.capacityAbove === true ? obs.capacityTps : obs.effectiveTps, tps);
  }

  /** True when the policy in force reads only the capacity and the limits (AllocationPolicy.inputs): static. */
  get limitsOnly(): boolean {
    if (this.override !== null) return this.override.inputs === 'limits';
    const mode = runningMode(this.mode);
    return mode === 'static' && this.staticPolicy.inputs === 'limits';
  }

  async decide(obs: PoolObservation): Promise<Decision> {
    if (this.override !== null) return this.guarded(obs, this.override.name, () => this.override!.allocate(obs));
    switch (runningMode(this.mode)) {
      case 'static': return this.plain(this.staticPolicy, obs);
      case 'fallback': return this.plain(this.fair, obs);
      case 'ppo': return this.guarded(obs, 'ppo', () => this.askPpo(obs), this.ppo?.fresh === true);
      case 'shadow': {
        const proposal = await this.guarded(obs, 'ppo', () => this.askPpo(obs), this.ppo?.fresh === true);
        const fair = this.plain(this.fair, obs);
        return { ...fair, shadow: proposal.applied === 'ppo' ? proposal.raw : null };
      }
    }
  }

  private plain(policy: AllocationPolicy, obs: PoolObservation): Decision {
    return { raw: policy.allocate(obs), applied: policy.name, fallback: null, shadow: null };
  }

  private askPpo(obs: PoolObservation): Float64Array | Promise<Float64Array> {
    if (this.ppo === null) throw new FallbackError('missing_model', 'missing model');
    return this.ppo.infer(obs);
  }

  /**
   * Runs `propose` under the deadline; anything unusable -> fair, the fallback counted and logged. `fresh`: its
   * arrays are its caller's to keep (PpoSource.fresh), else a copy is kept.
   */
  private async guarded(obs: PoolObservation, name: string,
    propose: () => Float64Array | Promise<Float64Array>, fresh = false): Promise<Decision> {
    let fallback: Fallback;
    try {
      const out = propose();
      const raw = out instanceof Promise ? await this.withDeadline(obs.bucket, out) : out;
      const invalid = validateAllocation(raw, obs.services.length);
      if (invalid === null) return { raw: fresh && raw instanceof Float64Array ? raw : Float64Array.from(raw), applied: name, fallback: null, shadow: null };
      fallback = { kind: 'invalid_output', reason: invalid };
    } catch (e) {
      fallback = e instanceof FallbackError ? { kind: e.kind, reason: e.message }
        : { kind: 'error', reason: `error: ${(e as Error)?.message ?? String(e)}` };
    }
    const reason = fallback.reason;
    const n = (this.fallbacks.get(reason) ?? 0) + 1;
    this.fallbacks.set(reason, n);
    this.fallbacksByKind[fallback.kind]++;
    if (n === 1 || n % LOG_EVERY === 0) {
      this.logger?.warn({ pool: obs.key, policy: name, reason, count: n }, 'policy output unusable; fair applies this tick');
    }
    return { raw: this.fair.allocate(obs), applied: 'fair', fallback, shadow: null };
  }

  private withDeadline(pool: number, p: Promise<Float64Array>): Promise<Float64Array> {
    if (this.busy.has(pool)) {
      p.catch(() => {});
      return Promise.reject(new FallbackError('busy', 'previous inference still running'));
    }
    this.busy.add(pool);
    const done = p.finally(() => this.busy.delete(pool));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FallbackError('deadline', `inference missed the ${this.deadlineMs} ms deadline`)), this.deadlineMs);
    });
    done.catch(() => {});
    return Promise.race([done, late]).finally(() => clearTimeout(timer));
  }
}

/** A fallback decided where it happens, with its kind. */
class FallbackError extends Error {
  constructor(readonly kind: FallbackKind, reason: string) { super(reason); }
}
