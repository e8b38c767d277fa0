// Scenario families from a daemon's own telemetry (pure; main thread of
// `tpsd train --from-history` and `tpsd model eval`, which read the database
// and hand over plain series). A pool's recorded history becomes:
//   - its replay: every service's recorded demand as a trace, the upstream's
//     limit where 429s were seen (what got through, granted minus 429'd, per
//     bucket) and the configured capacity elsewhere (no 429: the limit was
//     not found, so it is at least what was asked), the recorded latency and
//     SLO when there were any;
//   - a family around it for fine-tuning: random windows of the replay
//     (tiled when the history is shorter than an episode), each service's
//     demand scaled by a log-normal factor and the whole pool's by another,
//     noise added, the upstream's limit scaled. Seeds below 2^31 are training
//     episodes, seeds from 2^31 up the held-out ones (trainer.ts).
// A tenant service whose tiers have telemetry is replayed as its tiers: each
// tier a scenario service with the tier's recorded demand and priority, and
// the scenario (in code, after parsing: tenant_services of sim/simulator.ts;
// the scenario file contract is unchanged) says they are the tiers of that
// service with their value_per_request, so the simulated controller splits
// the service among them as the daemon does and the reward weighs each
// served request by its tier's value (sim/reward.ts).
// What telemetry does not record (rate-limit hints, per-service latency) is
// not in the scenarios.

import { PRIORITIES, type Priority } from '../config/types.ts';
import { Rng } from '../ppo/rng.ts';
import { MAX_SCENARIO_SERVICES, parseScenario, type Scenario } from '../sim/scenario.ts';
import type { SimTenantService, TieredScenario } from '../sim/simulator.ts';

/** A tier of a tenant service: its recorded demand, priority and value per request (null: none). */
export interface HistoryTier {
  name: string;
  priority: Priority;
  valuePerRequest: number | null;
  /** Tokens asked for per second, per bucket. */
  demandTps: number[];
}

export interface HistoryService {
  key: string;
  priority: Priority;
  minTps: number;
  maxTps: number;
  /** Tokens asked for per second, per bucket. */
  demandTps: number[];
  /** A tenant service's tiers with telemetry; absent or empty: replayed as one service. */
  tiers?: HistoryTier[];
}

/** One pool's recorded history in equal buckets (the CLI builds it from the database). */
export interface HistoryPool {
  pool: string;
  capacityTps: number;
  sloMs: number | null;
  tickMs: number;
  /** Bucket width, seconds. */
  stepS: number;
  grantedTps: number[];
  throttledTps: number[];
  /** Average latency per bucket, ms; NaN when nothing was released. */
  latencyMs: number[];
  services: HistoryService[];
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** The pool's upstream limit per bucket: what got through where it answered 429s, the capacity elsewhere. */
export function upstreamEstimate(h: HistoryPool): number[] {
  return h.grantedTps.map((g, i) => (h.throttledTps[i] > 0 ? Math.max(1, g - h.throttledTps[i]) : h.capacityTps));
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)];
}

/** Trace points over [0, durationS] from per-bucket values starting at bucket `from`, tiled. */
function trace(values: readonly number[], stepS: number, from: number, durationS: number, scale = 1): [number, number][] {
  const points: [number, number][] = [];
  const n = values.length;
  for (let k = 0; k * stepS <= durationS + 1e-9; k++) points.push([round(k * stepS), round(Math.max(0, values[(from + k) % n] * scale))]);
  return points;
}

interface Variation { from: number; durationS: number; demandScale: number[]; upstreamScale: number; noise: number; seed: number; name: string }

