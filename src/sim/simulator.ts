// The simulator: replays a scenario against the daemon's own Controller,
// policies, safety layer and BucketTable on a ManualClock; only the clock and
// the traffic (traffic.ts) are simulated. Single thread: the sim command's
// main thread, a test, or one Piscina rollout worker during training.
//
// Per tick: the callers' requests of the tick are played in steps of stepMs
// (arrive, give up, acquire, pass to the upstream, whose answers and, with
// upstream_hints, headers go where a RELEASE's would), the tick's reward and
// metrics are recorded, the fluid bound is given the same arrivals, then
// controller.tick() decides the allocation for the next tick. Deterministic
// for a seed: all randomness comes from one seeded Rng.
// With `upstream_latency` the upstream answers late as it nears its knee
// (upstream-latency.ts); the pool is configured with the scenario's slo_ms
// (and timeout_ms), so the controller's capacity discovery acts on the
// latencies and timeouts the releases report; each tick's served p95 is
// judged against slo_ms (timeout_ms when the scenario sets no SLO).
// Policy `oracle` (oracle-policy.ts) exists here only: it is told the
// upstream's true limit over each coming tick (boundOverTick) and may raise
// the capacity above discovery's.
// Tenant tiers (a history replay's, train/history-scenarios.ts): a scenario
// object may carry `tenant_services`, set in code after parsing (a scenario
// file cannot: parseScenario keeps only the contract's fields). Each names
// some of the scenario's services as the tiers of one tenant service: the
// sim config makes that service with those tiers and their
// value_per_request, each member's traffic acquires on its tier's bucket, so
// the controller's own tier split (control/tier-split.ts) divides the
// service as the daemon does, and the reward weighs each tier by its value.

import { validateConfig } from '../config/schema.ts';
import type { Priority, TpsdConfig } from '../config/types.ts';
import { Controller } from '../control/controller.ts';
import { inlinePpo } from '../control/policies/ppo.ts';
import { createPolicy, type PolicyName } from '../control/policies/registry.ts';
import type { AllocationPolicy, PpoSource } from '../control/policies/types.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import { ManualClock } from '../shm/clock.ts';
import { HintBoard } from '../shm/hint-board.ts';
import { KeyIndex, priorityIndex } from '../shm/key-index.ts';
import { lateThresholdsUs } from '../shm/late-thresholds.ts';
import { allocateShm } from '../shm/layout.ts';
import { MetricsRecorder, type SimMetrics } from './metrics.ts';
import type { PpoModel } from '../ppo/model.ts';
import { REWARD_KINDS, tickReward, type RewardKind } from './reward.ts';
import { ORACLE, OraclePolicy } from './oracle-policy.ts';
import { Rng } from '../ppo/rng.ts';
import { FluidBound } from './fluid-bound.ts';
import { demandAt, upstreamAt, type Scenario } from './scenario.ts';
import { ServiceTraffic } from './traffic.ts';
import { createUpstream } from './upstream.ts';
import { LatencyModel, loadWithin, TickLatencies } from './upstream-latency.ts';

/** A registered policy, or the simulator-only oracle. */
export type SimPolicyName = PolicyName | typeof ORACLE;

export interface SimOptions {
  policy: SimPolicyName;
  seed?: number;
  /** The model for policy 'ppo' (the shipped one unless given). */
  model?: PpoModel;
  /** Replaces the PPO source (training: a sampling policy that records). */
  ppoSource?: PpoSource | null;
  /** Traffic resolution; default 10 ms. */
  stepMs?: number;
  /** Governance cap per tick (config policy.step_cap); default 1.8. */
  stepCap?: number;
  /** Policy oracle: the share of the upstream's true limit it grants; default 1. */
  oracleScale?: number;
  /** Policy oracle: the limit over the coming tick at its lowest point (default) or its mean (the fluid bound's). */
  oracleLimit?: 'mean' | 'lowest';
  /** The reward in metrics.reward and rewards (reward.ts); default 'default'. */
  reward?: RewardKind;
}

export interface SimResult {
  metrics: SimMetrics;
  /** Reward of each tick's traffic; rewards[k + 1] follows the k-th decision. */
  rewards: number[];
  /** The run's total under each reward (metrics.reward is one of them). */
  rewardTotals: Record<RewardKind, number>;
  /** Per scenario service, the requests granted over the run. */
  grantedByService: number[];
}

export const SIM_POOL = 'sim';

/** A tenant service of a scenario: which of its services are the service's tiers, and each tier's value per request. */
export interface SimTenantService {
  readonly name: string;
  readonly priority: Priority;
  readonly min_tps: number;
  readonly max_tps: number;
  /** member: the index of the scenario service whose traffic is the tier's; value: null when the tier sets none. */
  readonly tiers: readonly { readonly member: number; readonly name: string; readonly value: number | null }[];
}

