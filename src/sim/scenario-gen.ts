// Generated scenario families for training and held-out evaluation (pure,
// seeded): random pool sizes (1 to 32 services), capacities, priority mixes,
// min/max bounds, demand shapes (constant, sine, step, spike, random-walk
// trace), noise, patience and upstream capacity drops. Overall demand ranges
// from well below to well above capacity, so the policy sees slack and
// scarcity alike. generateThrottled() gives the same pools an upstream that
// throttles (a drop, flapping or periodic throttling) under a random window,
// with or without rate-limit headers; it draws from its own generator, so
// generateScenario's scenarios (the trainer's) stay as they were.

import { PRIORITIES } from '../config/types.ts';
import { Rng } from '../ppo/rng.ts';
import { UPSTREAM_WINDOWS, type DemandSpec, type Scenario, type ScenarioService, type UpstreamWindow } from './scenario.ts';

export interface GenOptions {
  durationS?: number;
  maxServices?: number;
}

function serviceCount(rng: Rng, max: number): number {
  const u = rng.next();
  const n = u < 0.1 ? 1 : u < 0.65 ? rng.int(2, 5) : u < 0.92 ? rng.int(6, 12) : rng.int(13, 32);
  return Math.min(n, max);
}

function demandShape(rng: Rng, mean: number, duration: number): DemandSpec {
  const kind = rng.pick(['constant', 'constant', 'sine', 'step', 'spike', 'trace'] as const);
  switch (kind) {
    case 'constant': return { kind, tps: mean };
    case 'sine': return { kind, base: mean, amplitude: mean * rng.uniform(0.2, 0.8), period_s: rng.uniform(60, 600), phase_s: rng.uniform(0, 600) };
    case 'step': return { kind, tps: mean * rng.uniform(0.4, 1.2), at_s: rng.uniform(0.2, 0.8) * duration, to_tps: mean * rng.uniform(0.6, 1.8) };
    case 'spike': return { kind, base: mean * rng.uniform(0.5, 1), peak: mean * rng.uniform(2, 5), at_s: rng.uniform(0.1, 0.8) * duration, width_s: rng.uniform(10, 90) };
    case 'trace': {
      const points: [number, number][] = [];
      let x = mean;
      for (let t = 0; t <= duration; t += 30) { points.push([t, x]); x = Math.max(0, x * Math.exp(rng.normal() * 0.3)); }
      return { kind, points };
    }
  }
}

/** One random scenario; the same seed gives the same scenario. */
export function generateScenario(seed: number, o: GenOptions = {}): Scenario {
  const rng = new Rng(seed);
  const duration = o.durationS ?? 180;
  const capacity = Math.round(Math.exp(rng.uniform(Math.log(100), Math.log(2000))));
  const n = serviceCount(rng, o.maxServices ?? 32);
  const load = rng.uniform(0.5, 1.7);
  const weights = Array.from({ length: n }, () => rng.uniform(0.2, 1));
  const wsum = weights.reduce((a, b) => a + b, 0);
  let minLeft = capacity * rng.uniform(0.1, 0.6);
  const services: ScenarioService[] = [];
  for (let i = 0; i < n; i++) {
    const priority = rng.pick(PRIORITIES);
    const mean = (capacity * load * weights[i]) / wsum;
    let min = 0;
    if (rng.next() < 0.4 && minLeft > 0) { min = Math.min(minLeft, mean * rng.uniform(0.3, 1)); minLeft -= min; }
    const max = rng.next() < 0.5 ? capacity : Math.max(min + 1, capacity * rng.uniform(0.2, 1));
    services.push({
      name: `svc${i}`, priority, min_tps: Math.round(min), max_tps: Math.round(max),
      demand: demandShape(rng, mean, duration), noise: rng.pick([0, 0.05, 0.1, 0.2, 0.3]),
      patience_s: rng.pick([2, 5, 5, 10]),
    });
  }
  let upstream: Scenario['upstream_tps'] = capacity;
  if (rng.next() < 0.35) {
    const at = rng.uniform(0.15, 0.6) * duration;
    const ramp = rng.uniform(0, 15);
    const low = capacity * rng.uniform(0.5, 0.9);
    const back = at + ramp + rng.uniform(20, 0.4 * duration);
    upstream = [[0, capacity], [at, capacity], [at + ramp, low], [back, low], [back + rng.uniform(0, 20), capacity]];
  }
  return { name: `gen-${seed}`, seed, duration_s: duration, tick_ms: 1000, capacity_tps: capacity, upstream_tps: upstream, services };
}

export const THROTTLE_KINDS = ['drop', 'flapping', 'periodic'] as const;
export type ThrottleKind = (typeof THROTTLE_KINDS)[number];

