// Protocol v1 request handling for one I/O thread: answer each request of a
// message (read by request-reader.ts), keep leases, and hand requests that
// wait to the thread's WaiterDrain (waiter-drain.ts). Knows
// nothing of uWS: the worker hands it bytes and a Conn, and sends what it
// writes.
//
// Threads: one RequestHandler per I/O thread, used only by that thread. It
// shares the bucket table with the other threads (see bucket-table.ts); its
// leases, wait queue and pending admin ops are its own.
//
// Replies to requests in a message are written to `out` (one reply message per
// incoming message), within the budget the worker gives each message (what
// the connection has left of limits.max_backpressure_bytes): after each
// request checkpoint() ends the message once `out` passes it, or once the
// daemon is stopping. Replies that come later (a waiter granted or timed out)
// go to the connection's own writer, and the connection is put on `dirty`;
// the worker flushes dirty connections with one corked send each. Every reply
// frame is written by replies.ts; HELLO and the auth checks are in hello.ts.

// The global `performance` is a lazy getter in worker threads (a call per use); the import is a plain binding.
import { performance } from 'node:perf_hooks';
import type { TpsdConfig } from '../config/types.ts';
import { ErrorCode } from '../protocol/errors.ts';
import { MsgWriter, isUint } from '../protocol/codec.ts';
import {
  CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, MAX_KEY_BYTES, OP_ACQUIRE, OP_HELLO, OP_APPROVALS, OP_LIMITS, OP_RELEASE, OP_STATUS, OP_TENANTS, OUTCOME_TIMED_OUT,
  STATUS_OK,
} from '../protocol/opcodes.ts';
import { GRANTED, failBucket, type BucketTable } from '../shm/bucket-table.ts';
import { noHints, type HintBoard, type ReleaseHints } from '../shm/hint-board.ts';
import type { KeyIndex } from '../shm/key-index.ts';
import {
  C_ACQUIRES_INDEX, C_DENIED_INDEX, C_EXPIRED_INDEX, C_GRANTED_INDEX, C_GRANTS_INDEX,
  C_LATENCY_COUNT_INDEX, C_LATENCY_SUM_US_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_OK_INDEX,
  C_RELEASED_LATE_INDEX, C_RELEASED_THROTTLED_INDEX, C_RELEASED_TIMEOUT_INDEX, C_REQUESTED_INDEX, C_WOULD_DENY_INDEX, MAX_TOKENS, MILLI,
  PRIORITY_COUNT,
} from '../shm/layout.ts';
import { lateThresholdsUs } from '../shm/late-thresholds.ts';
import { AdminRelay, parseApprovals, parseLimits, parseTenants } from './admin-op.ts';
import type { Conn } from './conn.ts';
import { keyAllowed, type Authenticator, type ScopedToken } from './auth.ts';
import { authorized, hello, unauthorized } from './hello.ts';
import { LeaseTable, connOwner, type RandomFill } from './lease-table.ts';
import type { AdminRequest } from './messages.ts';
import { writeBody, writeDenied, writeError, writeGranted, writeReleased } from './replies.ts';
import { hasHints, readReleaseHints } from './release-hints.ts';
import { RequestReader, type RequestKey, type RequestSink } from './request-reader.ts';
import { acquireTenant, type TenantHost } from './tenant-acquire.ts';
import type { TenantKeys } from './tenant-keys.ts';
import type { TenantWaits } from './tenant-wait.ts';
import { WaitQueue } from './wait-queue.ts';
import { WaiterDrain, type WaiterHost } from './waiter-drain.ts';


export interface HandlerOptions {
  config: TpsdConfig;
  keys: KeyIndex;
  table: BucketTable;
  thread: number;
  auth: Authenticator;
  /** Builds the STATUS map (encoded by msgpackr) as `viewer` may see it (null: every key). */
  status: (viewer: ScopedToken | null) => unknown;
  shuttingDown: () => boolean;
  /** Forwards an admin op to the main thread; absent: op 16 LIMITS is refused (BAD_REQUEST). */
  admin?: (reqId: number, request: AdminRequest) => void;
  /** Random bits of lease ids (default: crypto, see lease-table.ts); tests that compare ids pass a seeded one. */
  leaseRandom?: RandomFill;
  /** Where RELEASE hints go for the controller; absent: they are validated and dropped. */
  hints?: HintBoard;
  /** Tenant keys (services with `tenants`); absent: a key no config names is UNKNOWN_KEY. */
  tenants?: TenantKeys | null;
}