/** A scenario with tenant services, set in code after parsing (never from a file). */
export type TieredScenario = Scenario & { tenant_services?: readonly SimTenantService[] };

const SAFE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Each scenario service's key in the sim config: `sim/NAME`, or `sim/SERVICE/~TIER` for a tier's member. */
export function simServiceKeys(s: Scenario): string[] {
  const keys = s.services.map((v, i) => `${SIM_POOL}/${SAFE_NAME.test(v.name) ? v.name : `service${i}`}`);
  ((s as TieredScenario).tenant_services ?? []).forEach((g, j) => {
    for (const t of g.tiers) keys[t.member] = `${SIM_POOL}/${tenantName(g, j)}/~${SAFE_NAME.test(t.name) ? t.name : `tier${t.member}`}`;
  });
  return keys;
}

const tenantName = (g: SimTenantService, j: number): string => (SAFE_NAME.test(g.name) ? g.name : `tenants${j}`);

/** Per scenario service, its tier's value per request (NaN: none); null when no tier sets one (the outcome then gives none). */
export function simServiceValues(s: Scenario): Float64Array | null {
  const values = new Float64Array(s.services.length).fill(Number.NaN);
  let any = false;
  for (const g of (s as TieredScenario).tenant_services ?? []) {
    for (const t of g.tiers) if (t.value !== null) { values[t.member] = t.value; any = true; }
  }
  return any ? values : null;
}

/** The config's services: the scenario's own, then one per tenant service with its tiers (members are not services). */
function configServices(s: Scenario): Record<string, unknown>[] {
  const groups = (s as TieredScenario).tenant_services ?? [];
  const member = new Set(groups.flatMap((g) => g.tiers.map((t) => t.member)));
  const keys = simServiceKeys(s);
  const own = s.services.flatMap((v, i) => (member.has(i) ? [] : [{
    name: keys[i].slice(SIM_POOL.length + 1), priority: v.priority, min_tps: v.min_tps, max_tps: Math.max(1e-3, v.max_tps) }]));
  return [...own, ...groups.map((g, j) => ({
    name: tenantName(g, j), priority: g.priority, min_tps: g.min_tps, max_tps: Math.max(1e-3, g.max_tps),
    tenants: { tiers: g.tiers.map((t) => ({ name: keys[t.member].split('/~')[1], priority: s.services[t.member].priority,
      tps: Math.max(1e-3, g.max_tps), ...(t.value === null ? {} : { value_per_request: t.value }) })) },
  }))];
}

/**
 * The daemon config equivalent to a scenario: one pool, its services, and how
 * its upstream counts (SCENARIOS.md `upstream_window`, default fixed_1s; a
 * token_bucket upstream's burst, `upstream_burst` or its default, is the pool's
 * burst, so the gate matches it).
 */
export function scenarioConfig(s: Scenario, mode: TpsdConfig['policy']['mode'], stepCap = 1.8): TpsdConfig {
  const upstream = s as Scenario & { upstream_window?: string; upstream_burst?: number };
  const window = upstream.upstream_window ?? 'fixed_1s';
  // A token-bucket upstream holds upstream_burst, by default a tenth of a second at its rate: the gate holds no more
  // (whole tokens; the pool's own default rounds up, which would pass one request the upstream refuses).
  const upstreamBurst = upstream.upstream_burst ?? s.capacity_tps / 10;
  const burst = window === 'token_bucket' ? { burst: Math.max(1, Math.floor(upstreamBurst)) } : {};
  return validateConfig({
    tick_ms: s.tick_ms,
    policy: { mode, model: null, step_cap: stepCap },
    log: { level: 'silent' },
    pools: [{
      name: SIM_POOL,
      capacity_tps: s.capacity_tps,
      upstream: { window, ...(s.slo_ms != null ? { slo_ms: s.slo_ms } : {}),
        ...(s.upstream_latency != null ? { timeout_ms: s.upstream_latency.timeout_ms } : {}) },
      ...burst,
      services: configServices(s),
    }],
  }, {});
}

