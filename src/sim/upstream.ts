// The simulated upstream API (single thread: the simulator's). It answers 429
// to what exceeds its limit, counted as the scenario's `upstream_window` says
// (SCENARIOS.md additions):
//   fixed_1s      at most floor(upstream_tps(s)) requests in each calendar
//                 second s (what the simulator always did);
//   sliding_1s    at most floor(upstream_tps(t)) in any trailing second;
//   token_bucket  a bucket refilled at upstream_tps(t) per second, holding
//                 `upstream_burst` requests (default a tenth of a second's
//                 worth, at least one); it starts full.
// With `upstream_hints` its answers carry rate-limit headers, which the
// simulator records through the daemon's own path (shm/hint-board.ts):
//   fixed_1s      limit, remaining in the second, reset_ms to its end;
//   sliding_1s    limit, remaining in the trailing second, reset_ms until
//                 its oldest request leaves it;
//   token_bucket  limit = the rate per second with window_ms 1000 (a bucket
//                 has no window of its own; the headers say which), remaining
//                 whole tokens, reset_ms until the bucket is full;
// and on a 429, retry_after_ms: when the next request would be taken.

import type { ReleaseHints } from '../shm/hint-board.ts';
import type { Scenario } from './scenario.ts';
import { upstreamAt } from './scenario.ts';

export interface SimUpstream {
  /** True when the upstream takes one more request at `ms`; false means 429. */
  accept(ms: number): boolean;
  /** How full it is (0 idle, 1 at its limit), for the latency callers report. */
  load(): number;
  /** The headers of its last answer, at `ms`, into `h`. */
  headers(ms: number, refused: boolean, h: ReleaseHints): void;
}

class FixedWindow implements SimUpstream {
  private second = -1;
  private admitted = 0;
  private limit = 0;
  constructor(private readonly limitAt: (s: number) => number) {}
  accept(ms: number): boolean {
    const s = Math.floor(ms / 1000);
    if (s !== this.second) { this.second = s; this.admitted = 0; this.limit = Math.floor(this.limitAt(s)); }
    this.admitted++;
    return this.admitted <= this.limit;
  }
  load(): number { return this.limit > 0 ? this.admitted / this.limit : 1; }
  headers(ms: number, refused: boolean, h: ReleaseHints): void {
    h.limit = this.limit;
    h.remaining = Math.max(0, this.limit - this.admitted);
    h.resetMs = 1000 - (ms % 1000);
    h.retryAfterMs = refused ? h.resetMs : NaN;
  }
}

class SlidingWindow implements SimUpstream {
  // Admissions as (ms, count) runs, oldest first, in a ring.
  private at = new Float64Array(256);
  private n = new Int32Array(256);
  private head = 0;
  private size = 0;
  private count = 0;
  private limit = 0;
  constructor(private readonly limitAt: (s: number) => number) {}
  private expire(ms: number): void {
    while (this.size > 0 && this.at[this.head] <= ms - 1000) {
      this.count -= this.n[this.head];
      this.head = (this.head + 1) % this.at.length;
      this.size--;
    }
  }
  private push(ms: number): void {
    const last = (this.head + this.size - 1) % this.at.length;
    if (this.size > 0 && this.at[last] === ms) { this.n[last]++; return; }
    if (this.size === this.at.length) this.grow();
    const i = (this.head + this.size) % this.at.length;
    this.at[i] = ms;
    this.n[i] = 1;
    this.size++;
  }
  private grow(): void {
    const at = new Float64Array(this.at.length * 2);
    const n = new Int32Array(this.at.length * 2);
    for (let k = 0; k < this.size; k++) { const i = (this.head + k) % this.at.length; at[k] = this.at[i]; n[k] = this.n[i]; }
    this.at = at; this.n = n; this.head = 0;
  }
  accept(ms: number): boolean {
    this.expire(ms);
    this.limit = Math.floor(this.limitAt(ms / 1000));
    if (this.count >= this.limit) return false;
    this.push(ms);
    this.count++;
    return true;
  }
  load(): number { return this.limit > 0 ? this.count / this.limit : 1; }
  headers(ms: number, refused: boolean, h: ReleaseHints): void {
    h.limit = this.limit;
    h.remaining = Math.max(0, this.limit - this.count);
    h.resetMs = this.size > 0 ? Math.max(0, this.at[this.head] + 1000 - ms) : 0;
    h.retryAfterMs = refused ? h.resetMs : NaN;
  }
}

class TokenBucket implements SimUpstream {
  private tokens = -1;
  private last = 0;
  private rate = 0;
  private burst = 1;
  constructor(private readonly limitAt: (s: number) => number, private readonly fixedBurst: number | null) {}
  private refill(ms: number): void {
    this.rate = this.limitAt(ms / 1000);
    this.burst = Math.max(1, this.fixedBurst ?? this.rate / 10);
    this.tokens = this.tokens < 0 ? this.burst : Math.min(this.burst, this.tokens + ((ms - this.last) * this.rate) / 1000);
    this.last = ms;
  }
  accept(ms: number): boolean {
    this.refill(ms);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
  load(): number { return 1 - this.tokens / this.burst; }
  headers(ms: number, refused: boolean, h: ReleaseHints): void {
    h.limit = Math.floor(this.rate);
    h.windowMs = 1000;
    h.remaining = Math.floor(Math.max(0, this.tokens));
    h.resetMs = this.rate > 0 ? Math.ceil(((this.burst - this.tokens) * 1000) / this.rate) : 0;
    h.retryAfterMs = refused && this.rate > 0 ? Math.ceil(((1 - this.tokens) * 1000) / this.rate) : NaN;
  }
}

/** The scenario's upstream, counting as its `upstream_window` says. */
export function createUpstream(s: Scenario): SimUpstream {
  const limitAt = (t: number) => upstreamAt(s, t);
  switch (s.upstream_window ?? 'fixed_1s') {
    case 'fixed_1s': return new FixedWindow(limitAt);
    case 'sliding_1s': return new SlidingWindow(limitAt);
    case 'token_bucket': return new TokenBucket(limitAt, s.upstream_burst ?? null);
  }
}
