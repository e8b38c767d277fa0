// Answers the admin ops the I/O threads forward: op 16 LIMITS, get, set or
// rm on the live limits (live-limits.ts validates, persists and applies), and
// op 17 TENANTS, a tenant's tier (tenant-admin.ts), and op 18 APPROVALS,
// the changes governance holds (governance.ts), which also screens every
// LIMITS set and rm before it applies. A
// refused change answers its protocol code and message; any other failure is
// logged and answered OVERLOADED, "not applied: ...".
//
// Threads: main thread only, which owns the limits, the controller and the
// database. The I/O thread that received the request checked its shape and
// authorization (io/admin-op.ts); io-threads.ts hands the answer back to it as
// an 'admin-reply', and that thread sends it on the connection.

import type { Logger } from '../config/log.ts';
import type { AdminRequest } from '../io/messages.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { LimitsError, type LiveLimits } from './live-limits.ts';
import type { Governance } from './governance.ts';
import type { TenantDirectory } from './tenant-admin.ts';

/** A protocol status (0: ok) and the reply body, or the error message. */
export interface AdminReply {
  readonly status: number;
  readonly body: unknown;
}

/** An admin op forwarded by an I/O thread: validate, persist, apply (or hold, with governance), answer. */
export function answerAdmin(limits: LiveLimits, req: AdminRequest, log: Logger, tenants: TenantDirectory | null = null,
  governance: Governance | null = null): AdminReply {
  try {
    if (req.op === 'approvals') {
      if (governance === null) return { status: ErrorCode.BAD_REQUEST, body: 'APPROVALS is not served here' };
      return { status: 0, body: governance.answer(req.action, req.changeId ?? null, req.actor) };
    }
    if (req.op === 'tenants') {
      if (tenants === null) return { status: ErrorCode.UNKNOWN_KEY, body: 'no service of this config has tenants' };
      return { status: 0, body: tenants.answer(req.action, req.key!, req.changes, req.limit, req.actor) };
    }
    if (req.action === 'list') return { status: ErrorCode.BAD_REQUEST, body: 'LIMITS has no list' };
    if (req.action === 'get') return { status: 0, body: limits.get(req.key) };
    const held = governance?.screen(req) ?? null;
    if (held !== null) return { status: 0, body: held };
    if (req.action === 'set') return { status: 0, body: { ...limits.set(req.key!, req.changes, req.actor), persisted: limits.persisted } };
    return { status: 0, body: { ...limits.rm(req.key!, req.fields, req.actor), persisted: limits.persisted } };
  } catch (err) {
    if (err instanceof LimitsError) return { status: err.code, body: err.message };
    log.error({ err, request: req }, 'admin op failed');
    return { status: ErrorCode.OVERLOADED, body: `not applied: ${(err as Error).message}` };
  }
}
