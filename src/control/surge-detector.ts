// The surge and abuse detector (docs/tenants.md "Surge and abuse"): each tick
// it classes every tenant that moved as normal, surge (legitimate growth: its
// rate beyond its forecast band) or attack (a pattern no well-behaved client
// shows: far above its tier's tps while being denied, i.e. not waiting out
// retry_after). Pure arithmetic over typed arrays, one entry per tenant slot:
// no allocation per tenant or per tick, memory fixed at construction.
//
// Threads: main thread only (control/tenant-guard.ts calls it in the
// controller's tick; the evaluation in src/sim/tenant-traffic.ts drives it
// directly). Nothing here touches shared memory.
//
// Why this detector and not an isolation forest: the two classes are told
// apart by different evidence. An attack is a property of one tick's
// behaviour against a known bound (the tier's tps): a client that honours
// retry_after makes at most about one denied attempt per token it is given
// (after a denial it waits until a token is there), so its attempts stay
// near 2x its tier's tps and its denial ratio near 1/2 at worst. Attempts at
// ATTACK_RATE_RATIO x the tier's tps with most of them denied break that
// bound, whatever the tenant's history: a rule on two features, no model to
// fit, no baseline to poison (a slow ramp cannot teach it that hammering is
// normal). A surge is a property of a tenant against its own history, so it
// needs a per-tenant forecast: a robust streaming baseline, an EWMA whose
// input is clipped to BASE_CLIP band widths (a Huber-style M-estimate of the
// level, which a spike or an attack moves little, like a running median),
// and an EWMA of the clipped absolute deviation (a running MAD). The z-score
// of the short-window rate against that band is the forecast error; growth
// beyond SURGE_Z, held for SURGE_HOLD_S, is a surge. Both are O(1) per tenant
// per tick over eight float32 words; an isolation forest would need a
// feature window per tenant, a trained ensemble and still the tier bound to
// tell an attack from a surge.

/** The classes, in their numeric order (also the /metrics `class` label values). */
export const TENANT_CLASSES = ['normal', 'surge', 'attack'] as const;
export type TenantClassName = (typeof TENANT_CLASSES)[number];
export const NORMAL = 0;
export const SURGE = 1;
export const ATTACK = 2;

export interface DetectorOptions {
  /** Window of the short rate and denial EWMAs, seconds. */
  readonly shortS: number;
  /** Window of the baseline level and deviation EWMAs, seconds. */
  readonly baseS: number;
  /** The baseline's input is clipped to level +- BASE_CLIP x the band's width. */
  readonly baseClip: number;
  /** Forecast error (robust z) beyond which the rate is out of its band. */
  readonly surgeZ: number;
  /** Seconds out of band before a surge is called. */
  readonly surgeHoldS: number;
  /** The band never narrows below this fraction of the tier's tps (plus one token/s): Poisson noise of small rates. */
  readonly bandFloorFraction: number;
  /** Attempts at this multiple of the tier's tps or more, ... */
  readonly attackRateRatio: number;
  /** ... with at least this share of them denied by the tenant's own bucket, ... */
  readonly attackDenialRatio: number;
  /** ... for this many seconds: an attack. */
  readonly attackHoldS: number;
}

export const DEFAULT_DETECTOR: DetectorOptions = {
  shortS: 2, baseS: 60, baseClip: 3, surgeZ: 4, surgeHoldS: 2, bandFloorFraction: 0.01,
  attackRateRatio: 3, attackDenialRatio: 0.6, attackHoldS: 2,
};

/** A tenant whose short rate fell below this (tokens/s) and is classed normal is no longer watched (about 7 s after a few tokens/s stop). */
const SETTLED_TPS = 0.1;
/** The baseline's warm start: its n-th tick weighs at least WARM_START / n (a new tenant's first ticks teach it its level faster). */
const WARM_START = 0.2;
/** 1.4826 x MAD estimates a normal distribution's standard deviation. */
const MAD_TO_SIGMA = 1.4826;
/** The band never narrows below this many tokens/s (plus bandFloorFraction of the tps). */
const BAND_FLOOR_TPS = 0.5;

// Per-slot state, float32 words of one Float32Array (STATE_WORDS per slot).
const RATE = 0; // short EWMA of attempted tokens/s
const DENIED = 1; // short EWMA of denied tokens/s
const LEVEL = 2; // baseline level, tokens/s
const DEV = 3; // baseline absolute deviation, tokens/s
const SURGE_S = 4; // seconds out of band (decays when back in)
const ATTACK_S = 5; // seconds of attack evidence (decays when it stops)
const Z = 6; // last forecast error
const SEEN = 7; // ticks observed (the baseline's warm start)
const STATE_WORDS = 8;

export class SurgeDetector {
  readonly slots: number;
  private readonly state: Float32Array;
  /** Per slot: its class (NORMAL, SURGE, ATTACK); 255: no observation yet. */
  private readonly cls: Uint8Array;
  private readonly o: DetectorOptions;

