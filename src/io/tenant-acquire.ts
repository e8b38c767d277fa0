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
// A tenant's acquire does not wait: when its own bucket is empty, or the
// levels above deny, it is answered at once (denied with retry_after_ms),
// whatever wait_ms asks. A dry run (`enforce: false` on the tier, or on the
// level that refused) grants instead and counts would_deny. The tenant's tokens
// asked for, granted, denied, would_deny and refused by its own bucket go to
// this thread's per-tenant counters (shm/tenant-counters.ts: plain stores in
// its own block), read by telemetry and the abuse detector.

import { ErrorCode } from '../protocol/errors.ts';
import { MAX_TOKENS, MILLI, C_ACQUIRES_INDEX, C_DENIED_INDEX, C_REQUESTED_INDEX } from '../shm/layout.ts';
import { GRANTED, failBucket, type BucketTable } from '../shm/bucket-table.ts';
import type { Conn } from './conn.ts';
import { writeDenied, writeGranted } from './replies.ts';
import type { RequestKey } from './request-reader.ts';
import { NOT_TENANT, TENANTS_FULL, type TenantKeys } from './tenant-keys.ts';
import type { MsgWriter } from '../protocol/codec.ts';
import { TC_DENIED, TC_GRANTED, TC_OWN_DENIED, TC_REQUESTED, TC_WOULD_DENY } from '../shm/tenant-counters.ts';

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
}

/** One ACQUIRE on a key no config names (the caller checked tokens, wait_ms, length and auth). */
export function acquireTenant(host: TenantHost, tk: TenantKeys, t: BucketTable, conn: Conn, id: number,
  key: RequestKey, tokens: number, now: number, perf: number): number {
  const slot = tk.resolve(key, now);
  if (slot === NOT_TENANT) return host.fail(1, id, ErrorCode.UNKNOWN_KEY, `no bucket with key "${key.text()}"`);
  if (slot < 0) {
    return host.fail(1, id, ErrorCode.OVERLOADED, slot === TENANTS_FULL
      ? `no room for a new tenant "${key.text()}" (tenants.max of its service reached); retry later`
      : `tenant "${key.text()}" is being made by another thread; retry`);
  }
  const tt = tk.table;
  const tier = tt.tierOf(slot);
  const milli = tokens * MILLI;
  if (tokens > MAX_TOKENS || milli > tt.burstMilli(slot) || t.exceedsBurst(tier, milli)) {
    return host.fail(1, id, ErrorCode.TOKENS_EXCEED_BURST, `${tokens} tokens is more than a bucket on the way to "${key.text()}" can ever hold`);
  }
  t.countPair(tier, C_ACQUIRES_INDEX, 1, C_REQUESTED_INDEX, tokens);
  const tc = tk.counters;
  tc?.count(slot, TC_REQUESTED, tokens);
  const dry = host.dryRun;
  if (!tt.take(slot, milli, now)) {
    // The abuse detector weighs refusals of the tenant's own bucket only: a polite tenant refused by a busy tier is no attacker.
    tc?.count(slot, TC_OWN_DENIED, tokens);
    if (dry !== null && dry[tier] === 1) return dryGrantTenant(host, tk, slot, conn, id, tier, tokens, 0, perf);
    t.count(tier, C_DENIED_INDEX, tokens);
    tc?.count(slot, TC_DENIED, tokens);
    writeDenied(host.out, id, tt.retryAfterMs(slot, milli));
    return 0;
  }
  const r = t.acquire(tier, milli, t.priority(tier), false, now);
  if (r !== GRANTED) {
    tt.giveBack(slot, milli);
    if (dry !== null && dry[failBucket(r)] === 1) return dryGrantTenant(host, tk, slot, conn, id, tier, tokens, tt.remaining(slot), perf);
    t.count(tier, C_DENIED_INDEX, tokens);
    tc?.count(slot, TC_DENIED, tokens);
    writeDenied(host.out, id, t.retryAfterMs(r, milli, now));
    return 0;
  }
  if (!tt.stillIs(slot, tk.word, tk.gen)) {
    // Retired (idle) between the lookup and the take: undo, and answer as a new tenant would be.
    t.undoAcquire(tier, milli, t.lastSlotMask);
    tt.giveBack(slot, milli);
    return acquireTenant(host, tk, t, conn, id, key, tokens, now, perf);
  }
  const lease = host.grant(conn, tier, tokens, milli, perf);
  if (lease === 0) {
    tt.giveBack(slot, milli);
    return host.fail(1, id, ErrorCode.OVERLOADED, 'too many leases held on this thread');
  }
  tc?.count(slot, TC_GRANTED, tokens);
  writeGranted(host.out, id, lease, tt.remaining(slot));
  return 0;
}

/** A dry run's grant (host.dryGrant), counted for the tenant as granted and would_deny. */
function dryGrantTenant(host: TenantHost, tk: TenantKeys, slot: number, conn: Conn, id: number, tier: number, tokens: number,
  remaining: number, perf: number): number {
  const tc = tk.counters;
  if (tc !== null) {
    tc.count(slot, TC_GRANTED, tokens);
    tc.count(slot, TC_WOULD_DENY, tokens);
  }
  return host.dryGrant(conn, id, tier, tokens, remaining, perf);
}
