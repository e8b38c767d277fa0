// The control loop's tick (main thread only; the simulator drives the same
// class with a ManualClock). Each tick it:
//   1. refills the pool buckets of awake pools (the others refill lazily,
//      pool-rest.ts RefillSweep) and turns the cumulative counters
//      of the keys that moved into per-tick deltas and STATS;
//   2. per awake pool (pool-observer.ts), builds the observation
//      (observation.ts), updates the effective capacity from upstream 429s,
//      the RELEASE hints clients reported and, with upstream.slo_ms, the
//      latencies, late releases and timeouts they reported
//      (capacity-discovery.ts, upstream-hints.ts, latency-limit.ts), capped
//      by the optional pool cap hook (pool-gate.ts PoolCapProvider: a shared
//      pool's share of a cluster, daemon/cluster);
//   3. asks the policy for an allocation (policy-runner.ts: mode, deadline,
//      fallback to fair), passes it through the safety layer (safety.ts) and
//      keeps the pool's decision record (decision.ts, in `last`: telemetry,
//      /metrics and the simulator read it, nothing recomputes it); an awake
//      pool keeps last tick's proposal, guarantees and allocation where
//      nothing they read moved (pool-decisions.ts);
//   4. writes the allocation into the buckets (bucket-writes.ts): the
//      policy's output is each service's assured rate; the capacity nobody
//      is assured of, and whatever an assured service leaves unused, is lent
//      in priority order; the pool's gate holds the upstream's bound with no
//      reserve (docs/allocator.md, "The pool's gate");
//   5. with tenants, divides each tenant service among its tiers
//      (tier-split.ts) and classes the tenants that moved, limiting
//      attackers (tenant-guard.ts).
// The pools are laid out and their gates first written at construction
// (pool-build.ts). The limits in force per key are the controller's
// (key-limits.ts), changed live or by a reload through limit-changes.ts; the
// PPO model is opened and reloaded by model-source.ts.
// The tick's cost follows the keys that moved, not the keys that exist: it
// visits the keys the I/O threads touched since the last tick and those it
// visited last tick (touched-keys.ts); a pool at rest sleeps through ticks
// until one of its keys moves, an awake pool observes again only its
// services that may have moved (service-observations.ts), and an awake pool
// whose allocation did not move writes nothing (pool-rest.ts); idle buckets are refilled in a slow
// sweep (RefillSweep) that keeps their int32 time stamps fresh, since takes
// refill lazily. `incremental: false` runs the full tick over every key and
// pool (test/unit/control/idle-keys.test.ts: both allocate alike).
// tick() is async because PPO inference may run in a Piscina pool; a tick
// that is still running when the next one is due makes that one a no-op.

import { runningMode, type TpsdConfig } from '../config/types.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import type { Clock } from '../shm/clock.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import { MODE_INDEX, MODE_NAMES, TICK_SEQ_INDEX, type ShmViews } from '../shm/layout.ts';
import { writeAllocations, type PoolAllocation } from './bucket-writes.ts';
import type { DiscoveryOptions } from './capacity-discovery.ts';
import { CounterDeltas } from './counter-deltas.ts';
import { configuredLimits, type KeyLimits } from './key-limits.ts';
import { LimitChanges, type LimitChange } from './limit-changes.ts';
import { ModelSource, type Inference, type ModelReload } from './model-source.ts';
import { ServiceObservations } from './service-observations.ts';
import type { AllocationPolicy } from './policies/types.ts';
import type { PoolDecision } from './decision.ts';
import { PolicyRunner, type ControlLogger, type PpoSource } from './policy-runner.ts';
import { DEFAULT_SAFETY, type SafetyOptions } from './safety.ts';
import { PoolDecisions, sameValues } from './pool-decisions.ts';
import { ShadowRegret } from './shadow-regret.ts';
import { ModelDrift } from './model-drift.ts';
import { RefillSweep, asleep, noteEvaluation, wake, type PoolState } from './pool-rest.ts';
import { buildPools } from './pool-build.ts';
import { PoolGate, type PoolCapProvider } from './pool-gate.ts';
import { PoolObserver } from './pool-observer.ts';
import { writeStatsFor } from './stats-writer.ts';
import { TouchedKeys } from './touched-keys.ts';
import { TierSplit, type TierGate } from './tier-split.ts';
import { TenantGuard } from './tenant-guard.ts';
import type { TenantCounterReader } from '../shm/tenant-counters.ts';