/** [[t_s, tps], ...] of an upstream at `capacity` that throttles as `kind` says. */
function throttlePoints(rng: Rng, kind: ThrottleKind, capacity: number, duration: number): [number, number][] {
  const low = () => Math.round(capacity * rng.uniform(0.35, 0.9));
  const points: [number, number][] = [[0, capacity]];
  const dip = (at: number, ramp: number, width: number, level: number, back: number): void => {
    points.push([at, capacity], [at + ramp, level], [at + ramp + width, level], [at + ramp + width + back, capacity]);
  };
  if (kind === 'drop') {
    const at = rng.uniform(0.15, 0.5) * duration;
    dip(at, rng.uniform(0, 15), rng.uniform(20, 0.4 * duration), low(), rng.uniform(0, 20));
  } else if (kind === 'flapping') {
    const level = low();
    for (let t = rng.uniform(10, 30); t < duration - 10; t += rng.uniform(5, 40)) {
      const width = rng.uniform(5, 40);
      dip(t, rng.uniform(0, 3), width, level, rng.uniform(0, 3));
      t += width + 6;
    }
  } else {
    const period = rng.uniform(60, 180);
    const width = rng.uniform(10, 0.4 * period);
    const level = low();
    for (let t = rng.uniform(10, period); t < duration - 10; t += period) dip(t, rng.uniform(0, 5), width, level, rng.uniform(0, 5));
  }
  points.push([duration, points[points.length - 1][1]]);
  return points;
}

/**
 * A generated pool (generateScenario's, same seed) in front of an upstream
 * that throttles as `kind` says; `window` and `hints` as given, else drawn.
 */
export function generateThrottled(seed: number, kind: ThrottleKind,
  o: GenOptions & { window?: UpstreamWindow; hints?: boolean } = {}): Scenario {
  const base = generateScenario(seed, o);
  const rng = new Rng((seed * 2654435761 + THROTTLE_KINDS.indexOf(kind) + 1) >>> 0);
  const window = o.window ?? rng.pick(UPSTREAM_WINDOWS);
  return {
    ...base, name: `${kind}-${seed}`,
    upstream_tps: throttlePoints(rng, kind, base.capacity_tps, base.duration_s),
    upstream_window: window, upstream_hints: o.hints ?? rng.next() < 0.5,
  };
}

export const LATENCY_KINDS = ['knee_moving', 'degrade_recover'] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

/**
 * A generated pool (generateScenario's, same seed) in front of an upstream
 * that never answers 429 below its capacity but slows past slo_ms as its load
 * nears a knee: a knee that jumps between levels every 40-120 s, or one that
 * degrades gradually to 40-70 % and recovers. Base latency 10-60 ms, SLO
 * 4-10x the base, callers time out at 4-8x the SLO.
 */
export function generateLatencyLimited(seed: number, kind: LatencyKind, o: GenOptions = {}): Scenario {
  const base = generateScenario(seed, o);
  const rng = new Rng((seed * 2246822519 + LATENCY_KINDS.indexOf(kind) + 11) >>> 0);
  const cap = base.capacity_tps;
  const d = base.duration_s;
  const knee: [number, number][] = [];
  if (kind === 'knee_moving') {
    let level = cap * rng.uniform(0.6, 0.95);
    for (let t = 0; t < d; t += rng.uniform(40, 120)) {
      if (t > 0) knee.push([t, knee[knee.length - 1][1]]);
      knee.push([t + (t > 0 ? 2 : 0), Math.round(level)]);
      level = cap * rng.uniform(0.4, 0.95);
    }
    knee.push([d, knee[knee.length - 1][1]]);
  } else {
    const top = cap * rng.uniform(0.8, 0.95);
    const low = top * rng.uniform(0.4, 0.7);
    const t0 = rng.uniform(0.1, 0.3) * d;
    const fall = rng.uniform(0.1, 0.25) * d;
    const hold = rng.uniform(0.05, 0.2) * d;
    knee.push([0, Math.round(top)], [t0, Math.round(top)], [t0 + fall, Math.round(low)], [t0 + fall + hold, Math.round(low)],
      [Math.min(d, t0 + 2 * fall + hold), Math.round(top)], [d, Math.round(top)]);
  }
  const baseMs = rng.uniform(10, 60);
  const slo = baseMs * rng.uniform(4, 10);
  return {
    ...base, name: `${kind}-${seed}`, upstream_tps: cap, upstream_window: rng.pick(UPSTREAM_WINDOWS),
    upstream_latency: { base_ms: Math.round(baseMs), knee_tps: knee, timeout_ms: Math.round(slo * rng.uniform(4, 8)) },
    slo_ms: Math.round(slo),
  };
}

/** The upstream-dynamics families: throttling (drop, flapping, periodic) and latency-limited (moving knee, degrade and recovery). */
export const DYNAMICS_KINDS = [...THROTTLE_KINDS, ...LATENCY_KINDS] as const;

/** Scenario `seed` of the upstream-dynamics families, the family drawn from the seed. */
export function generateDynamics(seed: number, o: GenOptions = {}): Scenario {
  const kind = DYNAMICS_KINDS[seed % DYNAMICS_KINDS.length];
  return (LATENCY_KINDS as readonly string[]).includes(kind) ? generateLatencyLimited(seed, kind as LatencyKind, o)
    : generateThrottled(seed, kind as ThrottleKind, o);
}
