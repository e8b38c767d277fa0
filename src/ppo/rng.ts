// Seeded pseudo-random numbers (any thread; each user owns its instance).
// xoshiro128** seeded through splitmix32, plus Box-Muller normals: the same
// seed gives the same stream on every machine, which the simulator's
// determinism and the trainer's reproducibility rest on.

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = NaN;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1). */
  next(): number { return this.nextU32() / 4294967296; }

  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }

  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }

  pick<T>(items: readonly T[]): T { return items[Math.floor(this.next() * items.length)]; }

  /** Standard normal. */
  normal(): number {
    if (!Number.isNaN(this.spare)) { const v = this.spare; this.spare = NaN; return v; }
    let u = 0;
    while (u <= 1e-12) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A new generator whose stream is independent of this one's. */
  fork(): Rng { return new Rng(this.nextU32()); }
}

function rotl(x: number, k: number): number { return (x << k) | (x >>> (32 - k)); }