export type { PoolCapProvider } from './pool-gate.ts';

export function modeIndex(mode: TpsdConfig['policy']['mode']): number {
  return MODE_NAMES.indexOf(runningMode(mode));
}

/** Whether the config's policy mode runs the PPO model (ppo, shadow): fixed until a restart. */
export function usesPpo(config: TpsdConfig): boolean { return config.policy.mode === 'ppo' || config.policy.mode === 'shadow'; }

export interface ControllerOptions {
  /** 'piscina' (daemon default): PPO inference in a worker pool; 'inline': on this thread. */
  inference?: Inference;
  /** The module the PPO inference worker imports: the daemon's bundle of it (ppo/ppo-pool.ts); absent, its .ts file under tsx. */
  inferEntry?: string;
  /** Replaces the model-backed PPO source (training rollouts). */
  ppo?: PpoSource | null;
  /** Forces a policy regardless of mode (the simulator's --policy). */
  policy?: AllocationPolicy;
  logger?: ControlLogger;
  discovery?: DiscoveryOptions;
  /** Caps pools' effective capacity (the daemon's cluster: a shared pool runs on this node's share). */
  poolCap?: PoolCapProvider;
  /** false: every tick visits every key and evaluates every pool (default true: only what moved). */
  incremental?: boolean;
  /** With tenants: their per-tenant counters, swept each tick for the surge and abuse defence (tenant-guard.ts) and telemetry; absent: none. */
  tenantCounts?: TenantCounterReader | null;
}

export class Controller {
  readonly table: BucketTable;
  readonly deltas: CounterDeltas;
  readonly runner: PolicyRunner;
  readonly pools: PoolState[] = [];
  /** Each pool's latest decision record, by ordinal (telemetry, status and the simulator read it); a sleeping pool keeps its last one. */
  readonly last: PoolDecision[] = [];
  /** Ordinals of the pools the last tick evaluated (the others slept: their `last` is older). */
  evaluated: number[] = [];
  /** Ordinals of the evaluated pools whose allocation the last tick wrote; the others' rates did not move (telemetry looks no further). */
  wrote: number[] = [];
  /** The keys the last tick visited (list[0 .. count)); every other key's counters did not move. */
  readonly touched: TouchedKeys;
  ticks = 0;
  private readonly regret = new ShadowRegret();
  /** How far live observations are from the model's training distribution (model-drift.ts). */
  readonly drift: ModelDrift;
  private readonly views: ShmViews;
  /** Per bucket, the limits in force (the KeyIndex's specs keep the config's). */
  private readonly limits: KeyLimits[];
  private readonly clock: Clock;
  private readonly config: TpsdConfig;
  private readonly safety: SafetyOptions;
  private readonly logger: ControlLogger | null;
  private readonly model: ModelSource;
  /** The pools' gates: the cluster cap, bursts, the window gate's shortfall (pool-gate.ts). */
  private readonly gate: PoolGate;
  /** Awake pools' observations and their capacity discovery (pool-observer.ts). */
  private readonly observer: PoolObserver;
  /** Live limit changes and reloads reaching the pools, buckets and STATS (limit-changes.ts). */
  private readonly changes: LimitChanges;
  /** Tenant tiers: each service's share divided among them (tier-split.ts). */
  private readonly tiers: TierSplit;
  /** Tenants classed normal, surge or attack each tick, attackers limited (tenant-guard.ts); null without tenant counts. */
  readonly guard: TenantGuard | null;
  private readonly tenantCounts: TenantCounterReader | null;
  private lastTickMs: number;
  private running = false;
  private readonly incremental: boolean;
  /** poolOf[b]: the ordinal of bucket b's pool. */
  private readonly poolOf: Int32Array;
  private readonly sweep = new RefillSweep();
  /** Awake pools' service observations, visiting only the services that may have moved (incremental ticks). */
  private readonly observations: ServiceObservations;
  /** Awake pools' decisions, keeping what did not move (pool-decisions.ts). */
  readonly decisions: PoolDecisions;