export async function simulate(s: Scenario, o: SimOptions): Promise<SimResult> {
  const seed = o.seed ?? s.seed;
  const rng = new Rng(seed);
  const stepMs = o.stepMs ?? 10;
  const tickS = s.tick_ms / 1000;
  const config = scenarioConfig(s, o.policy === 'ppo' ? 'ppo' : 'fallback', o.stepCap);
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, 1);
  const clock = new ManualClock();
  BucketTable.initialize(views, keys, 0);
  const table = new BucketTable(views, clock, 0);
  // PPO runs as the daemon runs it (mode ppo: the runner asks a PPO source, fair when it has none);
  // any other policy is forced by name.
  let ppo: PpoSource | null | undefined = o.ppoSource;
  if (o.policy === 'ppo' && ppo === undefined && o.model !== undefined) ppo = inlinePpo(o.model);
  const latency = simLatency(s);
  const controller = new Controller(views, keys, config, clock, { inference: 'inline', policy: forcedPolicy(s, o, clock, latency), ppo });
  const n = s.services.length;
  const histBins = Math.ceil(Math.max(...s.services.map((v) => v.patience_s))) * 1000 + 1;
  const waitByClass = Array.from({ length: 4 }, () => new Float64Array(histBins));
  const pool = keys.lookup(SIM_POOL);
  const hints = s.upstream_hints === true ? { board: new HintBoard(views), pool } : null;
  const serviceKeys = simServiceKeys(s);
  const lateUs = lateThresholdsUs(config, keys);
  const services = s.services.map((v, i) => {
    const b = keys.find(serviceKeys[i]);
    return new ServiceTraffic(table, b, priorityIndex(v.priority), Math.round(v.patience_s * 1000), waitByClass[priorityIndex(v.priority)],
      hints, latency, lateUs[b]);
  });
  const upstream = createUpstream(s);
  const fluid = new FluidBound(s.services.map((v) => ({ priority: priorityIndex(v.priority), minTps: Math.min(v.min_tps, v.max_tps),
    maxTps: v.max_tps, patienceS: v.patience_s })), s.capacity_tps, tickS);
  const order = services.map((_, i) => i).sort((a, b) => services[a].priority - services[b].priority || a - b);
  const metrics = new MetricsRecorder();
  const rewards: number[] = [];
  const ticks = Math.round((s.duration_s * 1000) / s.tick_ms);
  const steps = Math.max(1, Math.round(s.tick_ms / stepMs));
  const rate = new Float64Array(n);
  const queueBefore = new Float64Array(n);
  const arrived = new Float64Array(n), granted = new Float64Array(n), served = new Float64Array(n), throttled = new Float64Array(n);
  const shortfall = new Float64Array(n), growth = new Float64Array(n), late = new Float64Array(n), timedOut = new Float64Array(n);
  const kind = o.reward ?? 'default';
  const totals: Record<RewardKind, number> = { default: 0, paid: 0 };
  const priority = Int32Array.from(services, (v) => v.priority);
  const minTps = Float64Array.from(s.services, (v) => Math.min(v.min_tps, v.max_tps));
  const value = simServiceValues(s) ?? undefined;
  const grantedTotal = new Float64Array(n);
  for (let k = 0; k < ticks; k++) {
    const t0 = k * s.tick_ms;
    for (let i = 0; i < n; i++) {
      const v = s.services[i];
      const mean = demandAt(v.demand, (t0 + s.tick_ms / 2) / 1000);
      rate[i] = Math.max(0, mean * (1 + v.noise * rng.normal()));
      queueBefore[i] = services[i].queue.length;
      const tl = services[i].tally;
      tl.arrived = tl.granted = tl.served = tl.throttled = tl.expired = tl.timedOut = tl.late = 0;
    }
    latency?.tick.reset();
    for (let j = 0; j < steps; j++) {
      const now = t0 + Math.round((j * s.tick_ms) / steps);
      const dt = Math.round(((j + 1) * s.tick_ms) / steps) - Math.round((j * s.tick_ms) / steps);
      clock.set(now);
      for (const i of order) {
        const sv = services[i];
        sv.arrive(now, rate[i], dt);
        sv.expire(now);
        sv.serve(now, upstream);
      }
    }
    const { upstreamTps, dropping } = boundOverTick(s, t0, latency);
    for (let i = 0; i < n; i++) {
      const tl = services[i].tally;
      arrived[i] = tl.arrived; granted[i] = tl.granted; served[i] = tl.served; throttled[i] = tl.throttled;
      grantedTotal[i] += tl.granted;
      late[i] = tl.late; timedOut[i] = tl.timedOut;
      growth[i] = services[i].queue.length - queueBefore[i];
      shortfall[i] = Math.max(0, Math.min(tl.arrived, minTps[i] * tickS) - tl.granted - 1);
    }
    const outcome = { value, served, throttled, queueGrowth: growth, shortfall, priority, late, timedOut };
    for (const k of Object.keys(totals) as RewardKind[]) totals[k] += tickReward(outcome, s.capacity_tps, tickS, REWARD_KINDS[k]);
    const r = tickReward(outcome, s.capacity_tps, tickS, REWARD_KINDS[kind]);
    rewards.push(r);
    metrics.reward += r;
    metrics.record({ tick: k, tickS, upstreamTps, dropping, arrived, granted, served, throttled, priority, minTps });
    if (latency !== null) metrics.recordLatency(latency.tick.timeouts, latency.tick.p95() <= latency.tick.sloMs);
    fluid.tick(arrived, upstreamTps);
    clock.set(t0 + s.tick_ms);
    await controller.tick();
    for (const l of controller.last) if (l.decision.fallback !== null) metrics.fallbackTicks++;
  }
  await controller.close();
  return { metrics: metrics.report(s.name, o.policy, seed, waitByClass, fluid.total), rewards, rewardTotals: totals,
    grantedByService: Array.from(grantedTotal) };
}