/** A message being answered reads the stop flag after every this many of its requests. */
export const STOP_CHECK_EVERY = 16;
const OUTCOME_FIELDS = [C_RELEASED_OK_INDEX, C_RELEASED_FAILED_INDEX, C_RELEASED_THROTTLED_INDEX, C_RELEASED_TIMEOUT_INDEX];
const RELEASE_USAGE = 'RELEASE is [2, id, lease: uint, outcome: 0 ok | 1 failed | 2 throttled | 3 timed out, latency_us: uint, hints?: map]';

export class RequestHandler implements RequestSink<Conn>, WaiterHost, TenantHost {
  readonly out = new MsgWriter(16 * 1024, true);
  readonly leases: LeaseTable;
  readonly waiters = new WaitQueue<Conn>(PRIORITY_COUNT);
  /** Connections with deferred replies to flush. */
  readonly dirty = new Set<Conn>();
  /** Admin ops forwarded to the main thread, awaiting its answer. */
  readonly admin: AdminRelay<Conn> | null;
  private o: HandlerOptions;
  private readonly table: BucketTable;
  /** The current RELEASE's hints, read in place (no allocation per RELEASE). */
  private readonly said = noHints();
  private ttlMs: number;
  private readonly drain: WaiterDrain;
  private readonly reader: RequestReader<Conn>;
  /** The clock, read once per message: performance.now() and the shared-clock ms derived from it (table.msAt). */
  private nowMs = 0;
  private perf = 0;
  /** `out` may not grow past this while the current message is answered (see handleMessage). */
  private replyLimitBytes = Infinity;
  /** The current message was ended because its replies passed the budget: send only the first `fitBytes` of `out`. */
  overBudget = false;
  /** Bytes of `out` before the reply that passed the budget: the replies that fit (set by checkpoint()). */
  fitBytes = 0;
  /** Requests left before checkpoint() reads the stop flag again. */
  private untilStopCheck = STOP_CHECK_EVERY;
  /** Buckets with enforce: false (TenantHost), or null; replaced by a reload (reconfigure). */
  dryRun: Uint8Array | null;
  private readonly tenants: TenantKeys | null;
  /** This thread's tenant waiters (TenantHost), or null. */
  readonly tenantWaits: TenantWaits | null;
  /** Per bucket, its pool's slo_ms in µs (Infinity: none): a RELEASE past it is late (late-thresholds.ts); rebuilt on reload. */
  private lateUs: Float64Array;

  constructor(o: HandlerOptions) {
    this.o = o;
    this.table = o.table;
    this.leases = new LeaseTable(o.thread, o.config.limits.max_leases_per_thread, undefined, o.leaseRandom);
    this.ttlMs = o.config.lease_ttl_ms;
    this.drain = new WaiterDrain(this.waiters, o.table, o.keys.size, this, o.tenants?.table ?? null, o.tenants?.counters ?? null);
    this.admin = o.admin ? new AdminRelay<Conn>(o.admin) : null;
    this.reader = new RequestReader<Conn>(o.keys, this);
    this.dryRun = o.keys.dryRunFlags();
    this.tenants = o.tenants ?? null;
    this.tenantWaits = this.drain.tenantWaits;
    this.lateUs = lateThresholdsUs(o.config, o.keys);
  }

  /** Applies a reloaded config (same key set): limits, auth and TTL of new requests, and which buckets are dry runs (KeyIndex.dryRunFlags of the new config). */
  reconfigure(config: TpsdConfig, auth: Authenticator, dryRun: Uint8Array | null = this.dryRun): void {
    this.o = { ...this.o, config, auth };
    this.ttlMs = config.lease_ttl_ms;
    this.lateUs = lateThresholdsUs(config, this.o.keys);
    this.dryRun = dryRun;
  }

