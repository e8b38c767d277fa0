// What one node may grant per shared pool at a given moment, from its lease
// (docs/cluster.md, "Faults"). Pure state on the node's monotonic clock
// (performance.now() ms; a manual clock in tests); cluster-node.ts feeds it
// the store's answers and failures and asks it once per pool per tick.
//
//   coordinated / learning  the lease is valid for the whole coming tick:
//                           the store's grant (learning: the store lost its
//                           state and grants no more than a node holds)
//   learning (joining)      started less than a lease ago, no answer yet: 0
//   safe                    the lease ran out: min(held, safe share) until
//                           every lease a peer got before the store went
//                           away has surely ended (one lease after a call
//                           was first seen failing), then the safe share
//                           ('even': capacity / nodes last seen, 0 if none
//                           was ever seen; or a fraction of capacity)
//
// A lease runs from when its request was SENT, so it ends no later than
// the record the store keeps for it (which runs from when the script ran).
//
// Threads: main thread only.

import type { ClusterMode } from '../../io/messages.ts';

export interface LeaseOptions {
  readonly leaseMs: number;
  readonly tickMs: number;
  readonly safeShare: 'even' | number;
}

/** One shared pool's part of the state. */
export interface PoolLease {
  /** The store's last grant, tokens/s. */
  grantTps: number;
  /** Nodes sharing the pool in the last answer (0: never answered). */
  nodesSeen: number;
  /** The share this node enforced at its last tick. */
  heldTps: number;
}

export function newPoolLease(): PoolLease {
  return { grantTps: 0, nodesSeen: 0, heldTps: 0 };
}

export class LeaseState {
  private leaseUntilMs = -Infinity;
  private everRenewed = false;
  /** When the store was first seen failing since the last answer; null while it answers. */
  private failingSinceMs: number | null = null;
  private storeMode: 'coordinated' | 'learning' = 'learning';

  constructor(private readonly o: LeaseOptions, private readonly startedAtMs: number) {}

  /** A successful answer to a request sent at `sentAtMs`. */
  renewed(sentAtMs: number, storeMode: 'coordinated' | 'learning'): void {
    this.leaseUntilMs = Math.max(this.leaseUntilMs, sentAtMs + this.o.leaseMs);
    this.everRenewed = true;
    this.failingSinceMs = null;
    this.storeMode = storeMode;
  }

  /** A call failed (error or timeout), seen at `nowMs`. */
  failed(nowMs: number): void {
    this.failingSinceMs ??= nowMs;
  }

  /** The lease covers the whole tick that starts at nowMs. */
  valid(nowMs: number): boolean {
    return nowMs + this.o.tickMs <= this.leaseUntilMs;
  }

  mode(nowMs: number): ClusterMode {
    if (this.valid(nowMs)) return this.storeMode;
    if (this.joining(nowMs)) return 'learning';
    return 'safe';
  }

  /** What this node may grant for the pool during the tick that starts at nowMs; also records it as held. */
  shareTps(pool: PoolLease, capacityTps: number, nowMs: number): number {
    let share: number;
    if (this.valid(nowMs)) share = pool.grantTps;
    else if (this.joining(nowMs)) share = 0;
    else {
      const safe = this.safeTps(pool, capacityTps);
      share = nowMs < this.peersEndMs(nowMs) ? Math.min(pool.heldTps, safe) : safe;
    }
    share = Math.max(0, Math.min(share, capacityTps));
    pool.heldTps = share;
    return share;
  }

  /** The safe share of a pool: what the node runs on once no peer can hold an older lease. */
  safeTps(pool: PoolLease, capacityTps: number): number {
    if (this.o.safeShare === 'even') return pool.nodesSeen > 0 ? capacityTps / pool.nodesSeen : 0;
    return this.o.safeShare * capacityTps;
  }

  private joining(nowMs: number): boolean {
    return !this.everRenewed && nowMs < this.startedAtMs + this.o.leaseMs;
  }

  /**
   * When every lease a peer may have got before the store went away has
   * ended: a lease after the store was first seen failing. While a call is
   * still pending and none has failed, the store may be granting peers right
   * now, so the end keeps moving (a pending call fails by its timeout).
   */
  private peersEndMs(nowMs: number): number {
    return (this.failingSinceMs ?? nowMs) + this.o.leaseMs;
  }
}
