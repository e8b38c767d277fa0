// Waiting ACQUIREs of one I/O thread: queue a request that asked to wait,
// retry the waiters in passes, deny those past their deadline, and end them
// when their connection closes or the daemon stops.
//
// Threads: one WaiterDrain per RequestHandler, so per I/O thread, used only by
// that thread; its queue and pass bookkeeping are its own. What other threads
// see of a waiter is its registration in the shared table (WAITERS[priority]
// of the bucket that blocks it, and the key's QUEUE gauge: atomic adds in
// bucket-table.ts), which is how the cross-thread priority rule holds; every
// waiter is unregistered exactly once, in finish().
//
// Replies come later than the request's message, so they go to the
// connection's deferred writer (host.deferred), which the worker flushes;
// their frames are written by replies.ts.
//
// A tenant key's waiter (leaf: its tier) is retried by tenant-wait.ts: its
// own bucket first, then the tier and above. Blocked at its own bucket it
// registers nowhere in shared memory (that bucket is the tenant's alone);
// blocked above, it registers like any waiter. A waiter whose tenant was
// forgotten meanwhile is answered DENIED with retry_after_ms 1.

// The global `performance` is a lazy getter in worker threads (a call per use); the import is a plain binding.
import { performance } from 'node:perf_hooks';
import { ErrorCode } from '../protocol/errors.ts';
import type { MsgWriter } from '../protocol/codec.ts';
import { MAX_WAIT_MS, OP_ACQUIRE } from '../protocol/opcodes.ts';
import { GRANTED, failBucket, type BucketTable } from '../shm/bucket-table.ts';
import { C_DENIED_INDEX, C_WAIT_SUM_MS_INDEX } from '../shm/layout.ts';
import type { TenantTable } from '../shm/tenant-table.ts';
import { TC_GRANTED, type TenantCounters } from '../shm/tenant-counters.ts';
import type { Conn } from './conn.ts';
import { writeDenied, writeError, writeGranted } from './replies.ts';
import { TENANT_EMPTY, TENANT_GONE, TenantWaits } from './tenant-wait.ts';
import type { WaitQueue, Waiter } from './wait-queue.ts';

/** Longest wait a request may ask for (30 minutes); longer waits are cut to this. One value with the SDK's, in protocol/opcodes.ts. */
export { MAX_WAIT_MS };

/** What the drain needs of its RequestHandler. */
export interface WaiterHost {
  /** Records a grant and makes its lease, owned by `conn`; 0 (and the grant undone) when no lease can be made. */
  grant(conn: Conn, leaf: number, tokens: number, milli: number, perf: number): number;
  /** The connection's deferred replies (the connection is then flushed). */
  deferred(conn: Conn): MsgWriter;
}

export class WaiterDrain {
  private readonly failedPass: Int32Array;
  private pass = 0;
  /** This thread's waiters per tenant, and their retries (null: no service has tenants). */
  readonly tenantWaits: TenantWaits | null;

  constructor(
    private readonly waiters: WaitQueue<Conn>,
    private readonly table: BucketTable,
    keyCount: number,
    private readonly host: WaiterHost,
    tenants: TenantTable | null = null,
    /** This thread's per-tenant counters: a tenant waiter's outcome is counted for its tenant when it is answered. */
    private readonly tenantCounters: TenantCounters | null = null,
  ) {
    this.failedPass = new Int32Array(keyCount);
    this.tenantWaits = tenants === null ? null : new TenantWaits(tenants, table);
  }

  /**
   * Queues an ACQUIRE that failed with `failure` (an acquire() result, or
   * TENANT_EMPTY: a tenant's own bucket) and may wait `waitMs`, measured
   * from `perf` (performance.now()). A tenant key's waiter gives its slot
   * and what the slot held (`tenant`, `word`, `gen`), with its tier as leaf.
   */
  add(conn: Conn, id: number, leaf: number, tokens: number, milli: number, priority: number, failure: number, perf: number, waitMs: number,
    tenant = -1, word = 0, gen = 0): void {
    const t = this.table;
    const blockedAt = failure > 0 ? failBucket(failure) : -1;
    if (blockedAt >= 0) t.markWaiter(blockedAt, priority, 1);
    t.addQueue(leaf, 1);
    if (tenant >= 0) this.tenantWaits!.added(tenant);
    conn.outstanding++;
    this.waiters.push({
      conn, id, leaf, tokens, milli, priority, deadline: perf + Math.min(waitMs, MAX_WAIT_MS),
      enqueuedAt: perf, tenant, tenantWord: word, tenantGen: gen, blockedAt, done: false,
    });
  }

  private finish(wt: Waiter<Conn>): void {
    wt.done = true;
    if (wt.blockedAt >= 0) this.table.markWaiter(wt.blockedAt, wt.priority, -1);
    wt.blockedAt = -1;
    this.table.addQueue(wt.leaf, -1);
    if (wt.tenant >= 0) this.tenantWaits!.finished(wt.tenant);
    wt.conn.outstanding--;
  }