  /**
   * Handles one binary message. Returns 0, or a close code when the
   * connection must be closed (after the replies in `out` are sent). With
   * `overBudget` (CLOSE_POLICY_VIOLATION): its replies passed
   * `replyBudgetBytes` at the last request handled; only the replies before
   * that one, the first `fitBytes` of `out`, may be sent, and the requests
   * after it were not handled. CLOSE_GOING_AWAY: the daemon started stopping
   * while it was answered.
   */
  handleMessage(conn: Conn, bytes: Uint8Array, replyBudgetBytes = Infinity): number {
    this.perf = performance.now();
    this.nowMs = this.table.msAt(this.perf);
    this.replyLimitBytes = this.out.length + replyBudgetBytes;
    this.overBudget = false;
    this.fitBytes = this.out.length;
    this.untilStopCheck = STOP_CHECK_EVERY;
    return this.reader.read(conn, bytes);
  }

  /**
   * After each request (RequestSink): a compare with the reply budget and a
   * countdown; every STOP_CHECK_EVERY requests of a message, the stop flag
   * (reading it per request cost ~10% of an acquire; a short message ends
   * before the count does anyway).
   */
  checkpoint(): number {
    const pos = this.out.pos;
    if (pos > this.replyLimitBytes) {
      this.overBudget = true;
      return CLOSE_POLICY_VIOLATION;
    }
    this.fitBytes = pos;
    if (--this.untilStopCheck > 0) return 0;
    this.untilStopCheck = STOP_CHECK_EVERY;
    return this.o.shuttingDown() ? CLOSE_GOING_AWAY : 0;
  }

  /** A request decoded the general way (RequestSink): its head [op, id] is well formed. */
  request(conn: Conn, req: unknown[]): number {
    const op = req[0] as number;
    const id = req[1] as number;
    switch (op) {
      case OP_ACQUIRE: {
        if (req.length !== 5) return this.error(op, id, ErrorCode.BAD_REQUEST, 'ACQUIRE is [1, id, key, tokens, wait_ms]');
        if (typeof req[2] !== 'string') return this.error(op, id, ErrorCode.BAD_REQUEST, 'key must be a string');
        const key = this.reader.key;
        key.fromString(req[2]);
        return this.acquire(conn, id, key, req[3], req[4]);
      }
      // Wrong arity: an undefined lease fails release()'s shape check.
      case OP_RELEASE: return this.release(conn, id, req.length === 5 || req.length === 6 ? req[2] : undefined, req[3], req[4], req[5]);
      case OP_HELLO: return hello(this.out, conn, req, id, this.o.auth, this.o.config.tick_ms);
      case OP_LIMITS: return this.adminOp(conn, req, id, OP_LIMITS);
      case OP_TENANTS: return this.adminOp(conn, req, id, OP_TENANTS);
      case OP_APPROVALS: return this.adminOp(conn, req, id, OP_APPROVALS);
      case OP_STATUS:
        if (req.length !== 2) return this.error(op, id, ErrorCode.BAD_REQUEST, 'STATUS is [3, id]');
        if (!authorized(this.o.auth, conn)) return unauthorized(this.out, conn, op, id, 'send HELLO with a valid token first');
        writeBody(this.out, op, id, this.o.status(this.o.auth.enabled ? conn.token : null));
        return 0;
      default:
        return this.error(op, id, ErrorCode.BAD_REQUEST, `unknown op ${op}`);
    }
  }

  /** An error reply to the current message; 0: the connection stays open. */
  private error(op: number, id: number, code: number, message: string): number {
    writeError(this.out, op, id, code, message);
    return 0;
  }

  /** RequestSink: an error reply to the current message. */
  replyError(op: number, id: number, code: number, message: string): void {
    writeError(this.out, op, id, code, message);
  }

