// A labelled synthetic set for the surge and abuse detector
// (control/surge-detector.ts), and its evaluation: precision and recall of
// the attack and surge classes, per tenant and per tick. Seeded: the same
// seed gives the same set and the same figures on every machine.
// test/unit/sim/tenant-traffic.test.ts asserts the bars; docs/tenants.md
// reports the figures.
//
// Each tenant is one client against its own token bucket (the tier's tps and
// burst), simulated per tick as a fluid: arrivals are Poisson at the
// client's rate; a POLITE client (every legitimate kind) keeps what was
// denied for a later try and, honouring retry_after, makes at most about one
// denied attempt per token the bucket earns (retry_after is the time to the
// next token), shedding what it cannot send; an attacker sends everything,
// denied or not. Kinds: normal (a flat rate), diurnal (a compressed day,
// 0.1..0.7 of the tps), surge (a flat base, then 3..8x for one to three
// minutes, sometimes past the tier), and four attacks after a normal start:
// flood (5..20x the tps), moderate (4x), slow ramp (0.3x to 6x over ten
// minutes) and on/off (10x for 20 s of each minute).
//
// Threads: any; pure computation (the test runs it on its own thread).

import { Rng } from '../ppo/rng.ts';
import { ATTACK, SURGE, SurgeDetector, type DetectorOptions } from '../control/surge-detector.ts';

export const TENANT_KINDS = ['normal', 'diurnal', 'surge', 'flood', 'moderate', 'ramp', 'on_off'] as const;
export type TenantKind = (typeof TENANT_KINDS)[number];
const ATTACKS: readonly TenantKind[] = ['flood', 'moderate', 'ramp', 'on_off'];

export interface SyntheticTenant {
  readonly kind: TenantKind;
  /** Tokens/s the client wants at time t (seconds). */
  readonly demandTps: (tS: number) => number;
  /** The labelled episode (surge window, or the attack from its start), seconds; null for normal and diurnal. */
  readonly episode: readonly [number, number] | null;
}

export interface SetOptions {
  readonly seed: number;
  readonly tenants: number;
  readonly durationS: number;
  readonly dtS: number;
  readonly tierTps: number;
}

export const DEFAULT_SET: SetOptions = { seed: 16, tenants: 400, durationS: 1200, dtS: 1, tierTps: 40 };

/** The tenants of the set: kinds in fixed proportions (35 % normal, 25 % diurnal, 20 % surge, 20 % attacks of four kinds). */
export function syntheticTenants(o: SetOptions, rng: Rng): SyntheticTenant[] {
  const tps = o.tierTps;
  const out: SyntheticTenant[] = [];
  for (let i = 0; i < o.tenants; i++) {
    const u = i / o.tenants;
    const base = rng.uniform(0.05, 0.7) * tps;
    if (u < 0.35) {
      out.push({ kind: 'normal', demandTps: () => base, episode: null });
    } else if (u < 0.6) {
      const phase = rng.uniform(0, 2 * Math.PI);
      const periodS = rng.uniform(400, 800);
      out.push({ kind: 'diurnal', demandTps: (t) => tps * (0.1 + 0.6 * (1 + Math.sin((2 * Math.PI * t) / periodS + phase)) / 2), episode: null });
    } else if (u < 0.8) {
      const low = rng.uniform(0.05, 0.3) * tps;
      const factor = rng.uniform(3, 8);
      const start = rng.uniform(180, o.durationS - 300);
      const end = start + rng.uniform(60, 180);
      out.push({ kind: 'surge', demandTps: (t) => (t >= start && t < end ? low * factor : low), episode: [start, end] });
    } else {
      const kind = ATTACKS[i % ATTACKS.length];
      const start = rng.uniform(120, o.durationS / 2);
      const low = rng.uniform(0.05, 0.5) * tps;
      const flood = rng.uniform(5, 20) * tps;
      const demand = (t: number): number => {
        if (t < start) return low;
        if (kind === 'flood') return flood;
        if (kind === 'moderate') return 4 * tps;
        if (kind === 'ramp') return tps * Math.min(6, 0.3 + (5.7 * (t - start)) / 600);
        return (t - start) % 60 < 20 ? 10 * tps : low; // on_off
      };
      out.push({ kind, demandTps: demand, episode: [start, o.durationS] });
    }
  }
  return out;
}

/** One client against its bucket, tick by tick: what it asked for and what its bucket denied. */
class ClientBucket {
  private tokens: number;
  private backlog = 0;
  constructor(private readonly tps: number, private readonly burst: number, private readonly polite: boolean) {
    this.tokens = burst;
  }

  tick(arrivals: number, dtS: number): [requested: number, denied: number] {
    // What the bucket held plus what it earns during the tick (spent as it comes); it keeps at most its burst.
    const avail = this.tokens + this.tps * dtS;
    const pending = this.backlog + arrivals;
    const granted = Math.min(pending, Math.floor(avail));
    this.tokens = Math.min(this.burst, avail - granted);
    const left = pending - granted;
    if (!this.polite) return [pending, left];
    // Honouring retry_after: about one denied try per token earned in the tick; the rest waits, up to a tick's worth.
    const denied = left > 0 ? Math.min(left, Math.max(1, Math.floor(this.tps * dtS))) : 0;
    this.backlog = Math.min(left, Math.ceil(this.tps * dtS));
    return [granted + denied, denied];
  }
}