  /** The EWMA factors for the last dtS seen (every tenant of a tick has the same dtS: computed once a tick). */
  private factorDtS = Number.NaN;
  private shortFactor = 0;
  private baseFactor = 0;

  constructor(slots: number, options: DetectorOptions = DEFAULT_DETECTOR) {
    this.slots = slots;
    this.o = options;
    this.state = new Float32Array(slots * STATE_WORDS);
    this.cls = new Uint8Array(slots).fill(255);
  }

  /** Forgets the slot (its tenant was forgotten; a new one starts with no history). */
  reset(slot: number): void {
    this.state.fill(0, slot * STATE_WORDS, (slot + 1) * STATE_WORDS);
    this.cls[slot] = 255;
  }

  /**
   * One tick of one tenant: tokens it asked for and tokens its own bucket
   * denied during `dtS` seconds, against its tier's tps (Infinity: no bound,
   * only surges are looked for). Returns its class.
   */
  observe(slot: number, requested: number, denied: number, dtS: number, tierTps: number): number {
    const s = this.state;
    const o = this.o;
    const at = slot * STATE_WORDS;
    const x = requested / dtS;
    const fresh = this.cls[slot] === 255;
    if (dtS !== this.factorDtS) {
      this.factorDtS = dtS;
      this.shortFactor = 1 - Math.exp(-dtS / o.shortS);
      this.baseFactor = 1 - Math.exp(-dtS / o.baseS);
    }
    const a = fresh ? 1 : this.shortFactor;
    s[at + RATE] += a * (x - s[at + RATE]);
    s[at + DENIED] += a * (denied / dtS - s[at + DENIED]);
    const rate = s[at + RATE];
    const floor = (Number.isFinite(tierTps) ? o.bandFloorFraction * tierTps : 0) + BAND_FLOOR_TPS;
    if (fresh) {
      // No history yet: the band starts at the Poisson noise of the short rate at this rate (an EWMA of counts at x/s).
      s[at + LEVEL] = x;
      s[at + DEV] = Math.sqrt((Math.max(x, 1) * this.shortFactor) / ((2 - this.shortFactor) * dtS)) / MAD_TO_SIGMA;
    }
    const band = MAD_TO_SIGMA * s[at + DEV] + floor;
    const z = (rate - s[at + LEVEL]) / band;
    s[at + Z] = z;
    // The baseline learns from the clipped short rate (the raw tick is Poisson noise at short ticks): one tick far out
    // moves it by at most baseClip band widths x b.
    // A warm start: the first ticks weigh more (WARM_START / n), then the EWMA takes over.
    s[at + SEEN] += 1;
    const b = Math.max(this.baseFactor, WARM_START / s[at + SEEN]);
    const level = s[at + LEVEL];
    const clipped = Math.min(level + o.baseClip * band, Math.max(level - o.baseClip * band, rate));
    s[at + LEVEL] = level + b * (clipped - level);
    s[at + DEV] += b * (Math.abs(clipped - level) - s[at + DEV]);
    s[at + SURGE_S] = z >= o.surgeZ ? s[at + SURGE_S] + dtS : Math.max(0, s[at + SURGE_S] - dtS);
    const hammering = rate >= o.attackRateRatio * tierTps && s[at + DENIED] >= o.attackDenialRatio * rate;
    s[at + ATTACK_S] = hammering ? Math.min(s[at + ATTACK_S] + dtS, 4 * o.attackHoldS) : Math.max(0, s[at + ATTACK_S] - dtS);
    const was = this.cls[slot];
    let c: number;
    if (s[at + ATTACK_S] >= o.attackHoldS || (was === ATTACK && s[at + ATTACK_S] > 0)) c = ATTACK;
    else if (s[at + SURGE_S] >= o.surgeHoldS || (was === SURGE && s[at + SURGE_S] > 0)) c = SURGE;
    else c = NORMAL;
    this.cls[slot] = c;
    return c;
  }

  /** The slot's class (NORMAL before its first observation). */
  classOf(slot: number): number { const c = this.cls[slot]; return c === 255 ? NORMAL : c; }
  /** The short-window attempted rate, tokens/s. */
  rateTps(slot: number): number { return this.state[slot * STATE_WORDS + RATE]; }
  /** The short-window share of attempts the tenant's own bucket denied. */
  denialRatio(slot: number): number {
    const r = this.state[slot * STATE_WORDS + RATE];
    return r > 0 ? Math.min(1, this.state[slot * STATE_WORDS + DENIED] / r) : 0;
  }
  /** The baseline level, tokens/s. */
  baselineTps(slot: number): number { return this.state[slot * STATE_WORDS + LEVEL]; }
  /** The last forecast error (robust z-score of the rate against the baseline). */
  zScore(slot: number): number { return this.state[slot * STATE_WORDS + Z]; }
  /** True once the slot's rate has decayed to about zero and it is classed normal: nothing left to watch (a tenant that stopped is watched until then). */
  settled(slot: number): boolean { return this.state[slot * STATE_WORDS + RATE] < SETTLED_TPS && this.classOf(slot) === NORMAL; }
}