  /** Admin ops 16 LIMITS, 17 TENANTS, 18 APPROVALS: shape and admin checks here; the main thread answers (answerAdmin). */
  private adminOp(conn: Conn, req: unknown[], id: number, op: number): number {
    const name = op === OP_LIMITS ? 'LIMITS' : op === OP_TENANTS ? 'TENANTS' : 'APPROVALS';
    if (this.admin === null) return this.error(op, id, ErrorCode.BAD_REQUEST, `${name} is not served here`);
    const parsed = op === OP_LIMITS ? parseLimits(req) : op === OP_TENANTS ? parseTenants(req) : parseApprovals(req);
    if (typeof parsed === 'string') return this.error(op, id, ErrorCode.BAD_REQUEST, parsed);
    if (this.o.auth.enabled) {
      if (conn.token === null) return unauthorized(this.out, conn, op, id, 'send HELLO with an admin token first');
      if (!conn.token.admin) return unauthorized(this.out, conn, op, id, `${name} needs an admin token`);
    }
    if (this.o.shuttingDown()) return this.error(op, id, ErrorCode.SHUTTING_DOWN, 'the server is shutting down');
    if (conn.outstanding >= this.o.config.limits.max_outstanding_per_connection) {
      return this.error(op, id, ErrorCode.OVERLOADED, 'too many requests waiting on this connection');
    }
    conn.outstanding++;
    const actor = `${conn.name ?? 'anonymous'} (io-${this.o.thread} conn ${conn.connId})`;
    this.admin.forward(conn, id, op, { ...parsed, actor }, performance.now());
    return 0;
  }

  /** The main thread's answer to a forwarded admin op: written to the connection's deferred replies. */
  answerAdmin(reqId: number, status: number, body: unknown): void {
    const p = this.admin?.take(reqId);
    if (p === undefined) return;
    this.finishAdmin(p.conn, p.id, p.op, status, body);
  }

  private finishAdmin(conn: Conn, id: number, op: number, status: number, body: unknown): void {
    conn.outstanding--;
    if (conn.closed) return;
    const out = this.deferred(conn);
    if (status === STATUS_OK) writeBody(out, op, id, body);
    else writeError(out, op, id, status, String(body));
  }

  /** Fails admin ops the main thread has not answered in time (or all of them, at shutdown). */
  expireAdmin(now: number, status: number = ErrorCode.OVERLOADED, message = 'the main thread did not answer in time'): void {
    for (const p of this.admin?.drain(now) ?? []) this.finishAdmin(p.conn, p.id, p.op, status, message);
  }

