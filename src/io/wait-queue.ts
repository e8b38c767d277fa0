// Waiting acquires of one I/O thread, by priority class then arrival.
// Owned by that thread alone. Waiters registered in the shared WAITERS
// counters (see bucket-table.ts) are how other threads learn about them.

export interface Waiter<C> {
  readonly conn: C;
  readonly id: number;
  readonly leaf: number;
  readonly tokens: number;
  readonly milli: number;
  readonly priority: number;
  /** performance.now() deadline. */
  readonly deadline: number;
  readonly enqueuedAt: number;
  /** A tenant key's waiter: the tenant's slot (leaf is then its tier), or -1 (tenant-wait.ts). */
  readonly tenant: number;
  /** The tenant slot's INDEX word and generation when its acquire found it (TenantTable.stillIs). */
  readonly tenantWord: number;
  readonly tenantGen: number;
  /** Bucket whose WAITERS[priority] this waiter is counted in, or -1. */
  blockedAt: number;
  done: boolean;
}

export class WaitQueue<C> {
  /** queues[p]: waiters of priority class p in arrival order (done ones are swept out). */
  readonly queues: Waiter<C>[][];
  size = 0;

  constructor(classes: number) {
    this.queues = Array.from({ length: classes + 1 }, () => []);
  }

  push(w: Waiter<C>): void {
    this.queues[w.priority].push(w);
    this.size++;
  }

  /** Removes the waiters marked done; call after a pass. */
  sweep(): void {
    let size = 0;
    for (const q of this.queues) {
      let j = 0;
      for (let i = 0; i < q.length; i++) if (!q[i].done) q[j++] = q[i];
      q.length = j;
      size += j;
    }
    this.size = size;
  }
}