/** The scenario's services (a tenant service's tiers in its place) and the tenant services grouping them. */
function replayServices(h: HistoryPool, v: Variation): { services: Record<string, unknown>[]; tenants: SimTenantService[] } {
  const services: Record<string, unknown>[] = [];
  const tenants: SimTenantService[] = [];
  const add = (name: string, priority: Priority, minTps: number, maxTps: number, demandTps: number[], scale: number): void => {
    services.push({ name, priority, min_tps: round(minTps), max_tps: round(Math.max(minTps, maxTps)),
      demand: { kind: 'trace', points: trace(demandTps, h.stepS, v.from, v.durationS, scale) }, noise: v.noise, patience_s: 5 });
  };
  h.services.forEach((s, i) => {
    const tiers = (s.tiers ?? []).slice(0, MAX_SCENARIO_SERVICES - services.length);
    if (tiers.length === 0) {
      if (services.length < MAX_SCENARIO_SERVICES) add(s.key, s.priority, s.minTps, s.maxTps, s.demandTps, v.demandScale[i]);
      return;
    }
    const at = services.length;
    for (const t of tiers) add(`${s.key}/~${t.name}`, t.priority, 0, s.maxTps, t.demandTps, v.demandScale[i]);
    tenants.push({ name: s.key.slice(s.key.lastIndexOf('/') + 1), priority: s.priority, min_tps: round(s.minTps),
      max_tps: round(Math.max(s.minTps, s.maxTps)), tiers: tiers.map((t, k) => ({ member: at + k, name: t.name, value: t.valuePerRequest })) });
  });
  return { services, tenants };
}

function build(h: HistoryPool, v: Variation): Scenario {
  const up = upstreamEstimate(h);
  const latency = median(h.latencyMs);
  const { services, tenants } = replayServices(h, v);
  const raw: Record<string, unknown> = {
    name: v.name, seed: v.seed, duration_s: v.durationS, tick_ms: h.tickMs, capacity_tps: h.capacityTps,
    upstream_tps: trace(up, h.stepS, v.from, v.durationS, v.upstreamScale), services,
  };
  if (h.sloMs !== null) raw.slo_ms = h.sloMs;
  // A recorded mean latency says what the upstream answered in, not where it slows: the simulator's latency curve
  // needs a knee the history does not show, and a guessed one invents a limit the upstream never had.
  // Latency enters only where it was a limit: over the SLO (the 429-like shrink of latency-limit.ts).
  if (Number.isFinite(latency) && h.sloMs !== null && latency > h.sloMs) {
    raw.upstream_latency = { base_ms: round(latency), knee_tps: h.capacityTps, timeout_ms: Math.max(1, h.sloMs * 4) };
  }
  const scenario: TieredScenario = parseScenario(raw, `history of ${h.pool}`);
  if (tenants.length > 0) scenario.tenant_services = tenants;
  return scenario;
}

/** Recorded length of the history, seconds (at least one bucket). */
export function historyS(h: HistoryPool): number {
  return Math.max(h.stepS, h.grantedTps.length * h.stepS);
}

/** The history as recorded from bucket `from` for `durationS` (default: all of it), for `tpsd model eval`. */
export function replayScenario(h: HistoryPool, from = 0, durationS = historyS(h)): Scenario {
  return build(h, { from, durationS: Math.max(1, Math.round(durationS)), demandScale: h.services.map(() => 1), upstreamScale: 1,
    noise: 0, seed: 1, name: from === 0 ? `replay-${h.pool}` : `replay-${h.pool}@${Math.round(from * h.stepS)}s` });
}

/** Length of the replay windows `tpsd model eval` plays, seconds. */
export const REPLAY_WINDOW_S = 300;

/** Up to `count` replay windows of `windowS` spread evenly over the history (all of it when shorter). */
export function replayWindows(h: HistoryPool, windowS: number, count: number): Scenario[] {
  const total = historyS(h);
  if (total <= windowS) return [replayScenario(h)];
  const n = Math.max(1, Math.min(count, Math.floor(total / windowS)));
  const span = (total - windowS) / h.stepS;
  return Array.from({ length: n }, (_, k) => replayScenario(h, n === 1 ? 0 : Math.round((span * k) / (n - 1)), windowS));
}

/** Member `seed` of the pool's family: a random window, demand and upstream scaled, noise added. */
export function familyScenario(h: HistoryPool, seed: number, durationS: number): Scenario {
  const rng = new Rng(seed);
  const buckets = h.grantedTps.length;
  const pool = Math.exp(rng.normal() * 0.2);
  return build(h, {
    from: rng.int(0, Math.max(0, buckets - 1)), durationS, demandScale: h.services.map(() => pool * Math.exp(rng.normal() * 0.25)),
    upstreamScale: Math.exp(rng.normal() * 0.1), noise: round(rng.uniform(0.02, 0.15)), seed, name: `hist-${h.pool}-${seed}`,
  });
}

export function isPriority(p: string): p is Priority {
  return (PRIORITIES as readonly string[]).includes(p);
}
