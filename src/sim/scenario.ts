// Traffic scenarios for the simulator (SCENARIOS.md is the contract, with
// its additions): parsing with the config validator's rules (every problem
// named by its path, misspelled keys caught with a suggestion, unknown values
// refused), defaults, and the demand and upstream curves as functions of
// time. Pure; used by the simulator in any thread (sim command on the main
// thread, rollouts in Piscina workers).

import { FieldReader, isPlainObject, joinIndex, joinKey, type JsonObject } from '../config/field-reader.ts';
import { PRIORITIES, type Priority } from '../config/types.ts';
import { CodedError } from '../protocol/coded-error.ts';

export type DemandSpec =
  | { kind: 'constant'; tps: number }
  | { kind: 'sine'; base: number; amplitude: number; period_s: number; phase_s: number }
  | { kind: 'step'; tps: number; at_s: number; to_tps: number }
  | { kind: 'spike'; base: number; peak: number; at_s: number; width_s: number }
  | { kind: 'trace'; points: [number, number][] };

/** A constant or piecewise-linear [[t_s, value], ...] curve. */
export type Curve = number | [number, number][];

export interface ScenarioService {
  name: string;
  priority: Priority;
  min_tps: number;
  max_tps: number;
  demand: DemandSpec;
  noise: number;
  patience_s: number;
}

/** How the upstream counts (SCENARIOS.md additions); the simulator's upstream.ts implements each. */
export const UPSTREAM_WINDOWS = ['fixed_1s', 'sliding_1s', 'token_bucket'] as const;
export type UpstreamWindow = (typeof UPSTREAM_WINDOWS)[number];

/** The upstream slows near its knee (the curve: upstream-latency.ts); past timeout_ms a request is a timeout. */
export interface UpstreamLatency {
  base_ms: number;
  knee_tps: Curve;
  timeout_ms: number;
}

export interface Scenario {
  name: string;
  seed: number;
  duration_s: number;
  tick_ms: number;
  capacity_tps: number;
  upstream_tps: Curve;
  /** Default fixed_1s. */
  upstream_window?: UpstreamWindow;
  /** token_bucket's size in requests; default (null/absent) a tenth of a second of upstream_tps(t). */
  upstream_burst?: number | null;
  /** The upstream answers with rate-limit headers, which reach the controller as RELEASE hints do. Default false. */
  upstream_hints?: boolean;
  upstream_latency?: UpstreamLatency | null;
  slo_ms?: number | null;
  services: ScenarioService[];
}

export class ScenarioError extends CodedError {
  override readonly code = 'TPSD_SCENARIO_INVALID';
  constructor(readonly errors: string[], source: string) {
    super(`invalid scenario ${source}:\n${errors.map((e) => `  - ${e}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

const ROOT_KEYS = ['name', 'description', 'seed', 'duration_s', 'tick_ms', 'capacity_tps', 'upstream_tps', 'upstream_window',
  'upstream_burst', 'upstream_hints', 'upstream_latency', 'slo_ms', 'services'] as const;
const SERVICE_KEYS = ['name', 'priority', 'min_tps', 'max_tps', 'demand', 'noise', 'patience_s'] as const;
const LATENCY_KEYS = ['base_ms', 'knee_tps', 'timeout_ms'] as const;
/** Each demand kind's fields, beside `kind`. */
const DEMAND_KEYS: Record<DemandSpec['kind'], readonly string[]> = {
  constant: ['tps'], sine: ['base', 'amplitude', 'period_s', 'phase_s'], step: ['tps', 'at_s', 'to_tps'],
  spike: ['base', 'peak', 'at_s', 'width_s'], trace: ['points'],
};
const DEMAND_KINDS = Object.keys(DEMAND_KEYS) as DemandSpec['kind'][];
export const MAX_SCENARIO_SERVICES = 64;

/** [[t_s, value], ...] with non-negative numbers, sorted by time. */
function points(r: FieldReader, v: unknown, path: string): [number, number][] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((p) => Array.isArray(p) && p.length === 2 &&
    p.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0))) {
    r.fail(path, '[[t_s, value], ...] with non-negative numbers', v);
    return [[0, 0]];
  }
  return (v as [number, number][]).map(([t, x]) => [t, x] as [number, number]).sort((a, b) => a[0] - b[0]);
}

/** A number, or [[t_s, value], ...]; `min` for the number. */
function curve(r: FieldReader, o: JsonObject, path: string, key: string, min: number): Curve {
  const v = o[key];
  if (Array.isArray(v)) return points(r, v, joinKey(path, key));
  return r.number(o, path, key, { min }) ?? min;
}

