// ACQUIRE on a tenant key (`pool/service/TENANT`, docs/tenants.md), on an I/O
// thread: the tenant's own bucket (its tier's rate and burst), then its
// tier's bucket and everything above it (service, pool) through the bucket
// table, all or nothing. The lease is on the tier's bucket, so RELEASE,
// counters and telemetry count for the tier, the service and the pool.
//
// Threads: called by the RequestHandler of one I/O thread, with that
// thread's TenantKeys and BucketTable; the tenant's bucket is shared with
// every thread (tenant-table.ts says how it stays consistent).
//
// Waiting: an acquire refused by its own bucket, or by a level above, with
// wait_ms > 0 queues in this thread's WaiterDrain like a configured key's
// (waiter-drain.ts, tenant-wait.ts), leaf = its tier, and is granted when
// its tokens come back within wait_ms. A tenant's waiters are served in
// arrival order: while it has waiters on this thread a new acquire of it
// queues behind them (or is denied, with wait_ms 0) without taking. Its
// queue holds at most limits.max_queue_per_key waiters on this thread
// (OVERLOADED past it), so one tenant cannot fill its tier's queue for the
// others. A dry run (`enforce: false` on the tier, or on the level that
// refused) grants instead and counts would_deny. The tenant's tokens asked
// for, granted, denied, would_deny and refused by its own bucket go to this
// thread's per-tenant counters (shm/tenant-counters.ts: plain stores in its
// own block), read by telemetry and the abuse detector; a waiter's outcome is
// counted when it is answered (waiter-drain.ts). The tokens asked for are
// counted once, with the outcome (a grant's two counts in one call), for the
// slot that answered: an acquire that finds its tenant retired under it and
// looks again counts only for the tenant it then reaches. An acquire with
// wait_ms 0 tells the table it will not wait (BucketTable.acquire's noWait),
// so the no-wait rule of pool-loans.ts (the trunk, the booking a second
// ahead) holds for tenants as for configured keys.
//
// Per request: no allocation and no string for a tenant that exists (the
// strings below are only made for an error reply).

import { ErrorCode } from '../protocol/errors.ts';
import { MAX_TOKENS, MILLI, C_ACQUIRES_INDEX, C_DENIED_INDEX, C_REQUESTED_INDEX } from '../shm/layout.ts';
import { GRANTED, failBucket, type BucketTable } from '../shm/bucket-table.ts';
import type { Conn } from './conn.ts';
import { writeDenied, writeGranted } from './replies.ts';
import type { RequestKey } from './request-reader.ts';
import { NOT_TENANT, TENANTS_FULL, type TenantKeys } from './tenant-keys.ts';
import { TENANT_EMPTY, type TenantWaits } from './tenant-wait.ts';
import type { MsgWriter } from '../protocol/codec.ts';
import { TC_REQUESTED } from '../shm/tenant-counters.ts';

// Module-local copies of imported constants: V8 folds a local const into the
// code it compiles, but reads an imported binding from its cell (under tsx,
// through a getter) on every use.
const TOKENS_LIMIT = MAX_TOKENS;
const MILLI_PER_TOKEN = MILLI;
const ACQUIRES = C_ACQUIRES_INDEX;
const DENIED = C_DENIED_INDEX;
const REQUESTED = C_REQUESTED_INDEX;
const OK = GRANTED;
const OWN_EMPTY = TENANT_EMPTY;
const NO_TENANT = NOT_TENANT;

/** What tenant acquires need of their RequestHandler. */
export interface TenantHost {
  readonly out: MsgWriter;
  /** Records a grant and makes its lease; 0 (grant undone) when no lease can be made. */
  grant(conn: Conn, leaf: number, tokens: number, milli: number, perf: number): number;
  /** Grants what a dry-run level refused (no tokens taken), counting would_deny. */
  dryGrant(conn: Conn, id: number, leaf: number, tokens: number, remaining: number, perf: number): number;
  /** 1 per bucket with enforce: false, or null when every bucket enforces. */
  readonly dryRun: Uint8Array | null;
  fail(op: number, id: number, code: number, message: string): number;
  /** This thread's tenant waiters (null: none can wait). */
  readonly tenantWaits: TenantWaits | null;
  /** The bounds on waiting: limits.max_outstanding_per_connection and max_queue_per_key. */
  readonly waitLimits: { readonly max_outstanding_per_connection: number; readonly max_queue_per_key: number };
  /** Queues a refused tenant acquire (WaiterDrain.add with the tenant's slot); the bounds are checked. */
  queueTenant(conn: Conn, id: number, tier: number, tokens: number, milli: number, priority: number, failure: number,
    perf: number, waitMs: number, slot: number, word: number, gen: number): void;
}

