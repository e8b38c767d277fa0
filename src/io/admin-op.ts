// Admin ops (16 LIMITS, 17 TENANTS, 18 APPROVALS) on an I/O thread: checks the request's shape, then forwards it
// to the main thread (which validates the values, persists, applies and
// answers) and remembers whom to answer.
//
// Threads: one AdminRelay per I/O thread, used only by that thread (through
// its RequestHandler). The main thread's answer arrives as a message on the
// same thread, so the pending table needs no locking.
//
//   [16, id, "get"]                          every key's limits
//   [16, id, "get", key]                     one key's
//   [16, id, "set", key, {field: value...}]  min_tps / max_tps / priority (service),
//                                            max_tps (endpoint), capacity_tps (pool)
//   [16, id, "rm", key]                      drop every override of the key
//   [16, id, "rm", key, [field...]]          drop some
//   [17, id, "get", key]                     a tenant's tier
//   [17, id, "set", key, {tier}]             place a tenant in a tier
//   [17, id, "rm", key]                      back to the default tier
//   [17, id, "list", service_key, {tier?, limit?}]  a service's tenants
//   [18, id, "list"]                         changes held for approval
//   [18, id, "approve", change_id]           apply one now
//   [18, id, "reject", change_id]            drop one

import type { AdminRequest } from './messages.ts';

/** Answers the main thread has not sent within this time are failed (it never should). */
export const ADMIN_TIMEOUT_MS = 10_000;

export interface PendingAdmin<C> {
  readonly conn: C;
  readonly id: number;
  /** The op to answer with (16, 17 or 18). */
  readonly op: number;
  readonly deadline: number;
}

/** The request's parts, or a message saying what is wrong (BAD_REQUEST). */
export function parseLimits(req: unknown[]): Omit<AdminRequest, 'actor'> | string {
  const usage = 'LIMITS is [16, id, "get", key?] | [16, id, "set", key, {field: value}] | [16, id, "rm", key, [field]?]';
  const action = req[2];
  const key = req[3];
  if (req.length < 3 || req.length > 5 || (action !== 'get' && action !== 'set' && action !== 'rm')) return usage;
  if (key !== undefined && key !== null && typeof key !== 'string') return 'key must be a string';
  if (typeof key === 'string' && (key.length === 0 || key.length > 256)) return 'key must be 1 to 256 characters';
  if (action === 'get') {
    if (req.length > 4) return usage;
    return { op: 'limits', action, key: typeof key === 'string' ? key : null, changes: {}, fields: [] };
  }
  if (typeof key !== 'string') return `${action} needs a key`;
  if (action === 'set') {
    const changes = req[4];
    if (req.length !== 5 || typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
      return 'set is [16, id, "set", key, {field: value, ...}]';
    }
    if (Object.keys(changes).length === 0 || Object.keys(changes).length > 8) return 'set needs 1 to 8 fields';
    return { op: 'limits', action, key, changes: { ...(changes as Record<string, unknown>) }, fields: [] };
  }
  const fields = req[4] ?? [];
  if (!Array.isArray(fields) || fields.length > 8 || fields.some((f) => typeof f !== 'string')) {
    return 'rm is [16, id, "rm", key] or [16, id, "rm", key, [field, ...]]';
  }
  return { op: 'limits', action, key, changes: {}, fields: fields as string[] };
}

/** Op 17 TENANTS: the request's parts, or what is wrong with it (BAD_REQUEST). */
export function parseTenants(req: unknown[]): Omit<AdminRequest, 'actor'> | string {
  const usage = 'TENANTS is [17, id, "get", key] | [17, id, "set", key, {tier}] | [17, id, "rm", key] | [17, id, "list", service_key, {tier?, limit?}]';
  const [, , action, key, opts] = req;
  if (action !== 'get' && action !== 'set' && action !== 'rm' && action !== 'list') return usage;
  if (typeof key !== 'string' || key.length === 0 || key.length > 256) return 'key must be a string of 1 to 256 characters';
  const wantsMap = action === 'set' || action === 'list';
  if (req.length !== (wantsMap ? 5 : 4) && !(action === 'list' && req.length === 4)) return usage;
  if (!wantsMap || opts === undefined) {
    if (action === 'set') return 'set is [17, id, "set", key, {tier: string}]';
    return { op: 'tenants', action, key, changes: {}, fields: [] };
  }
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) return `${action}'s last element must be a map`;
  const o = opts as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== 'tier' && !(action === 'list' && k === 'limit'));
  if (extra.length > 0) return `unknown field ${JSON.stringify(extra[0])} (${action === 'set' ? 'tier' : 'tier, limit'})`;
  if (o.tier !== undefined && (typeof o.tier !== 'string' || o.tier.length === 0 || o.tier.length > 64)) return 'tier must be a tier name';
  if (action === 'set' && o.tier === undefined) return 'set needs {tier: string}';
  if (o.limit !== undefined && (typeof o.limit !== 'number' || !Number.isInteger(o.limit) || o.limit < 1)) return 'limit must be an integer >= 1';
  return { op: 'tenants', action, key, changes: o.tier === undefined ? {} : { tier: o.tier }, fields: [], limit: o.limit as number | undefined };
}

/** The longest change id APPROVALS reads (the daemon's are 28 characters). */
const MAX_CHANGE_ID_CHARS = 64;

/** Op 18 APPROVALS: the request's parts, or what is wrong with it (BAD_REQUEST). */
export function parseApprovals(req: unknown[]): Omit<AdminRequest, 'actor'> | string {
  const usage = 'APPROVALS is [18, id, "list"] | [18, id, "approve", change_id] | [18, id, "reject", change_id]';
  const [, , action, changeId] = req;
  if (action === 'list') return req.length === 3 ? { op: 'approvals', action, key: null, changes: {}, fields: [] } : usage;
  if ((action !== 'approve' && action !== 'reject') || req.length !== 4) return usage;
  if (typeof changeId !== 'string' || changeId.length === 0 || changeId.length > MAX_CHANGE_ID_CHARS) {
    return `change_id must be a string of 1 to ${MAX_CHANGE_ID_CHARS} characters (an id from "list")`;
  }
  return { op: 'approvals', action, key: null, changes: {}, fields: [], changeId };
}

export class AdminRelay<C> {
  private nextId = 1;
  private readonly pending = new Map<number, PendingAdmin<C>>();

  constructor(private readonly post: (reqId: number, request: AdminRequest) => void) {}

  get size(): number { return this.pending.size; }

  forward(conn: C, id: number, op: number, request: AdminRequest, now: number): void {
    const reqId = this.nextId++;
    this.pending.set(reqId, { conn, id, op, deadline: now + ADMIN_TIMEOUT_MS });
    this.post(reqId, request);
  }

  /** The pending request an answer is for (removed), or undefined. */
  take(reqId: number): PendingAdmin<C> | undefined {
    const p = this.pending.get(reqId);
    this.pending.delete(reqId);
    return p;
  }

  /** Removes and returns every pending request (shutdown), or those past their deadline. */
  drain(now = Infinity): PendingAdmin<C>[] {
    const out: PendingAdmin<C>[] = [];
    for (const [reqId, p] of this.pending) {
      if (p.deadline > now) continue;
      out.push(p);
      this.pending.delete(reqId);
    }
    return out;
  }
}