  /** ACQUIRE with a string key, from either way of reading (RequestSink). */
  acquire(conn: Conn, id: number, key: RequestKey, tokens: unknown, waitMs: unknown): number {
    const w = this.out;
    const nowMs = this.nowMs, perf = this.perf;
    if (!isUint(tokens) || tokens < 1) return this.error(OP_ACQUIRE, id, ErrorCode.BAD_REQUEST, 'tokens must be an integer >= 1');
    if (!isUint(waitMs)) return this.error(OP_ACQUIRE, id, ErrorCode.BAD_REQUEST, 'wait_ms must be an unsigned integer');
    if (key.tooLong()) return this.error(OP_ACQUIRE, id, ErrorCode.BAD_REQUEST, `key longer than ${MAX_KEY_BYTES} bytes`);
    if (this.o.shuttingDown()) return this.error(OP_ACQUIRE, id, ErrorCode.SHUTTING_DOWN, 'the server is shutting down');
    if (this.o.auth.enabled) {
      if (conn.token === null) return unauthorized(w, conn, OP_ACQUIRE, id, 'send HELLO with a valid token first');
      if (!keyAllowed(conn.token, key.text())) return unauthorized(w, conn, OP_ACQUIRE, id, `this token may not use key "${key.text()}"`);
    }
    const leaf = key.leaf();
    if (leaf < 0) {
      if (this.tenants !== null) return acquireTenant(this, this.tenants, this.table, conn, id, key, tokens, waitMs, nowMs, perf);
      return this.error(OP_ACQUIRE, id, ErrorCode.UNKNOWN_KEY, `no bucket with key "${key.text()}"`);
    }
    const t = this.table;
    if (tokens > MAX_TOKENS || t.exceedsBurst(leaf, tokens * MILLI)) {
      return this.error(OP_ACQUIRE, id, ErrorCode.TOKENS_EXCEED_BURST,
        `${tokens} tokens is more than a bucket on the way to "${key.text()}" can ever hold`);
    }
    const milli = tokens * MILLI;
    const prio = t.priority(leaf);
    t.countPair(leaf, C_ACQUIRES_INDEX, 1, C_REQUESTED_INDEX, tokens);
    const r = t.acquire(leaf, milli, prio, false, nowMs, waitMs === 0);
    if (r === GRANTED) {
      const lease = this.grant(conn, leaf, tokens, milli, perf);
      if (lease === 0) return this.error(OP_ACQUIRE, id, ErrorCode.OVERLOADED, 'too many leases held on this thread');
      writeGranted(w, id, lease, t.remaining(leaf));
      return 0;
    }
    if (this.dryRun !== null && this.dryRun[failBucket(r)] === 1) return this.dryGrant(conn, id, leaf, tokens, t.remaining(leaf), perf);
    if (waitMs === 0) {
      t.count(leaf, C_DENIED_INDEX, tokens);
      writeDenied(w, id, t.retryAfterMs(r, milli, nowMs));
      return 0;
    }
    if (conn.outstanding >= this.o.config.limits.max_outstanding_per_connection) {
      t.count(leaf, C_DENIED_INDEX, tokens);
      return this.error(OP_ACQUIRE, id, ErrorCode.OVERLOADED, 'too many requests waiting on this connection');
    }
    if (t.queue(leaf) >= this.o.config.limits.max_queue_per_key) {
      t.count(leaf, C_DENIED_INDEX, tokens);
      return this.error(OP_ACQUIRE, id, ErrorCode.OVERLOADED, `the wait queue of "${key.text()}" is full`);
    }
    this.drain.add(conn, id, leaf, tokens, milli, prio, r, perf, waitMs);
    return 0;
  }

  /**
   * A dry run (TenantHost): a level with enforce: false refused, so the
   * acquire is granted without tokens (a lease with no concurrency slot) and
   * counted as would_deny.
   */
  dryGrant(conn: Conn, id: number, leaf: number, tokens: number, remaining: number, perf: number): number {
    const t = this.table;
    const lease = this.leases.create(leaf, 0, perf + this.ttlMs, connOwner(conn.connId));
    if (this.leases.lastEvicted >= 0) t.count(this.leases.lastEvicted, C_EXPIRED_INDEX, 1);
    if (lease === 0) {
      t.count(leaf, C_DENIED_INDEX, tokens);
      return this.error(OP_ACQUIRE, id, ErrorCode.OVERLOADED, 'too many leases held on this thread');
    }
    t.countPair(leaf, C_GRANTED_INDEX, tokens, C_GRANTS_INDEX, 1);
    t.count(leaf, C_WOULD_DENY_INDEX, tokens);
    writeGranted(this.out, id, lease, remaining);
    return 0;
  }

  /** TenantHost: the bounds on waiting, and the queue. */
  get waitLimits(): TpsdConfig['limits'] { return this.o.config.limits; }
  queueTenant(conn: Conn, id: number, tier: number, tokens: number, milli: number, priority: number, failure: number,
    perf: number, waitMs: number, slot: number, word: number, gen: number): void {
    this.drain.add(conn, id, tier, tokens, milli, priority, failure, perf, waitMs, slot, word, gen);
  }

  /** An error reply to the current message (TenantHost); 0. */
  fail(op: number, id: number, code: number, message: string): number {
    return this.error(op, id, code, message);
  }