function poisson(rng: Rng, mean: number): number {
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * rng.normal()));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng.next();
  while (p > limit) { k++; p *= rng.next(); }
  return k;
}

export interface ClassScore { tp: number; fp: number; fn: number; precision: number; recall: number }
export interface Evaluation {
  /** Per tenant: an attacker flagged during its attack counts once; a legitimate tenant flagged attack ever is a false positive. */
  readonly attackTenants: ClassScore;
  /** Per tick: ticks called attack that belong to an attack, and attack ticks (demand >= 3x the tps) called attack. */
  readonly attackTicks: ClassScore;
  /** Per tenant: a surge tenant called surge within its window (+30 s); a normal or diurnal tenant called surge after warm-up is a false positive. */
  readonly surgeTenants: ClassScore;
  /** Per tick, legitimate tenants only: ticks called surge inside a surge window (+30 s), and surge ticks called surge. */
  readonly surgeTicks: ClassScore;
  /** Median seconds from an attack's start (a ramp's: from when it passed 3x) to its first attack tick. */
  readonly medianAttackDelayS: number;
  /** Attackers missed, by kind (empty when none). */
  readonly missed: Readonly<Record<string, number>>;
}

function score(tp: number, fp: number, fn: number): ClassScore {
  return { tp, fp, fn, precision: tp + fp === 0 ? 1 : tp / (tp + fp), recall: tp + fn === 0 ? 1 : tp / (tp + fn) };
}

/** Runs the detector over the set and scores it. */
export function evaluateDetector(o: SetOptions = DEFAULT_SET, detector?: DetectorOptions): Evaluation {
  const rng = new Rng(o.seed);
  const tenants = syntheticTenants(o, rng);
  const det = new SurgeDetector(tenants.length, detector);
  const burst = Math.max(1, o.tierTps / 5);
  const WARMUP_S = 60;
  const SLACK_S = 30;
  const c = { aT: 0, aF: 0, aN: 0, atT: 0, atF: 0, atN: 0, sT: 0, sF: 0, sN: 0, stT: 0, stF: 0, stN: 0 };
  const delays: number[] = [];
  const missed: Record<string, number> = {};
  tenants.forEach((tenant, slot) => {
    const client = new ClientBucket(o.tierTps, burst, !ATTACKS.includes(tenant.kind));
    const attacker = ATTACKS.includes(tenant.kind);
    const r = rng.fork();
    let flagged = false;
    let calledSurge = false;
    let falseAttack = false;
    let falseSurge = false;
    let attackFrom = Number.NaN;
    for (let t = 0; t < o.durationS; t += o.dtS) {
      const want = tenant.demandTps(t);
      const [requested, denied] = client.tick(poisson(r, want * o.dtS), o.dtS);
      const cls = det.observe(slot, requested, denied, o.dtS, o.tierTps);
      const ep = tenant.episode;
      const inEpisode = ep !== null && t >= ep[0] && t < ep[1];
      if (attacker && inEpisode && want >= 3 * o.tierTps && Number.isNaN(attackFrom)) attackFrom = t;
      if (cls === ATTACK) {
        if (attacker && inEpisode) { c.atT++; if (!flagged) { flagged = true; delays.push(t - (Number.isNaN(attackFrom) ? ep![0] : attackFrom)); } }
        else { c.atF++; if (!attacker) falseAttack = true; }
      } else if (attacker && inEpisode && want >= 3 * o.tierTps) c.atN++;
      if (attacker) continue;
      const inSurge = tenant.kind === 'surge' && ep !== null && t >= ep[0] && t < ep[1] + SLACK_S;
      if (cls === SURGE) {
        if (inSurge) { c.stT++; calledSurge = true; } else if (t >= WARMUP_S) { c.stF++; if (tenant.kind !== 'surge') falseSurge = true; }
      } else if (inSurge && t < ep![1]) c.stN++;
    }
    if (attacker) { if (flagged) c.aT++; else { c.aN++; missed[tenant.kind] = (missed[tenant.kind] ?? 0) + 1; } }
    else if (falseAttack) c.aF++;
    if (tenant.kind === 'surge') { if (calledSurge) c.sT++; else c.sN++; } else if (falseSurge && !attacker) c.sF++;
  });
  delays.sort((a, b) => a - b);
  return {
    attackTenants: score(c.aT, c.aF, c.aN), attackTicks: score(c.atT, c.atF, c.atN),
    surgeTenants: score(c.sT, c.sF, c.sN), surgeTicks: score(c.stT, c.stF, c.stN),
    medianAttackDelayS: delays.length === 0 ? Number.NaN : delays[delays.length >> 1], missed,
  };
}
