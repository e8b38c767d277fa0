// Drives one I/O thread's RequestHandler in-process, as src/io/io-worker.ts
// does (size check, handleMessage, waiter drain, deferred flush, close),
// without uWS, and checks every reply against the protocol:
// - each reply message decodes, each reply has the shape of its op/status;
// - every request is answered exactly once, in order for immediate replies
//   (RELEASE with id 0 never), waiters later or SHUTTING_DOWN at shutdown;
// - the close code is 1002 exactly when the message is not valid MessagePack
//   or holds a value that is not [uint, uint32, ...], else none;
// - a lease is never issued twice; RELEASE of a lease this connection holds
//   succeeds, and of anything else does not: a well-formed RELEASE of a lease
//   held by another connection (a second open one, `neighbour`, which takes
//   leases now and then, or one closed earlier) is UNKNOWN_LEASE;
// - after every message, each key with a concurrency limit has in_flight =
//   the leases held on it or below it (whoever holds them), each key's queue
//   = its waiters, and the releases and expiries counted are exactly those
//   the model made: a refused RELEASE counts no outcome;
// - a closed connection's leases stay held until their TTL, which passes
//   when the driver says (ttlPasses(): every lease then ends, none earlier);
// - at the end (waiters shut down, leases released by their owners, the rest
//   expired) every gauge is 0.
//
// Single-threaded: one shared-memory block, one handler (thread 0).

import { validateConfig } from '../../src/config/schema.ts';
import type { TpsdConfig } from '../../src/config/types.ts';
import { Authenticator } from '../../src/io/auth.ts';
import type { Conn } from '../../src/io/conn.ts';
import { RequestHandler } from '../../src/io/request-handler.ts';
import { TenantKeys } from '../../src/io/tenant-keys.ts';
import { TenantTable } from '../../src/shm/tenant-table.ts';
import { tenantSlotsWanted } from '../../src/config/tenants-schema.ts';
import { buildStatus } from '../../src/io/status.ts';
import { DecodeError, MsgWriter, decodeAll, isUint, isUint32 } from '../../src/protocol/codec.ts';
import { BucketTable } from '../../src/shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../../src/shm/clock.ts';
import { KeyIndex } from '../../src/shm/key-index.ts';
import {
  C_EXPIRED_INDEX, C_LATENCY_COUNT_INDEX, IN_FLIGHT_INDEX, QUEUE_INDEX, WAITERS_ANY_INDEX, allocateShm, stateBase, sumCounter, tenantSlotsFor, type ShmViews,
} from '../../src/shm/layout.ts';
import { FUZZ_POOLS, nestingDepth } from './frame-fuzzer.ts';

const ERROR_CODES = new Set([16, 17, 18, 19, 20, 21, 22]);

interface FuzzConn extends Conn {
  /** Waiting ACQUIREs: id -> keys, in arrival order. */
  readonly pending: Map<number, string[]>;
}

export interface HarnessStats {
  messages: number;
  requests: number;
  replies: number;
  grants: number;
  releases: number;
  /** Leases ended by a TTL passing (ttlPasses). */
  expired: number;
  /** RELEASEs of a lease held by another connection (all refused). */
  foreignReleases: number;
  closes: Record<string, number>;
}

/** Keys the neighbour connection takes leases on. */
const NEIGHBOUR_KEYS = ['junk/b', 'junk/a', 'acct/held'];

export class HandlerHarness {
  readonly config: TpsdConfig;
  readonly violations: string[] = [];
  readonly stats: HarnessStats = { messages: 0, requests: 0, replies: 0, grants: 0, releases: 0, expired: 0, foreignReleases: 0, closes: {} };
  private readonly handler: RequestHandler;
  private readonly views: ShmViews;
  private readonly keys: KeyIndex;
  /** The tenants the handler made (a tenant key's waiters queue on its tier). */
  private readonly tenants: TenantTable;
  private readonly limited: { b: number; key: string }[];
  private readonly pools: number[];
  private conn: FuzzConn;
  /** A second open connection: its leases are other connections' leases to the fuzzed one. */
  private readonly neighbour: FuzzConn;
  private nextConnId = 1;
  private nextNeighbourId = 1;
  /** Every lease held, with its key and the connection that acquired it. */
  private readonly held = new Map<number, { key: string; owner: FuzzConn }>();
  private readonly heldList: number[] = [];
  private label = '';
  private bytes: Uint8Array = new Uint8Array(0);
  private reported = '';

