// Waiting ACQUIREs on tenant keys (docs/tenants.md, "Waiting"): the retry of
// one waiter (the tenant's own bucket, then its tier and everything above),
// and this thread's count of waiters per tenant, which bounds a tenant's
// queue and keeps its waiters first come, first served.
//
// Threads: one TenantWaits per WaiterDrain, so per I/O thread, used only by
// that thread. The tenant's slot is shared (tenant-table.ts); a waiter keeps
// the INDEX word and generation its acquire saw, and every retry checks the
// slot still holds that tenant, so a waiter of a tenant that was forgotten
// (or whose slot was reused) never takes another tenant's tokens: it is
// answered instead (waiter-drain.ts).
//
// Why counts per thread and not in shared memory: the tenant record has no
// spare word (its layout is fixed, layout.ts), and what the count guards is
// this thread's queue: its memory, and the order of this thread's waiters.
// A tenant's waiters are at most limits.max_queue_per_key on each I/O thread.
//
// Allocation: one small record per tenant with waiters on this thread, made
// when its first waiter queues (a waiter is an object anyway), dropped with
// its last. An acquire of a tenant with no waiter here costs one Map size
// read (waitingOn is called only when the map is not empty).

import { GRANTED, type BucketTable } from '../shm/bucket-table.ts';
import type { TenantTable } from '../shm/tenant-table.ts';

/** retry(): the tenant's own bucket does not hold the tokens yet. */
export const TENANT_EMPTY = -1;
/** retry(): the slot no longer holds the waiter's tenant (forgotten while it waited). */
export const TENANT_GONE = -2;
/** retry(): an earlier waiter of the same tenant was refused in this pass; this one stays behind it. */
export const TENANT_SKIP = -3;

/** The tenant fields of a waiter (wait-queue.ts): its slot and what the slot held when it was found. */
export interface TenantRef {
  readonly tenant: number;
  readonly tenantWord: number;
  readonly tenantGen: number;
  readonly leaf: number;
  readonly milli: number;
  readonly priority: number;
}

interface Waits { count: number; refusedPass: number }

export class TenantWaits {
  private readonly bySlot = new Map<number, Waits>();

  constructor(readonly tenants: TenantTable, private readonly table: BucketTable) {}

  /** True when some tenant has a waiter on this thread (the only check an acquire pays otherwise). */
  get any(): boolean { return this.bySlot.size > 0; }

  /** Waiters of the tenant in `slot` on this thread. */
  waitingOn(slot: number): number {
    return this.bySlot.get(slot)?.count ?? 0;
  }

  added(slot: number): void {
    const w = this.bySlot.get(slot);
    if (w === undefined) this.bySlot.set(slot, { count: 1, refusedPass: 0 });
    else w.count++;
  }

  finished(slot: number): void {
    const w = this.bySlot.get(slot);
    if (w === undefined) return;
    if (--w.count <= 0) this.bySlot.delete(slot);
  }

  /**
   * One retry of a tenant's waiter in drain pass `pass`: GRANTED (its own
   * tokens and the levels above taken; the lease is the caller's to make),
   * TENANT_EMPTY, TENANT_GONE, TENANT_SKIP, or the failure of the levels
   * above (a BucketTable.acquire() result). `tierRefused`: the tier (or a
   * level above) refused an earlier waiter in this pass, so this one stays
   * behind it. Marks the tenant used, so a tenant with waiters is not idle.
   */
  retry(wt: TenantRef, pass: number, now: number, tierRefused: boolean): number {
    const tt = this.tenants;
    const slot = wt.tenant;
    if (!tt.stillIs(slot, wt.tenantWord, wt.tenantGen)) return TENANT_GONE;
    const w = this.bySlot.get(slot);
    if (tierRefused || (w !== undefined && w.refusedPass === pass)) { tt.touch(slot, now); return TENANT_SKIP; }
    if (!tt.take(slot, wt.milli, now)) {
      if (w !== undefined) w.refusedPass = pass;
      return TENANT_EMPTY;
    }
    const t = this.table;
    const r = t.acquire(wt.leaf, wt.milli, wt.priority, true, now);
    if (r !== GRANTED) {
      tt.giveBack(slot, wt.milli);
      if (w !== undefined) w.refusedPass = pass;
      return r;
    }
    if (!tt.stillIs(slot, wt.tenantWord, wt.tenantGen)) { // retired between the check and the take
      t.undoAcquire(wt.leaf, wt.milli, t.lastSlotMask);
      tt.giveBack(slot, wt.milli);
      return TENANT_GONE;
    }
    return GRANTED;
  }
}