/** One ACQUIRE on a key no config names (the caller checked tokens, wait_ms, length and auth). */
export function acquireTenant(host: TenantHost, tk: TenantKeys, t: BucketTable, conn: Conn, id: number,
  key: RequestKey, tokens: number, waitMs: number, now: number, perf: number): number {
  const slot = tk.resolve(key, now);
  if (slot === NO_TENANT) return host.fail(1, id, ErrorCode.UNKNOWN_KEY, `no bucket with key "${key.text()}"`);
  if (slot < 0) {
    return host.fail(1, id, ErrorCode.OVERLOADED, slot === TENANTS_FULL
      ? `no room for a new tenant "${key.text()}" (tenants.max of its service reached); retry later`
      : `tenant "${key.text()}" is being made by another thread; retry`);
  }
  const tt = tk.table;
  const tier = tt.tierOf(slot);
  const milli = tokens * MILLI_PER_TOKEN;
  if (tokens > TOKENS_LIMIT || milli > tt.burstMilli(slot) || t.exceedsBurst(tier, milli)) {
    return host.fail(1, id, ErrorCode.TOKENS_EXCEED_BURST, `${tokens} tokens is more than a bucket on the way to "${key.text()}" can ever hold`);
  }
  t.countPair(tier, ACQUIRES, 1, REQUESTED, tokens);
  const waits = host.tenantWaits;
  let r = OWN_EMPTY;
  // Behind this thread's waiters of the tenant, if any: they are first.
  if ((waits === null || !waits.any || waits.waitingOn(slot) === 0) && tt.take(slot, milli, now)) {
    r = t.acquire(tier, milli, t.priority(tier), false, now, waitMs === 0);
    if (r === OK) {
      if (!tt.stillIs(slot, tk.word, tk.gen)) {
        // Retired (idle) between the lookup and the take: undo, and answer as a new tenant would be.
        t.undoAcquire(tier, milli, t.lastSlotMask);
        tt.giveBack(slot, milli);
        return acquireTenant(host, tk, t, conn, id, key, tokens, waitMs, now, perf);
      }
      const lease = host.grant(conn, tier, tokens, milli, perf);
      if (lease === 0) {
        tt.giveBack(slot, milli);
        tk.counters?.count(slot, TC_REQUESTED, tokens);
        return host.fail(1, id, ErrorCode.OVERLOADED, 'too many leases held on this thread');
      }
      tk.counters?.granted(slot, tokens);
      writeGranted(host.out, id, lease, tt.remaining(slot));
      return 0;
    }
    tt.giveBack(slot, milli);
  }
  return refused(host, tk, t, conn, id, key, tokens, waitMs, now, perf, slot, r);
}

/** A tenant acquire its own bucket (r OWN_EMPTY) or a level above (r: the failure) refused: dry run, denial, or a wait. */
function refused(host: TenantHost, tk: TenantKeys, t: BucketTable, conn: Conn, id: number, key: RequestKey,
  tokens: number, waitMs: number, now: number, perf: number, slot: number, r: number): number {
  const tt = tk.table;
  const tier = tt.tierOf(slot);
  const milli = tokens * MILLI_PER_TOKEN;
  tk.counters?.count(slot, TC_REQUESTED, tokens);
  const dry = host.dryRun;
  if (dry !== null && dry[r === OWN_EMPTY ? tier : failBucket(r)] === 1) {
    tk.counters?.refused(slot, tokens, r === OWN_EMPTY, true);
    return host.dryGrant(conn, id, tier, tokens, r === OWN_EMPTY ? 0 : tt.remaining(slot), perf);
  }
  const waits = host.tenantWaits;
  let full: string | null = null;
  if (waitMs > 0 && waits !== null) {
    const limits = host.waitLimits;
    if (conn.outstanding >= limits.max_outstanding_per_connection) full = 'too many requests waiting on this connection';
    else if (waits.waitingOn(slot) >= limits.max_queue_per_key) full = `the wait queue of "${key.text()}" is full`;
    else {
      host.queueTenant(conn, id, tier, tokens, milli, t.priority(tier), r, perf, waitMs, slot, tk.word, tk.gen);
      return 0;
    }
  }
  t.count(tier, DENIED, tokens);
  tk.counters?.refused(slot, tokens, r === OWN_EMPTY, false);
  if (full !== null) return host.fail(1, id, ErrorCode.OVERLOADED, full);
  writeDenied(host.out, id, r === OWN_EMPTY ? tt.retryAfterMs(slot, milli) : t.retryAfterMs(r, milli, now));
  return 0;
}