  constructor() {
    this.config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, log: { level: 'silent' }, policy: { mode: 'static' },
      lease_ttl_ms: 3_600_000, max_message_bytes: 65_536, pools: FUZZ_POOLS,
    }, {});
    this.keys = KeyIndex.fromConfig(this.config);
    this.views = allocateShm(this.keys.size, 1, tenantSlotsFor(tenantSlotsWanted(this.config.pools.flatMap((p) => p.services))));
    const epoch = hrtimeMs();
    BucketTable.initialize(this.views, this.keys, createClock(epoch).nowMs());
    const table = new BucketTable(this.views, createClock(epoch), 0);
    this.handler = new RequestHandler({
      config: this.config, keys: this.keys, table, thread: 0, auth: new Authenticator(this.config.auth),
      status: () => buildStatus(this.config, this.keys, table, this.views, Date.now(), 0), shuttingDown: () => false,
      tenants: new TenantKeys(this.keys, new TenantTable(this.views)),
    });
    this.tenants = new TenantTable(this.views);
    this.limited = this.keys.specs.filter((s) => s.concurrency > 0).map((s) => ({ b: s.index, key: s.key }));
    this.pools = this.keys.specs.filter((s) => s.depth === 0).map((s) => s.index);
    this.neighbour = this.newConn();
    this.conn = this.newConn();
  }

  private newConn(): FuzzConn {
    return { connId: this.nextConnId++, token: null, authFailures: 0, outstanding: 0, closed: false, out: null, pending: new Map() };
  }

  private fail(what: string): void {
    if (this.violations.length >= 50) return;
    // The message's bytes, once per message, so that it can be replayed.
    const hex = this.reported === this.label ? '' : ` [message: ${Buffer.from(this.bytes.subarray(0, 300)).toString('hex')}${this.bytes.length > 300 ? `... ${this.bytes.length} bytes` : ''}]`;
    this.reported = this.label;
    this.violations.push(`${this.label}: ${what}${hex}`);
  }

  /**
   * A lease currently held, for the fuzzer's RELEASE requests: for an even
   * `pick` one of this connection's when it has any, else anyone's (the
   * neighbour's, a closed connection's).
   */
  liveLease(pick: number): number | undefined {
    if (pick % 2 === 0) {
      const own = this.heldList.filter((l) => this.holds(this.conn, l));
      if (own.length > 0) return own[(pick >>> 1) % own.length];
    }
    return this.heldList.length === 0 ? undefined : this.heldList[pick % this.heldList.length];
  }

  private hold(lease: number, key: string, owner: FuzzConn): void {
    if (this.held.has(lease)) this.fail(`lease ${lease} issued twice`);
    this.held.set(lease, { key, owner });
    this.heldList.push(lease);
    this.stats.grants++;
  }

  private unhold(lease: number): void {
    this.held.delete(lease);
    const i = this.heldList.indexOf(lease);
    this.heldList[i] = this.heldList[this.heldList.length - 1];
    this.heldList.pop();
    this.stats.releases++;
  }

  /** The client goes away (io-worker's close handler). */
  disconnect(code: string): void {
    this.stats.closes[code] = (this.stats.closes[code] ?? 0) + 1;
    this.handler.dropConnection(this.conn);
    this.conn = this.newConn();
  }

  /** The lease is held by `conn` itself. */
  private holds(conn: FuzzConn, lease: unknown): boolean {
    return this.held.get(lease as number)?.owner === conn;
  }

  /**
   * The neighbour connection acquires a lease (wait_ms 0) on one of
   * NEIGHBOUR_KEYS, or, when it holds more than 4, releases its oldest one.
   */
  neighbourStep(pick: number): void {
    const mine = this.heldList.filter((l) => this.holds(this.neighbour, l));
    const id = this.nextNeighbourId++;
    const req = mine.length > 4 ? [2, id, mine[0], pick % 3, 10] : [1, id, NEIGHBOUR_KEYS[pick % NEIGHBOUR_KEYS.length], 1, 0];
    this.label = `neighbour ${JSON.stringify(req)}`;
    this.sendAs(this.neighbour, req);
  }

  /** One well-formed request from `conn` (not the fuzzed connection), answered at once and checked. */
  private sendAs(conn: FuzzConn, req: unknown[]): void {
    const w = new MsgWriter(64);
    w.value(req);
    const close = this.handler.handleMessage(conn, w.take());
    const replies = this.decodeReplies(this.handler.out.view(), 'reply message');
    this.handler.out.reset();
    if (close !== 0 || replies.length !== 1 || replies[0][1] !== req[1]) { this.fail(`${JSON.stringify(req)}: close ${close}, replies ${JSON.stringify(replies)}`); return; }
    this.checkReply(req, replies[0], conn);
    this.checkGauges();
  }

  /**
   * The lease TTL passes: every lease held (this connection's, the
   * neighbour's, closed connections') ends by expiry, and each one frees what
   * it held. Until then a closed connection's leases stay held.
   */
  ttlPasses(): void {
    this.label = 'the lease TTL passes';
    const n = this.handler.expireLeases(performance.now() + this.config.lease_ttl_ms);
    if (n !== this.held.size) this.fail(`${n} leases expired, ${this.held.size} held`);
    this.stats.expired += this.held.size;
    this.held.clear();
    this.heldList.length = 0;
    this.checkGauges();
  }

  /** One WebSocket binary message from the client. */
  feed(bytes: Uint8Array, label: string): void {
    this.label = label;
    this.bytes = bytes;
    this.stats.messages++;
    if (bytes.length > this.config.max_message_bytes) { this.disconnect('1009'); return; }
    let values: unknown[];
    let corrupt = false;
    try { values = decodeAll(bytes); } catch (err) {
      if (!(err instanceof DecodeError)) this.fail(`decodeAll threw ${String(err)}`);
      values = (err as DecodeError).values ?? [];
      corrupt = true;
    }
    // A deferred reply names only its id: two waiting ACQUIREs with one id could not be told apart.
    const acquireIds = new Map<number, unknown>();
    for (const req of values) {
      if (!Array.isArray(req) || req.length < 2 || !isUint(req[0]) || !isUint32(req[1])) break;
      if (req[0] !== 1) continue;
      if (acquireIds.has(req[1]) && acquireIds.get(req[1]) !== req[2]) { this.stats.closes.ambiguous = (this.stats.closes.ambiguous ?? 0) + 1; return; }
      acquireIds.set(req[1], req[2]);
    }
    if ([...acquireIds.keys()].some((id) => this.conn.pending.has(id))) this.disconnect('id-reuse');
    const conn = this.conn;
    const waitersBefore = this.handler.waiters.size;
    let close: number;
    try { close = this.handler.handleMessage(conn, bytes); } catch (err) {
      this.fail(`handleMessage threw ${(err as Error).stack ?? String(err)}`);
      this.handler.out.reset();
      this.disconnect('threw');
      return;
    }
    const replies = this.decodeReplies(this.handler.out.view(), 'reply message');
    this.handler.out.reset();
    if (nestingDepth(bytes) > 1000) { this.deep(close, replies, waitersBefore); return; }
    let expectClose = corrupt ? 1002 : 0;
    let r = 0, queued = 0;
    for (const req of values) {
      if (!Array.isArray(req) || req.length < 2 || !isUint(req[0]) || !isUint32(req[1])) {
        expectClose = 1002;
        if (Array.isArray(req) && isUint32(req[1])) {
          const reply = replies[r++];
          if (!reply || reply[1] !== req[1] || reply[2] !== 16) this.fail(`bad envelope ${JSON.stringify(req).slice(0, 60)} not answered BAD_REQUEST, got ${JSON.stringify(reply)}`);
        }
        break;
      }
      this.stats.requests++;
      const [op, id] = req as [number, number];
      if (op === 2 && id === 0) { this.silentRelease(req); continue; }
      const reply = replies[r];
      if (reply !== undefined && reply[0] === op && reply[1] === id) { r++; this.checkReply(req, reply, conn); continue; }
      if (op === 1) { queued++; this.enqueue(conn, id, req[2] as string); continue; }
      this.fail(`no reply to ${JSON.stringify(req).slice(0, 80)}; next reply ${JSON.stringify(reply)?.slice(0, 80)}`);
    }
    if (r !== replies.length) this.fail(`${replies.length - r} replies to no request: ${JSON.stringify(replies.slice(r)).slice(0, 120)}`);
    if (this.handler.waiters.size - waitersBefore !== queued) this.fail(`${this.handler.waiters.size - waitersBefore} new waiters, ${queued} unanswered ACQUIREs`);
    if (close !== expectClose) this.fail(`close code ${close}, expected ${expectClose}`);
    this.drain();
    this.checkGauges();
    if (close !== 0) this.disconnect(String(close));
  }

  /**
   * A deeply nested message: whether msgpackr decodes it depends on the stack
   * left (here and in the handler), so only what holds either way is checked:
   * close 1002 or none, error replies only, no waiter.
   */
  private deep(close: number, replies: unknown[][], waitersBefore: number): void {
    if (close !== 0 && close !== 1002) this.fail(`deep message closed with ${close}`);
    for (const r of replies) if ((r[2] as number) < 16) this.fail(`deep message answered ${JSON.stringify(r).slice(0, 80)}`);
    if (this.handler.waiters.size !== waitersBefore) this.fail('deep message queued a waiter');
    this.drain();
    this.checkGauges();
    if (close !== 0) this.disconnect(String(close));
  }

  private enqueue(conn: FuzzConn, id: number, key: string): void {
    const list = conn.pending.get(id);
    if (list) list.push(key); else conn.pending.set(id, [key]);
  }

  private decodeReplies(bytes: Uint8Array, what: string): unknown[][] {
    if (bytes.length === 0) return [];
    try {
      const out = decodeAll(bytes.slice()) as unknown[][];
      for (const rep of out) if (!Array.isArray(rep) || rep.length < 3 || !isUint(rep[0]) || !isUint32(rep[1]) || !isUint(rep[2])) this.fail(`malformed ${what} value ${JSON.stringify(rep).slice(0, 80)}`);
      return out;
    } catch (err) {
      this.fail(`${what} does not decode: ${(err as Error).message}`);
      return [];
    }
  }

  private checkReply(req: unknown[], reply: unknown[], conn: FuzzConn): void {
    this.stats.replies++;
    const [op, , status] = reply as [number, number, number];
    if (op === 2 && validRelease(req) && this.held.has(req[2] as number) && !this.holds(conn, req[2])) {
      this.stats.foreignReleases++;
      if (status !== 19) this.fail(`RELEASE of another connection's lease ${String(req[2])} answered ${JSON.stringify(reply)}, not UNKNOWN_LEASE`);
    }
    if (status >= 16) {
      if (!ERROR_CODES.has(status) || reply.length !== 4 || typeof reply[3] !== 'string') this.fail(`bad error reply ${JSON.stringify(reply).slice(0, 80)}`);
      if (op === 2 && this.holds(conn, req[2]) && validRelease(req)) this.fail(`RELEASE of held lease ${String(req[2])} answered ${status}`);
      return;
    }
    if (op === 1) {
      const lease = reply[3] as number;
      if (reply.length !== 5 || !isUint(lease) || !isUint(reply[4]) || (status === 0) !== (lease !== 0) || status > 1) this.fail(`bad ACQUIRE reply ${JSON.stringify(reply)}`);
      else if (status === 0) this.hold(lease, req[2] as string, conn);
    } else if (op === 2) {
      if (reply.length !== 3 || status !== 0) this.fail(`bad RELEASE reply ${JSON.stringify(reply)}`);
      if (!this.holds(conn, req[2])) this.fail(`RELEASE of lease ${String(req[2])}, not held by this connection, succeeded`);
      else this.unhold(req[2] as number);
    } else if (op === 0 || op === 3) {
      const body = reply[3] as Record<string, unknown>;
      if (reply.length !== 4 || status !== 0 || typeof body !== 'object' || body === null) this.fail(`bad op ${op} reply ${JSON.stringify(reply).slice(0, 80)}`);
      else if (op === 0 ? body.v !== 1 : !Array.isArray(body.keys)) this.fail(`bad op ${op} body`);
    } else this.fail(`success reply to unknown op ${op}`);
  }

  /** RELEASE with id 0: no reply; a valid one of a lease this connection holds frees it, of anyone else's nothing. */
  private silentRelease(req: unknown[]): void {
    const lease = req[2] as number;
    if (!validRelease(req) || !this.held.has(lease)) return;
    if (this.holds(this.conn, lease)) this.unhold(lease);
    else this.stats.foreignReleases++;
  }

  /** One pass of the waiter drain and the deferred flush (io-worker's drainTick). */
  drain(): void {
    this.handler.drainWaiters();
    this.flushDeferred();
  }

  private flushDeferred(): void {
    for (const c of this.handler.dirty as Set<FuzzConn>) {
      const replies = this.decodeReplies(c.out!.view(), 'deferred reply message');
      c.out!.reset();
      if (c.closed) { if (replies.length > 0) this.fail(`${replies.length} deferred replies to a closed connection`); continue; }
      for (const rep of replies) {
        const keys = c.pending.get(rep[1] as number);
        if (rep[0] !== 1 || keys === undefined) { this.fail(`deferred reply to no waiter: ${JSON.stringify(rep)}`); continue; }
        const key = keys.shift()!;
        if (keys.length === 0) c.pending.delete(rep[1] as number);
        this.stats.replies++;
        if (rep[2] === 0) this.hold(rep[3] as number, key, c);
        else if (rep[2] !== 1 && rep[2] !== 20 && rep[2] !== 21) this.fail(`deferred ACQUIRE reply ${JSON.stringify(rep)}`);
      }
    }
    this.handler.dirty.clear();
  }

  /** The key whose queue gauge a waiter of `key` counts on: a tenant key's tier, else the key itself. */
  private queueKey(key: string): string {
    if (this.keys.lookup(key) >= 0) return key;
    const cut = key.lastIndexOf('/');
    const service = cut < 0 ? -1 : this.keys.lookup(key.slice(0, cut));
    const slot = service < 0 ? -1 : this.tenants.findByName(service, new TextEncoder().encode(key.slice(cut + 1)));
    return slot < 0 ? key : this.keys.key(this.tenants.tierOf(slot));
  }

  private checkGauges(): void {
    const st = this.views.state;
    for (const { b, key } of this.limited) {
      let n = 0;
      for (const { key: k } of this.held.values()) if (k === key || k.startsWith(`${key}/`)) n++;
      if (st[stateBase(b) + IN_FLIGHT_INDEX] !== n) this.fail(`${key}: in_flight ${st[stateBase(b) + IN_FLIGHT_INDEX]}, ${n} leases held`);
    }
    const queued = new Map<string, number>();
    for (const keys of this.conn.pending.values()) for (const key of keys) { const k = this.queueKey(key); queued.set(k, (queued.get(k) ?? 0) + 1); }
    for (const spec of this.keys.specs) {
      const q = st[stateBase(spec.index) + QUEUE_INDEX];
      if (q !== (queued.get(spec.key) ?? 0)) this.fail(`${spec.key}: queue ${q}, ${queued.get(spec.key) ?? 0} waiting`);
    }
    // Each ended lease counts once on its pool: a release (latency count, whatever the outcome) or an expiry.
    let released = 0, expired = 0;
    for (const p of this.pools) { released += sumCounter(this.views, p, C_LATENCY_COUNT_INDEX); expired += sumCounter(this.views, p, C_EXPIRED_INDEX); }
    if (released !== this.stats.releases) this.fail(`${released} releases counted, ${this.stats.releases} made`);
    if (expired !== this.stats.expired) this.fail(`${expired} expiries counted, ${this.stats.expired} leases expired`);
  }

  /** Shuts the waiters down, releases every held lease, and checks that every gauge is back to 0. */
  finish(): void {
    this.label = 'finish';
    this.handler.shutdownWaiters();
    this.flushDeferred();
    for (const list of this.conn.pending.values()) if (list.length > 0) this.fail(`${list.length} waiters never answered`);
    const own = this.heldList.filter((l) => this.holds(this.conn, l));
    for (let i = 0; i < own.length; i += 1000) {
      const w = new MsgWriter();
      own.slice(i, i + 1000).forEach((lease, j) => w.array(5).uint(2).uint(j + 1).uint(lease).uint(0).uint(1));
      this.feed(w.take(), 'finish: release all of this connection');
    }
    for (const lease of this.heldList.filter((l) => this.holds(this.neighbour, l))) this.sendAs(this.neighbour, [2, this.nextNeighbourId++, lease, 0, 1]);
    for (const { owner } of this.held.values()) if (!owner.closed) this.fail('a lease of an open connection could not be released');
    this.ttlPasses(); // the leases of closed connections
    this.label = 'finish';
    const st = this.views.state;
    for (const spec of this.keys.specs) {
      const base = stateBase(spec.index);
      for (const [name, i] of [['in_flight', IN_FLIGHT_INDEX], ['queue', QUEUE_INDEX], ['waiters', WAITERS_ANY_INDEX]] as const) {
        if (st[base + i] !== 0) this.fail(`${spec.key}: ${name} ${st[base + i]} at the end`);
      }
    }
    if (this.handler.leases.active !== 0) this.fail(`${this.handler.leases.active} leases active at the end`);
    if (this.handler.waiters.size !== 0) this.fail(`${this.handler.waiters.size} waiters left at the end`);
  }
}

/** The request is a RELEASE the protocol accepts (arity and types; outcome 3 and a sixth element, hints, since 2026-12). */
function validRelease(req: unknown[]): boolean {
  return (req.length === 5 || (req.length === 6 && validHints(req[5])))
    && isUint(req[2]) && isUint(req[3]) && (req[3] as number) <= 3 && isUint(req[4]);
}

/** RELEASE hints: nil, or a map whose known fields (when present) are numbers >= 0; other fields do not matter. */
function validHints(v: unknown): boolean {
  if (v === null) return true;
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return false;
  return ['limit', 'remaining', 'reset_ms', 'window_ms', 'retry_after_ms'].every((f) => {
    const x = (v as Record<string, unknown>)[f];
    return !Object.hasOwn(v, f) || (typeof x === 'number' && Number.isFinite(x) && x >= 0);
  });
}