  constructor(views: ShmViews, keys: KeyIndex, config: TpsdConfig, clock: Clock, options: ControllerOptions = {}) {
    this.views = views;
    this.limits = keys.specs.map(configuredLimits);
    this.clock = clock;
    this.config = config;
    this.logger = options.logger ?? null;
    this.table = new BucketTable(views, clock, null);
    this.deltas = new CounterDeltas(views);
    this.safety = { ...DEFAULT_SAFETY, stepCap: config.policy.step_cap };
    this.lastTickMs = clock.nowMs();
    this.gate = new PoolGate(this.table, keys, this.limits, options.poolCap ?? null);
    this.incremental = options.incremental ?? true;
    this.touched = new TouchedKeys(views, Int32Array.from(keys.specs, (s) => s.parent));
    this.poolOf = new Int32Array(keys.size);
    Atomics.store(views.header, MODE_INDEX, modeIndex(config.policy.mode));
    this.tiers = new TierSplit(keys);
    this.tenantCounts = keys.hasTenants ? options.tenantCounts ?? null : null;
    this.guard = this.tenantCounts !== null ? new TenantGuard(keys, views, this.tenantCounts) : null;
    buildPools({ views, keys, config, table: this.table, gate: this.gate, discovery: options.discovery, nowMs: () => clock.nowMs() }, this.pools, this.poolOf);
    this.observations = new ServiceObservations(this.pools, this.poolOf);
    // Shadow mode may run a candidate (policy.shadow_model) beside the live policy; its regret is what it would have changed.
    const modelFile = config.policy.mode === 'shadow' && config.policy.shadow_model !== null ? config.policy.shadow_model : config.policy.model;
    this.model = new ModelSource(modelFile, options.inference ?? 'piscina', this.logger, options.inferEntry);
    let ppo: PpoSource | null = options.ppo ?? null;
    if (options.ppo === undefined && options.policy === undefined && this.wantsPpo) ppo = this.model.open();
    this.runner = new PolicyRunner(config.policy.mode, ppo, config.policy.deadline_ms, this.logger, options.policy ?? null);
    this.decisions = new PoolDecisions(this.pools.length, this.runner, this.safety, this.regret, this.incremental);
    this.drift = new ModelDrift(this.logger);
    this.drift.setReference(this.model.loaded?.norm.state() ?? null);
    this.observer = new PoolObserver({ views, table: this.table, deltas: this.deltas, limits: this.limits, safety: this.safety, runner: this.runner,
      gate: this.gate, observations: this.observations, touched: this.touched, incremental: this.incremental }, keys.size);
    this.changes = new LimitChanges({ views, table: this.table, keys, limits: this.limits, pools: this.pools, poolOf: this.poolOf,
      observations: this.observations, decisions: this.decisions, tiers: this.tiers, guard: this.guard });
  }

  /** Shadow mode: every pool's regret so far, summed (shadow-regret.ts). */
  get shadowRegret(): number { return this.regret.total; }

  /** Governance's hook on the tiers' caps (tier-split.ts TierGate); null: none. */
  governTiers(gate: TierGate | null): void { this.tiers.gate = gate; }

  /** Key b's limits in force (the config's, changed by setLimits and reconfigure). */
  limitsOf(b: number): Readonly<KeyLimits> { return this.limits[b]; }

  /** The model file: policy.model, or in shadow mode policy.shadow_model when set (the shipped model when neither is). */
  get modelPath(): string { return this.model.path; }