/** The policy forced by name (none for ppo, which runs as the daemon runs it); the oracle is told the limit. */
function forcedPolicy(s: Scenario, o: SimOptions, clock: ManualClock, latency: SimLatencyState | null): AllocationPolicy | undefined {
  if (o.policy === 'ppo') return undefined;
  if (o.policy !== ORACLE) return createPolicy(o.policy);
  // Asked at the end of each tick, the clock at the start of the next: it answers that tick's limit.
  return new OraclePolicy(o.oracleLimit === 'mean' ? () => boundOverTick(s, clock.nowMs(), latency).upstreamTps
    : () => lowestOverTick(s, clock.nowMs(), latency), o.oracleScale);
}

type SimLatencyState = { model: LatencyModel; tick: TickLatencies };

/** The scenario's latency model and the tick's SLO tally, or null without upstream_latency. */
function simLatency(s: Scenario): { model: LatencyModel; tick: TickLatencies } | null {
  const l = s.upstream_latency;
  if (l == null) return null;
  return { model: new LatencyModel(l), tick: new TickLatencies(s.slo_ms ?? l.timeout_ms, l.timeout_ms) };
}

/**
 * What the upstream can serve over the tick, for the metrics and the fluid
 * bound: its 429 limit, and with upstream_latency also the rate at which its
 * latency stays within the SLO (the knee's share loadWithin(base, slo)).
 */
function boundOverTick(s: Scenario, t0: number, latency: { model: LatencyModel; tick: TickLatencies } | null): { upstreamTps: number; dropping: boolean } {
  const u = upstreamOverTick(s, t0);
  if (latency === null) return u;
  const share = loadWithin(latency.model.baseMs, latency.tick.sloMs);
  const samples = Math.max(2, Math.ceil(s.tick_ms / 100));
  let knee = 0;
  for (let j = 0; j < samples; j++) knee += latency.model.kneeAt(t0 + ((j + 0.5) * s.tick_ms) / samples);
  return { upstreamTps: Math.min(u.upstreamTps, (share * knee) / samples), dropping: u.dropping };
}

/**
 * The lowest the upstream's limit gets over the tick starting at t0 (ms),
 * sampled every 100 ms (a fixed window: each second's value), with
 * upstream_latency also the knee's rate within the SLO: what a capacity held
 * for the whole tick can take without meeting a 429 or the SLO at its worst
 * moment. The oracle's alternative to the tick's mean (boundOverTick).
 */
function lowestOverTick(s: Scenario, t0: number, latency: { model: LatencyModel; tick: TickLatencies } | null): number {
  const fixed = (s.upstream_window ?? 'fixed_1s') === 'fixed_1s';
  const share = latency === null ? 0 : loadWithin(latency.model.baseMs, latency.tick.sloMs);
  const samples = Math.max(2, Math.ceil(s.tick_ms / 100));
  let low = Infinity;
  for (let j = 0; j <= samples; j++) {
    const ms = t0 + (j * s.tick_ms) / samples - (j === samples ? 1e-6 : 0);
    low = Math.min(low, upstreamAt(s, fixed ? Math.floor(ms / 1000) : ms / 1000));
    if (latency !== null) low = Math.min(low, share * latency.model.kneeAt(ms));
  }
  return low;
}

/**
 * The upstream's limit over the tick starting at t0 (ms), as its window
 * applies it: a fixed window holds each second's value for the second; the
 * others follow upstream_tps(t) as it moves, so a tick in which it falls is a
 * drop even before its mean shows it.
 */
export function upstreamOverTick(s: Scenario, t0: number): { upstreamTps: number; dropping: boolean } {
  const t1 = t0 + s.tick_ms;
  if ((s.upstream_window ?? 'fixed_1s') === 'fixed_1s') {
    let sum = 0;
    const from = Math.floor(t0 / 1000), to = Math.ceil(t1 / 1000);
    for (let sec = from; sec < to; sec++) sum += upstreamAt(s, sec);
    return { upstreamTps: sum / Math.max(1, to - from), dropping: false };
  }
  const samples = Math.max(2, Math.ceil(s.tick_ms / 100));
  let sum = 0;
  for (let j = 0; j < samples; j++) sum += upstreamAt(s, (t0 + ((j + 0.5) * s.tick_ms) / samples) / 1000);
  return { upstreamTps: sum / samples, dropping: upstreamAt(s, t1 / 1000) < upstreamAt(s, t0 / 1000) - 1e-9 };
}
