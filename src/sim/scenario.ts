// Traffic scenarios for the simulator (SCENARIOS.md is the contract): parsing
// with path-naming errors, defaults, and the demand and upstream curves as
// functions of time. Pure; used by the simulator in any thread (sim command on
// the main thread, rollouts in Piscina workers).

import { PRIORITIES, type Priority } from '../config/types.ts';
import { CodedError } from '../protocol/coded-error.ts';

export type DemandSpec =
  | { kind: 'constant'; tps: number }
  | { kind: 'sine'; base: number; amplitude: number; period_s: number; phase_s: number }
  | { kind: 'step'; tps: number; at_s: number; to_tps: number }
  | { kind: 'spike'; base: number; peak: number; at_s: number; width_s: number }
  | { kind: 'trace'; points: [number, number][] };

export interface ScenarioService {
  name: string;
  priority: Priority;
  min_tps: number;
  max_tps: number;
  demand: DemandSpec;
  noise: number;
  patience_s: number;
}

export interface Scenario {
  name: string;
  seed: number;
  duration_s: number;
  tick_ms: number;
  capacity_tps: number;
  /** A constant or piecewise-linear [[t_s, tps], ...]. */
  upstream_tps: number | [number, number][];
  services: ScenarioService[];
}

export class ScenarioError extends CodedError {
  override readonly code = 'TPSD_SCENARIO_INVALID';
  constructor(readonly errors: string[], source: string) {
    super(`invalid scenario ${source}:\n${errors.map((e) => `  - ${e}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a parsed scenario file and fills in the defaults. */
export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const errors: string[] = [];
  const num = (o: Json, key: string, path: string, def?: number, min = 0): number => {
    const v = o[key];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      errors.push(`${path}.${key}: expected a number >= ${min}, found ${JSON.stringify(v) ?? 'nothing'}`);
      return def ?? min;
    }
    return v;
  };
  const points = (v: unknown, path: string): [number, number][] => {
    if (!Array.isArray(v) || v.length === 0 || !v.every((p) => Array.isArray(p) && p.length === 2 &&
      p.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0))) {
      errors.push(`${path}: expected [[t_s, tps], ...] with non-negative numbers`);
      return [[0, 0]];
    }
    return (v as [number, number][]).map(([t, x]) => [t, x] as [number, number]).sort((a, b) => a[0] - b[0]);
  };
  if (!isObj(raw)) throw new ScenarioError(['(root): expected an object'], source);
  const name = typeof raw.name === 'string' ? raw.name : (errors.push('name: expected a string'), 'unnamed');
  const seed = num(raw, 'seed', '', 1);
  const duration = num(raw, 'duration_s', '', undefined, 1);
  const tickMs = num(raw, 'tick_ms', '', 1000, 10);
  const capacity = num(raw, 'capacity_tps', '', undefined, 1);
  const upstream = raw.upstream_tps === undefined ? capacity
    : typeof raw.upstream_tps === 'number' ? num(raw, 'upstream_tps', '') : points(raw.upstream_tps, 'upstream_tps');
  const services: ScenarioService[] = [];
  if (!Array.isArray(raw.services) || raw.services.length === 0) errors.push('services: expected a non-empty array');
  else raw.services.forEach((s: unknown, i: number) => {
    const path = `services[${i}]`;
    if (!isObj(s)) { errors.push(`${path}: expected an object`); return; }
    const priority = PRIORITIES.includes(s.priority as Priority) ? (s.priority as Priority)
      : (errors.push(`${path}.priority: expected one of ${PRIORITIES.join(', ')}, found ${JSON.stringify(s.priority)}`), 'LOW');
    const d = isObj(s.demand) ? s.demand : (errors.push(`${path}.demand: expected an object`), { kind: 'constant', tps: 0 });
    const dp = `${path}.demand`;
    let demand: DemandSpec;
    switch (d.kind) {
      case 'constant': demand = { kind: 'constant', tps: num(d, 'tps', dp) }; break;
      case 'sine': demand = { kind: 'sine', base: num(d, 'base', dp), amplitude: num(d, 'amplitude', dp),
        period_s: num(d, 'period_s', dp, undefined, 1e-3), phase_s: num(d, 'phase_s', dp, 0, -Infinity) }; break;
      case 'step': demand = { kind: 'step', tps: num(d, 'tps', dp), at_s: num(d, 'at_s', dp), to_tps: num(d, 'to_tps', dp) }; break;
      case 'spike': demand = { kind: 'spike', base: num(d, 'base', dp), peak: num(d, 'peak', dp),
        at_s: num(d, 'at_s', dp), width_s: num(d, 'width_s', dp) }; break;
      case 'trace': demand = { kind: 'trace', points: points(d.points, `${dp}.points`) }; break;
      default:
        errors.push(`${dp}.kind: expected constant, sine, step, spike or trace, found ${JSON.stringify(d.kind)}`);
        demand = { kind: 'constant', tps: 0 };
    }
    services.push({
      name: typeof s.name === 'string' ? s.name : `service${i}`,
      priority,
      min_tps: num(s, 'min_tps', path, 0),
      max_tps: num(s, 'max_tps', path, capacity),
      demand,
      noise: num(s, 'noise', path, 0),
      patience_s: num(s, 'patience_s', path, 5),
    });
  });
  if (services.length > 64) errors.push(`services: at most 64 services per pool, found ${services.length}`);
  if (errors.length > 0) throw new ScenarioError(errors, source);
  return { name, seed, duration_s: duration, tick_ms: tickMs, capacity_tps: capacity, upstream_tps: upstream, services };
}

/** Linear interpolation over sorted points, flat outside. */
export function piecewise(points: readonly [number, number][], t: number): number {
  if (t <= points[0][0]) return points[0][1];
  for (let i = 1; i < points.length; i++) {
    const [t1, v1] = points[i];
    if (t <= t1) {
      const [t0, v0] = points[i - 1];
      return t1 === t0 ? v1 : v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
    }
  }
  return points[points.length - 1][1];
}

/** The service's mean demand (tokens/s) at time t, before noise. */
export function demandAt(d: DemandSpec, t: number): number {
  switch (d.kind) {
    case 'constant': return d.tps;
    case 'sine': return Math.max(0, d.base + d.amplitude * Math.sin((2 * Math.PI * (t + d.phase_s)) / d.period_s));
    case 'step': return t < d.at_s ? d.tps : d.to_tps;
    case 'spike': return t >= d.at_s && t < d.at_s + d.width_s ? d.peak : d.base;
    case 'trace': return piecewise(d.points, t);
  }
}

export function upstreamAt(s: Scenario, t: number): number {
  return typeof s.upstream_tps === 'number' ? s.upstream_tps : piecewise(s.upstream_tps, t);
}