  /** The model in use ('none' when PPO falls back for want of one). */
  get modelVersion(): string { return this.runner.ppo?.version ?? 'none'; }

  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try { await this.step(); } finally { this.running = false; }
  }

  private async step(): Promise<void> {
    const now = this.clock.nowMs();
    const dtS = Math.max(1, (now - this.lastTickMs) | 0) / 1000;
    this.lastTickMs = now;
    const t = this.touched;
    if (this.incremental) t.collect(); else t.all();
    if (this.incremental) this.observations.noteTouched(t);
    for (let k = 0; k < t.count; k++) wake(this.pools[this.poolOf[t.list[k]]]);
    if (this.gate.hasCap) this.gate.wakeCapped(this.pools);
    const awake = this.pools.filter((p) => !asleep(p));
    if (this.incremental) this.sweep.refill(this.table, awake, t, now);
    else for (let b = 0; b < this.table.size; b++) this.table.refill(b, now);
    this.deltas.readKeys(t.list, t.count);
    writeStatsFor(this.views.stats, t.list, t.count, this.deltas, dtS);
    const effectiveBefore = awake.map((p) => p.effectiveTps);
    const observations = awake.map((p) => this.observer.observe(p, dtS, this.ticks));
    this.drift.observe(observations);
    const decisions = await Promise.all(observations.map((o, k) => this.decisions.decide(awake[k], o)));
    const mayRest = this.incremental && this.config.policy.mode !== 'shadow';
    const allocations: PoolAllocation[] = [];
    const wrote: number[] = [];
    awake.forEach((pool, k) => {
      const before = pool.alloc;
      const burstBefore = pool.burst;
      const activeMoved = !this.incremental || this.observations.activeMoved(pool.ordinal);
      const rebuilt = this.incremental ? this.observations.rebuilt(pool.ordinal) : null;
      const rec = this.decisions.record(pool, observations[k], decisions[k], activeMoved, rebuilt);
      this.last[pool.ordinal] = rec;
      pool.burst = this.gate.gateBurst(pool.spec.index, rec.obs.effectiveTps);
      noteEvaluation(pool, rec, before, effectiveBefore[k], mayRest);
      if (asleep(pool)) this.observations.rest(pool.ordinal); // a sleeping pool keeps no columns (service-columns.ts)
      // The buckets already hold an allocation that did not move (the same rates, loans and bursts): nothing to write.
      if (this.incremental && pool.written && pool.burst === burstBefore && rec.obs.effectiveTps === effectiveBefore[k] && sameValues(rec.alloc, before)) return;
      pool.written = true;
      wrote.push(pool.ordinal);
      this.observations.invalidate(pool.ordinal); // its services' rates move: their resting observations with them
      allocations.push({ pool: pool.spec.index, effectiveTps: rec.obs.effectiveTps, burst: pool.burst, services: pool.services.map((s) => s.index),
        endpoints: pool.endpoints.map((list) => list.map((e) => e.index)), alloc: rec.alloc });
    });
    writeAllocations(this.table, this.limits, allocations, this.clock.nowMs());
    if (this.tiers.groups.length > 0) this.tiers.write(this.table, this.deltas, dtS, (svc) => this.reachTps(svc), this.clock.nowMs());
    if (this.tenantCounts !== null) {
      this.tenantCounts.sweep(); // once a tick, for the guard and for telemetry's tenant rows (daemon/tenant-rows.ts)
      this.guard!.tick(dtS, this.clock.nowMs());
    }
    this.evaluated = awake.map((p) => p.ordinal);
    this.wrote = wrote;
    this.ticks++;
    Atomics.add(this.views.header, TICK_SEQ_INDEX, 1);
  }

  /** What service `svc` may be granted per second this tick: its assured rate, or up to max_tps within its pool's effective capacity. */
  private reachTps(svc: number): number {
    for (const p of this.pools) {
      const i = p.services.findIndex((s) => s.index === svc);
      if (i >= 0) return Math.max(p.alloc[i], Math.min(this.limits[svc].maxTps, p.effectiveTps));
    }
    return 0;
  }

  /** The modes that ask the model (ppo, and shadow, which records it). */
  private get wantsPpo(): boolean { return usesPpo(this.config); }

  /**
   * Re-reads the model file (SIGHUP). The file is validated here first; a bad
   * file keeps the model in use and the error is returned.
   */
  async reloadModel(): Promise<ModelReload> {
    const r = await this.model.reload(this.modelVersion, this.wantsPpo ? (source) => { this.runner.ppo = source; } : null);
    if (r.ok) this.drift.setReference(this.model.loaded?.norm.state() ?? null);
    for (const p of this.pools) wake(p); // a new model may answer idle pools differently
    return r;
  }

  /** Live limit changes (`tpsd limits set`): limit-changes.ts LimitChanges.set. */
  setLimits(b: number, limits: LimitChange): void { this.changes.set(b, limits); }

  /** A reloaded config's per-key values with the same key set (SIGHUP): limit-changes.ts LimitChanges.reconfigure. */
  reconfigure(next: KeyIndex, config: TpsdConfig): void { this.changes.reconfigure(next, config); }

  /** Fallbacks by reason, shadow regret, model: for status and logs. */
  status(): { mode: string; model: string; ticks: number; fallbacks: Record<string, number>; shadowRegret: number } {
    return { mode: this.config.policy.mode, model: this.modelVersion, ticks: this.ticks,
      fallbacks: Object.fromEntries(this.runner.fallbacks), shadowRegret: this.regret.total };
  }

  /** Stops the inference workers (daemon shutdown). */
  async close(): Promise<void> {
    await this.model.close();
  }
}

