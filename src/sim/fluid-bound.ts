// The fluid bound (docs/allocator.md "Fluid bound"): the reward of a
// clairvoyant fluid allocation of a scenario's traffic, so every table can
// say how far a policy is from what was possible. Single thread; the
// simulator feeds it each tick's actual arrivals, so it sees the very same
// traffic (noise included) as the policy it is compared with.
//
// Each tick it knows the tick's arrivals and the upstream's true limit, and
// divides upstream_tps(t) x tick_s among the requests waiting, as a fluid
// (no token granularity, no pacing, no tick of delay, no 429):
//   1. each service's guarantee, min(arrivals, min_tps x tick_s), CRITICAL
//      first when even those do not fit (missing it costs more than any
//      request earns);
//   2. then class by class, CRITICAL to LOW, first what keeps each service's
//      queue from growing (arrivals less give-ups), then its backlog; within
//      a class in proportion to what is asked; never above max_tps;
//   oldest requests first. A request waits at most patience_s, rounded up to
//   whole ticks (a little longer than a caller does: generous, as a bound
//   should be). The tick's reward is the reward function's (reward.ts), so
//   the bound and a policy's reward are in the same units.
// Greedy is right here: capacity left in a tick is lost, every weight is
// constant over time, and a class's weight beats every lower class's weight
// plus its queue penalty. It is not a strict upper bound (a policy could use
// a token-bucket upstream's burst, which the fluid does not; the one token
// of slack in the guarantee is not used either), but no policy that admits
// only what the upstream's rate allows can do much better.

import { tickReward } from './reward.ts';

export interface FluidService {
  readonly priority: number;
  readonly minTps: number;
  readonly maxTps: number;
  readonly patienceS: number;
}

export class FluidBound {
  /** Sum of the ticks' rewards so far. */
  total = 0;
  /** queues[i][a]: service i's requests that arrived a ticks ago. */
  private readonly queues: Float64Array[];
  private readonly order: number[];
  private readonly served: Float64Array;
  private readonly growth: Float64Array;
  private readonly shortfall: Float64Array;
  private readonly priority: Int32Array;
  private readonly expired: Float64Array;

  constructor(private readonly services: readonly FluidService[], private readonly capacityTps: number, private readonly tickS: number) {
    const n = services.length;
    this.queues = services.map((s) => new Float64Array(Math.ceil(s.patienceS / tickS - 1e-9) + 1));
    this.order = services.map((_, i) => i).sort((a, b) => services[a].priority - services[b].priority || a - b);
    this.served = new Float64Array(n);
    this.growth = new Float64Array(n);
    this.shortfall = new Float64Array(n);
    this.expired = new Float64Array(n);
    this.priority = Int32Array.from(services, (s) => s.priority);
  }

  /** One tick: `arrived[i]` requests of service i, the upstream's limit over the tick. Returns the tick's reward. */
  tick(arrived: ArrayLike<number>, upstreamTps: number): number {
    const n = this.services.length;
    for (let i = 0; i < n; i++) {
      const q = this.queues[i];
      this.expired[i] = q[q.length - 1];
      q.copyWithin(1, 0, q.length - 1);
      q[0] = arrived[i];
      this.served[i] = 0;
    }
    let left = upstreamTps * this.tickS;
    // 1. Guarantees, by priority.
    for (const i of this.order) {
      const s = this.services[i];
      left -= this.take(i, Math.min(left, arrived[i], s.minTps * this.tickS));
    }
    // 2. Class by class: what keeps queues from growing, then backlogs.
    for (let p = 0, k = 0; k < n; p++) {
      const members: number[] = [];
      while (k < n && this.services[this.order[k]].priority === p) members.push(this.order[k++]);
      if (members.length === 0) continue;
      left = this.share(members, left, (i) => arrived[i] - this.expired[i] - this.served[i]);
      left = this.share(members, left, () => Infinity);
    }
    for (let i = 0; i < n; i++) {
      this.growth[i] = arrived[i] - this.expired[i] - this.served[i];
      this.shortfall[i] = Math.max(0, Math.min(arrived[i], this.services[i].minTps * this.tickS) - this.served[i] - 1);
    }
    const r = tickReward({ served: this.served, throttled: new Float64Array(n), queueGrowth: this.growth, shortfall: this.shortfall,
      priority: this.priority }, this.capacityTps, this.tickS);
    this.total += r;
    return r;
  }

  /** Gives `members` up to want(i) each (within max_tps and what waits), in proportion when `left` is short; returns what is left. */
  private share(members: readonly number[], left: number, want: (i: number) => number): number {
    const asks = members.map((i) => Math.max(0, Math.min(want(i), this.room(i), this.waiting(i))));
    const total = asks.reduce((a, b) => a + b, 0);
    if (total <= 0 || left <= 0) return left;
    const scale = Math.min(1, left / total);
    members.forEach((i, j) => { left -= this.take(i, asks[j] * scale); });
    return Math.max(0, left);
  }

  private room(i: number): number { return Math.max(0, this.services[i].maxTps * this.tickS - this.served[i]); }

  private waiting(i: number): number {
    let w = 0;
    for (const x of this.queues[i]) w += x;
    return w;
  }

  /** Serves up to `amount` of service i, oldest first; returns what was served. */
  private take(i: number, amount: number): number {
    const q = this.queues[i];
    let want = Math.max(0, Math.min(amount, this.room(i)));
    let got = 0;
    for (let a = q.length - 1; a >= 0 && want > 1e-12; a--) {
      const x = Math.min(q[a], want);
      q[a] -= x;
      want -= x;
      got += x;
    }
    this.served[i] += got;
    return got;
  }
}
