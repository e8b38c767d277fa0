// Chooses each pool's raw allocation for the tick according to the policy
// mode (main thread). ppo: the model's proposal, or fair when it is missing,
// invalid (NaN/Inf/negative/wrong length), throws, or misses the deadline;
// shadow: the model proposes and is recorded, fair applies, and the regret
// (priority-weighted demand PPO would have served minus what fair served,
// judged against the next tick's demand) is accumulated; fallback/fair: fair;
// static: static. The sim may force any policy by name (override).
// Every fallback is counted by reason and logged (first time, then every
// LOG_EVERY-th repeat, so a broken model does not flood the log).

import { runningMode, type PolicyMode } from '../config/types.ts';
import type { PoolObservation } from '../ppo/observation.ts';
import { createPolicy } from './policies/registry.ts';
import type { AllocationPolicy, PpoSource } from './policies/types.ts';
import { validateAllocation } from './safety.ts';
import { PRIORITY_WEIGHTS } from './water-fill.ts';

export type { PpoSource } from './policies/types.ts';

export interface ControlLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface Decision {
  readonly raw: Float64Array;
  /** The policy whose proposal is applied. */
  readonly applied: string;
  readonly fallbackReason: string | null;
  /** Shadow mode: PPO's proposal (before safety), recorded, not applied. */
  readonly shadow: Float64Array | null;
}

const LOG_EVERY = 60;

export class PolicyRunner {
  readonly fair = createPolicy('fair');
  private readonly staticPolicy = createPolicy('static');
  readonly fallbacks = new Map<string, number>();
  private readonly busy = new Set<number>();

  constructor(
    readonly mode: PolicyMode,
    public ppo: PpoSource | null,
    private readonly deadlineMs: number,
    private readonly logger: ControlLogger | null,
    private readonly override: AllocationPolicy | null = null,
  ) {}

  async decide(obs: PoolObservation): Promise<Decision> {
    if (this.override !== null) return this.guarded(obs, this.override.name, () => this.override!.allocate(obs));
    switch (runningMode(this.mode)) {
      case 'static': return this.plain(this.staticPolicy, obs);
      case 'fallback': return this.plain(this.fair, obs);
      case 'ppo': return this.guarded(obs, 'ppo', () => this.askPpo(obs));
      case 'shadow': {
        const proposal = await this.guarded(obs, 'ppo', () => this.askPpo(obs));
        const fair = this.plain(this.fair, obs);
        return { ...fair, shadow: proposal.applied === 'ppo' ? proposal.raw : null };
      }
    }
  }

  private plain(policy: AllocationPolicy, obs: PoolObservation): Decision {
    return { raw: policy.allocate(obs), applied: policy.name, fallbackReason: null, shadow: null };
  }

  private askPpo(obs: PoolObservation): Float64Array | Promise<Float64Array> {
    if (this.ppo === null) throw new FallbackError('missing model');
    return this.ppo.infer(obs);
  }

  /** Runs `propose` under the deadline; anything unusable -> fair, reason counted and logged. */
  private async guarded(obs: PoolObservation, name: string,
    propose: () => Float64Array | Promise<Float64Array>): Promise<Decision> {
    let reason: string;
    try {
      const out = propose();
      const raw = out instanceof Promise ? await this.withDeadline(obs.bucket, out) : out;
      const invalid = validateAllocation(raw, obs.services.length);
      if (invalid === null) return { raw: Float64Array.from(raw), applied: name, fallbackReason: null, shadow: null };
      reason = invalid;
    } catch (e) {
      reason = e instanceof FallbackError ? e.message : `error: ${(e as Error)?.message ?? String(e)}`;
    }
    const n = (this.fallbacks.get(reason) ?? 0) + 1;
    this.fallbacks.set(reason, n);
    if (n === 1 || n % LOG_EVERY === 0) {
      this.logger?.warn({ pool: obs.key, policy: name, reason, count: n }, 'policy output unusable; fair applies this tick');
    }
    return { raw: this.fair.allocate(obs), applied: 'fair', fallbackReason: reason, shadow: null };
  }

  private withDeadline(pool: number, p: Promise<Float64Array>): Promise<Float64Array> {
    if (this.busy.has(pool)) {
      p.catch(() => {});
      return Promise.reject(new FallbackError('previous inference still running'));
    }
    this.busy.add(pool);
    const done = p.finally(() => this.busy.delete(pool));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FallbackError(`inference missed the ${this.deadlineMs} ms deadline`)), this.deadlineMs);
    });
    done.catch(() => {});
    return Promise.race([done, late]).finally(() => clearTimeout(timer));
  }
}

class FallbackError extends Error {}

/** Priority-weighted demand an allocation would have served (for shadow regret). */
export function weightedService(obs: PoolObservation, alloc: ArrayLike<number>): number {
  let u = 0;
  obs.services.forEach((s, i) => { u += (PRIORITY_WEIGHTS[s.priority] ?? 1) * Math.min(alloc[i], s.demandTps); });
  return u;
}
