// Reconnect delays: exponential backoff with jitter, reset after a good connect.

export interface ReconnectOptions {
  /** Delay before the first reconnect attempt (default 100). */
  initialDelayMs: number;
  /** Upper bound of the delay (default 5000). */
  maxDelayMs: number;
  /** Growth per failed attempt (default 2). */
  factor: number;
  /** Fraction of random spread around each delay, 0..1 (default 0.2: +-20 %). */
  jitter: number;
}

export const DEFAULT_RECONNECT: Readonly<ReconnectOptions> = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 5000,
  factor: 2,
  jitter: 0.2,
});

export class Backoff {
  private attempts = 0;

  constructor(private readonly opts: ReconnectOptions, private readonly random: () => number = Math.random) {}

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const { initialDelayMs, maxDelayMs, factor, jitter } = this.opts;
    const base = Math.min(maxDelayMs, initialDelayMs * factor ** this.attempts);
    this.attempts++;
    const spread = base * jitter * (2 * this.random() - 1);
    return Math.round(Math.min(maxDelayMs, Math.max(0, base + spread)));
  }

  reset(): void {
    this.attempts = 0;
  }

  get failures(): number {
    return this.attempts;
  }
}
