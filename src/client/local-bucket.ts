// The 'local' failure mode: one token bucket per key inside this process, at a
// rate the operator considers safe when the daemon cannot coordinate. A
// request that would fit within its waitMs reserves its tokens at once (the
// level may go negative) and is granted after the computed delay, so waiting
// requests are served in arrival order without timers polling the bucket.

export interface LocalRate {
  /** Refill rate per key, tokens per second. */
  tps: number;
  /** Bucket size in tokens; default max(1, ceil(tps / 20)) like the daemon's buckets. */
  burst?: number;
}

export interface LocalDecision {
  granted: boolean;
  /** When granted: how long to wait before using the tokens (0: now). */
  delayMs: number;
  /** When granted: whole tokens left after the grant (0 when reserved ahead). */
  remaining: number;
  /** When denied: estimated ms until the tokens would be available (>= 1). */
  retryAfterMs: number;
}

export function defaultBurst(tps: number): number {
  return Math.max(1, Math.ceil(tps / 20));
}

export class LocalBucket {
  private level: number;
  private last: number;
  readonly burst: number;

  constructor(readonly tps: number, burst: number | undefined, now: number) {
    this.burst = burst ?? defaultBurst(tps);
    this.level = this.burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.level = Math.min(this.burst, this.level + ((now - this.last) * this.tps) / 1000);
      this.last = now;
    }
  }

  /** Takes `tokens` now, or reserves them if they come within `waitMs`. */
  take(tokens: number, waitMs: number, now: number): LocalDecision {
    this.refill(now);
    if (this.level >= tokens) {
      this.level -= tokens;
      return { granted: true, delayMs: 0, remaining: Math.floor(this.level), retryAfterMs: 0 };
    }
    const deficitMs = ((tokens - this.level) * 1000) / this.tps;
    if (tokens <= this.burst && deficitMs <= waitMs) {
      this.level -= tokens;
      return { granted: true, delayMs: Math.ceil(deficitMs), remaining: 0, retryAfterMs: 0 };
    }
    return { granted: false, delayMs: 0, remaining: 0, retryAfterMs: Math.max(1, Math.ceil(deficitMs)) };
  }

  /** True when the bucket is full again (a forgotten bucket would be the same). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.level >= this.burst;
  }
}

/** Buckets by key, created on first use; at most `maxKeys`, full ones dropped first. */
export class LocalLimiter {
  private readonly buckets = new Map<string, LocalBucket>();

  constructor(private readonly rate: LocalRate, private readonly maxKeys = 10_000) {
    if (!(rate.tps > 0) || !Number.isFinite(rate.tps)) throw new TypeError('tpsd: localRate.tps must be a positive number');
    if (rate.burst !== undefined && !(rate.burst >= 1)) throw new TypeError('tpsd: localRate.burst must be >= 1');
  }

  take(key: string, tokens: number, waitMs: number, now: number): LocalDecision {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      bucket = new LocalBucket(this.rate.tps, this.rate.burst, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(tokens, waitMs, now);
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key);
    // Still full of busy keys: forget the oldest (it restarts full, a bounded over-grant).
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }
}