  /** Records a grant and makes its lease, owned by `conn`; 0 (and the grant undone) when no lease can be made (WaiterHost). */
  grant(conn: Conn, leaf: number, tokens: number, milli: number, perf: number): number {
    const t = this.table;
    const mask = t.lastSlotMask;
    const lease = this.leases.create(leaf, mask, perf + this.ttlMs, connOwner(conn.connId));
    if (this.leases.lastEvicted >= 0) t.count(this.leases.lastEvicted, C_EXPIRED_INDEX, 1);
    if (lease === 0) {
      t.undoAcquire(leaf, milli, mask);
      t.count(leaf, C_DENIED_INDEX, tokens);
      return 0;
    }
    t.countPair(leaf, C_GRANTED_INDEX, tokens, C_GRANTS_INDEX, 1);
    return lease;
  }

  /** RELEASE with five elements (or six, with hints), from either way of reading (RequestSink). */
  release(conn: Conn, id: number, lease: unknown, outcome: unknown, latency: unknown, hints?: unknown): number {
    const reply = id !== 0;
    if (!isUint(lease) || !isUint(outcome) || outcome >= OUTCOME_FIELDS.length || !isUint(latency)) {
      return reply ? this.error(OP_RELEASE, id, ErrorCode.BAD_REQUEST, RELEASE_USAGE) : 0;
    }
    const said = this.said;
    const hintsError = readReleaseHints(hints, said);
    if (hintsError !== null) return reply ? this.error(OP_RELEASE, id, ErrorCode.BAD_REQUEST, hintsError) : 0;
    if (!authorized(this.o.auth, conn)) {
      return reply ? unauthorized(this.out, conn, OP_RELEASE, id, 'send HELLO with a valid token first') : 0;
    }
    // Only a lease this connection acquired; anything else changes nothing (no slot freed, no outcome counted).
    const b = this.leases.release(lease, connOwner(conn.connId));
    if (b < 0) return reply ? this.error(OP_RELEASE, id, ErrorCode.UNKNOWN_LEASE, `no lease ${lease} (released, expired or never granted)`) : 0;
    const t = this.table;
    t.releaseSlots(b, this.leases.lastMask);
    t.count(b, OUTCOME_FIELDS[outcome], 1);
    t.count(b, C_LATENCY_SUM_US_INDEX, latency);
    t.count(b, C_LATENCY_COUNT_INDEX, 1);
    if (latency > this.lateUs[b]) t.count(b, C_RELEASED_LATE_INDEX, 1);
    if (hasHints(said)) this.recordHints(conn, b, said);
    if (reply) writeReleased(this.out, id);
    return 0;
  }

  /**
   * A released lease's hints count for the pool of its key, and only if this
   * connection's token may use that key (the lease was granted on it; this
   * holds even for a lease that is not the connection's own).
   */
  private recordHints(conn: Conn, b: number, h: ReleaseHints): void {
    const board = this.o.hints;
    if (board === undefined) return;
    const keys = this.o.keys;
    if (this.o.auth.enabled && (conn.token === null || !keyAllowed(conn.token, keys.key(b)))) return;
    board.record(this.table, b, keys.poolOf(b), h);
  }

  /** The connection's deferred replies; the connection goes on `dirty` (WaiterHost). */
  deferred(conn: Conn): MsgWriter {
    if (conn.out === null) conn.out = new MsgWriter(256);
    this.dirty.add(conn);
    return conn.out;
  }

  /** One pass over the waiters (waiter-drain.ts); returns the number left. */
  drainWaiters(): number {
    return this.drain.drain();
  }

  /** Ends every waiter of a closed connection at once. */
  dropConnection(conn: Conn): void {
    conn.closed = true;
    this.drain.dropConnection(conn);
  }

  /** Answers every waiter and pending admin op SHUTTING_DOWN (the daemon is stopping). */
  shutdownWaiters(): void {
    this.expireAdmin(Infinity, ErrorCode.SHUTTING_DOWN, 'the server is shutting down');
    this.drain.shutdown();
  }

  /** Frees the slots of leases past their TTL by `nowMs` (performance.now() time). */
  expireLeases(nowMs = performance.now()): number {
    return this.leases.expire(nowMs, (b, mask) => {
      this.table.releaseSlots(b, mask);
      this.table.count(b, C_EXPIRED_INDEX, 1);
    });
  }
}