function demand(r: FieldReader, v: unknown, path: string): DemandSpec {
  const d = isPlainObject(v) ? v : (r.fail(path, 'an object', v), { kind: 'constant', tps: 0 });
  const kind = r.oneOf(d, path, 'kind', DEMAND_KINDS);
  if (kind === undefined) return { kind: 'constant', tps: 0 };
  r.object(path, d, ['kind', ...DEMAND_KEYS[kind]]);
  const n = (key: string, min = 0, fallback?: number) => r.number(d, path, key, { min }, fallback) ?? 0;
  switch (kind) {
    case 'constant': return { kind, tps: n('tps') };
    case 'sine': return { kind, base: n('base'), amplitude: n('amplitude'), period_s: r.number(d, path, 'period_s', { above: 0 }) ?? 1,
      phase_s: r.number(d, path, 'phase_s', {}, 0) ?? 0 };
    case 'step': return { kind, tps: n('tps'), at_s: n('at_s'), to_tps: n('to_tps') };
    case 'spike': return { kind, base: n('base'), peak: n('peak'), at_s: n('at_s'), width_s: n('width_s') };
    case 'trace': return { kind, points: points(r, d.points, `${path}.points`) };
  }
}

function service(r: FieldReader, v: unknown, i: number, capacity: number): ScenarioService | null {
  const path = joinIndex('services', i);
  const s = r.object(path, v, SERVICE_KEYS);
  if (s === undefined) return null;
  const priority = r.oneOf(s, path, 'priority', PRIORITIES) ?? 'LOW';
  const name = r.string(s, path, 'name', `service${i}`) ?? `service${i}`;
  return {
    name, priority,
    min_tps: r.number(s, path, 'min_tps', { min: 0 }, 0) ?? 0,
    max_tps: r.number(s, path, 'max_tps', { min: 0 }, capacity) ?? capacity,
    demand: demand(r, s.demand, `${path}.demand`),
    noise: r.number(s, path, 'noise', { min: 0 }, 0) ?? 0,
    patience_s: r.number(s, path, 'patience_s', { min: 0 }, 5) ?? 5,
  };
}

function latency(r: FieldReader, v: unknown): UpstreamLatency | null {
  if (v === undefined || v === null) return null;
  const l = r.object('upstream_latency', v, LATENCY_KEYS);
  if (l === undefined) return null;
  return {
    base_ms: r.number(l, 'upstream_latency', 'base_ms', { min: 0 }) ?? 0,
    knee_tps: curve(r, l, 'upstream_latency', 'knee_tps', 0),
    timeout_ms: r.number(l, 'upstream_latency', 'timeout_ms', { above: 0 }) ?? 1,
  };
}

/** Validates a parsed scenario file and fills in the defaults. */
export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const r = new FieldReader();
  const o = r.object('', raw, ROOT_KEYS);
  if (o === undefined) throw new ScenarioError(r.errors, source);
  if (o.description !== undefined && typeof o.description !== 'string') r.fail('description', 'a string', o.description);
  const capacity = r.number(o, '', 'capacity_tps', { min: 1 }) ?? 1;
  const services: ScenarioService[] = [];
  const list = r.array(o, '', 'services', 'services', 1) ?? [];
  list.forEach((v, i) => { const s = service(r, v, i, capacity); if (s !== null) services.push(s); });
  if (list.length > MAX_SCENARIO_SERVICES) r.failWith('services', `at most ${MAX_SCENARIO_SERVICES} services per pool`, `${list.length}`);
  const scenario: Scenario = {
    name: r.string(o, '', 'name') ?? 'unnamed',
    seed: r.number(o, '', 'seed', { integer: true, min: 0 }, 1) ?? 1,
    duration_s: r.number(o, '', 'duration_s', { min: 1 }) ?? 1,
    tick_ms: r.number(o, '', 'tick_ms', { min: 10 }, 1000) ?? 1000,
    capacity_tps: capacity,
    upstream_tps: o.upstream_tps === undefined ? capacity : curve(r, o, '', 'upstream_tps', 0),
    upstream_window: r.oneOf(o, '', 'upstream_window', UPSTREAM_WINDOWS, 'fixed_1s') ?? 'fixed_1s',
    upstream_burst: o.upstream_burst === undefined || o.upstream_burst === null ? null : r.number(o, '', 'upstream_burst', { min: 1 }) ?? null,
    upstream_hints: r.boolean(o, '', 'upstream_hints', false) ?? false,
    upstream_latency: latency(r, o.upstream_latency),
    slo_ms: o.slo_ms === undefined || o.slo_ms === null ? null : r.number(o, '', 'slo_ms', { above: 0 }) ?? null,
    services,
  };
  if (r.errorCount > 0) throw new ScenarioError(r.errors, source);
  return scenario;
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

export function curveAt(c: Curve, t: number): number {
  return typeof c === 'number' ? c : piecewise(c, t);
}

export function upstreamAt(s: Scenario, t: number): number {
  return curveAt(s.upstream_tps, t);
}