  /** Moves the waiter's registration to bucket `at` (-1: none, blocked at its tenant's own bucket). */
  private blockAt(wt: Waiter<Conn>, at: number): void {
    if (at === wt.blockedAt) return;
    if (at >= 0) this.table.markWaiter(at, wt.priority, 1);
    if (wt.blockedAt >= 0) this.table.markWaiter(wt.blockedAt, wt.priority, -1);
    wt.blockedAt = at;
  }

  private deny(wt: Waiter<Conn>, retryAfterMs: number): void {
    this.finish(wt);
    this.table.count(wt.leaf, C_DENIED_INDEX, wt.tokens);
    writeDenied(this.host.deferred(wt.conn), wt.id, retryAfterMs);
  }

  /** The waiter's tokens are taken: its lease and reply (an error when no lease can be made; the grant is then undone). */
  private answerGrant(wt: Waiter<Conn>, perf: number): void {
    const t = this.table;
    this.finish(wt);
    const lease = this.host.grant(wt.conn, wt.leaf, wt.tokens, wt.milli, perf);
    const out = this.host.deferred(wt.conn);
    const tt = wt.tenant >= 0 ? this.tenantWaits!.tenants : null;
    if (lease === 0) {
      tt?.giveBack(wt.tenant, wt.milli);
      writeError(out, OP_ACQUIRE, wt.id, ErrorCode.OVERLOADED, 'too many leases held on this thread');
      return;
    }
    t.count(wt.leaf, C_WAIT_SUM_MS_INDEX, perf - wt.enqueuedAt);
    if (tt !== null) this.tenantCounters?.count(wt.tenant, TC_GRANTED, wt.tokens);
    writeGranted(out, wt.id, lease, tt === null ? t.remaining(wt.leaf) : tt.remaining(wt.tenant));
  }

  /** One retry of a tenant key's waiter (tenant-wait.ts), in the pass's order. */
  private retryTenant(wt: Waiter<Conn>, pass: number, perf: number, nowMs: number): void {
    const tw = this.tenantWaits!;
    const r = tw.retry(wt, pass, nowMs, this.failedPass[wt.leaf] === pass);
    if (r === GRANTED) { this.answerGrant(wt, perf); return; }
    if (r === TENANT_GONE) { this.deny(wt, 1); return; }
    if (r > 0) {
      this.failedPass[wt.leaf] = pass;
      this.blockAt(wt, failBucket(r));
    } else if (r === TENANT_EMPTY) {
      this.blockAt(wt, -1);
    }
    if (perf < wt.deadline) return;
    // Still its tenant's slot (TENANT_GONE was answered above): the denial counts for it.
    this.tenantCounters?.refused(wt.tenant, wt.tokens, r === TENANT_EMPTY, false);
    this.deny(wt, r > 0 ? this.table.retryAfterMs(r, wt.milli, nowMs) : r === TENANT_EMPTY ? tw.tenants.retryAfterMs(wt.tenant, wt.milli) : 1);
  }

  /**
   * One pass over the waiters: grant what the buckets allow, in priority then
   * arrival order (a key that failed is not retried later in the same pass, so
   * a key's waiters stay first-come first-served), and deny those past their
   * deadline. Returns the number of waiters left.
   */
  drain(): number {
    if (this.waiters.size === 0) return 0;
    const t = this.table;
    const perf = performance.now();
    const nowMs = t.msAt(perf);
    const pass = ++this.pass;
    for (const q of this.waiters.queues) {
      for (const wt of q) {
        if (wt.done) continue;
        if (wt.conn.closed) { this.finish(wt); continue; }
        if (wt.tenant >= 0) { this.retryTenant(wt, pass, perf, nowMs); continue; }
        if (this.failedPass[wt.leaf] !== pass) {
          const r = t.acquire(wt.leaf, wt.milli, wt.priority, true, nowMs);
          if (r === GRANTED) { this.answerGrant(wt, perf); continue; }
          this.failedPass[wt.leaf] = pass;
          this.blockAt(wt, failBucket(r));
          if (perf >= wt.deadline) this.deny(wt, t.retryAfterMs(r, wt.milli, nowMs));
        } else if (perf >= wt.deadline) {
          this.deny(wt, 1);
        }
      }
    }
    this.waiters.sweep();
    return this.waiters.size;
  }

  /** Ends every waiter of a closed connection at once (no reply: it is gone). */
  dropConnection(conn: Conn): void {
    if (conn.outstanding === 0) return;
    for (const q of this.waiters.queues) for (const wt of q) if (!wt.done && wt.conn === conn) this.finish(wt);
    this.waiters.sweep();
  }

  /** Answers every waiter SHUTTING_DOWN (the daemon is stopping). */
  shutdown(): void {
    for (const q of this.waiters.queues) {
      for (const wt of q) {
        if (wt.done) continue;
        this.finish(wt);
        if (!wt.conn.closed) writeError(this.host.deferred(wt.conn), OP_ACQUIRE, wt.id, ErrorCode.SHUTTING_DOWN, 'the server is shutting down');
      }
    }
    this.waiters.sweep();
  }
}
