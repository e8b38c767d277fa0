// One open WebSocket to the daemon: the batch writer, the calls waiting for
// a reply, and the leases granted on it.
//
// Single-threaded (the event loop of the page or process). Requests made in
// the same tick are appended to one MsgWriter and sent as one message from a
// microtask; the daemon may answer several per message and in any order, so
// replies are matched by id. A connection is used once: when it closes, every
// waiting call is rejected with DisconnectedError (an ACQUIRE goes to the
// client's failure mode instead) and the client opens a new one.
//
// Built for hundreds of thousands of calls per second: a call is a slot in
// CallTable (no Map entry, no timer, no closure of its own), ACQUIRE replies
// are read straight from the bytes (FlatReader) into the Permit, and one
// periodic timer per connection fails the calls past their deadline.

import { MsgWriter, decodeAll, DecodeError, isUint32 } from '../protocol/codec.ts';
import { FLAT_UINT, FlatReader } from '../protocol/flat-reader.ts';
import { CLOSE_NORMAL, MAX_UINT32, OP_ACQUIRE } from '../protocol/opcodes.ts';
import { OverloadedError, ShuttingDownError } from '../protocol/errors.ts';
import { CALL_ACQUIRE, CALL_RAW, CallTable, type Reject, type Resolve } from './call-table.ts';
import { CallTimeoutError, DisconnectedError } from './errors.ts';
import { IdAllocator } from './id-allocator.ts';
import { LeaseSet } from './lease-set.ts';
import { abortSocket, type WireSocket } from './socket.ts';
import type { Permit } from './types.ts';
import { flatToArray, readAcquireFlat, readAcquireReply, writeAcquire, writeRelease } from './wire.ts';

export interface ConnectionOptions {
  maxOutstanding: number;
  maxMessageBytes: number;
  /** Called once, when the connection is gone for whatever reason. */
  onClose: (conn: Connection, reason: string) => void;
  /**
   * An ACQUIRE could not be answered by the daemon (the connection is lost or
   * dead, or it answered SHUTTING_DOWN): the failure mode's permit, or null
   * to reject with `err`. `waitMs` is what is left of the caller's.
   */
  onUnreachable?: (key: string, tokens: number, waitMs: number, err: Error) => Permit | Promise<Permit> | null;
}

/** At least the last this many leases granted on a connection are remembered (at most twice as many); a forgotten one is only released by its TTL. */
const TRACKED_LEASES = 65_536;
/** Ids of timed-out calls kept out of reuse until their late reply (or the end of the connection). */
const MAX_ABANDONED_IDS = 65_536;
/**
 * Period of the deadline sweep. A call fails no earlier than its deadline
 * (the time its batch was sent, at the end of the tick it was made in, +
 * its timeout) and at most SWEEP_MS after it, plus however late the event
 * loop runs the timer (a busy loop delays it, as it would a setTimeout per
 * call).
 */
export const SWEEP_MS = 10;

const now = (): number => performance.now();

export class Connection {
  private readonly calls = new CallTable();
  private readonly abandoned = new Set<number>();
  private readonly leases = new LeaseSet(TRACKED_LEASES);
  private readonly ids = new IdAllocator();
  private readonly reader = new FlatReader();
  private readonly writer = new MsgWriter(1024);
  private readonly flushAtBytes: number;
  private flushQueued = false;
  private alive = true;
  /** Messages received so far: a call made at count c saw a reply to anything once it is > c. */
  private received = 0;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private readonly closed: Promise<void>;
  private readonly inUse = (id: number): boolean => this.calls.isTaken(id) || (this.abandoned.size > 0 && this.abandoned.has(id));
  private readonly flushNow = (): void => this.flush();
  private readonly sweepNow = (): void => this.sweep();
  /** A Promise executor that hands its functions over, so no closure is made per call. */
  private nextResolve: Resolve | undefined;
  private nextReject: Reject | undefined;
  private readonly capture = (resolve: Resolve, reject: Reject): void => {
    this.nextResolve = resolve;
    this.nextReject = reject;
  };

  constructor(private readonly socket: WireSocket, private readonly opts: ConnectionOptions) {
    this.flushAtBytes = Math.max(512, opts.maxMessageBytes >> 1);
    let closedResolve!: () => void;
    this.closed = new Promise((r) => { closedResolve = r; });
    socket.onmessage = (ev) => this.onMessage(ev.data);
    socket.onerror = () => {}; // a close event follows
    socket.onclose = (ev) => {
      closedResolve();
      this.shutdown(`connection closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
    };
  }

  get isOpen(): boolean {
    return this.alive;
  }

  /** Calls waiting for a reply. */
  get outstanding(): number {
    return this.calls.size;
  }

  /**
   * Sends a request and resolves with its reply array. Rejects with
   * DisconnectedError if the connection is lost (or looks dead: nothing
   * received since the call was made when its timeout is up), with
   * CallTimeoutError if the daemon is alive but this call got no reply.
   */
  call(op: number, timeoutMs: number, encode: (w: MsgWriter, id: number) => void): Promise<unknown[]> {
    if (!this.alive) return Promise.reject(new DisconnectedError('tpsd: not connected'));
    if (this.calls.size >= this.opts.maxOutstanding) return Promise.reject(this.overloaded());
    const id = this.nextId();
    const promise = this.track(id, CALL_RAW, op, timeoutMs, undefined, 0, 0) as Promise<unknown[]>;
    const mark = this.writer.pos;
    try {
      encode(this.writer, id);
    } catch (err) {
      this.writer.pos = mark; // nothing half-written goes out
      this.calls.remove(this.calls.find(id));
      return Promise.reject(err);
    }
    this.queued();
    return promise;
  }

  /**
   * ACQUIRE: resolves with the daemon's permit; rejects like call(), except
   * that when the daemon cannot answer (see ConnectionOptions.onUnreachable)
   * the failure mode's permit is the answer.
   */
  acquire(key: string, tokens: number, waitMs: number, timeoutMs: number): Promise<Permit> {
    if (!this.alive) return this.unreachable(key, tokens, waitMs, new DisconnectedError('tpsd: not connected'));
    if (this.calls.size >= this.opts.maxOutstanding) return Promise.reject(this.overloaded());
    const id = this.nextId();
    const promise = this.track(id, CALL_ACQUIRE, OP_ACQUIRE, timeoutMs, key, tokens, waitMs) as Promise<Permit>;
    writeAcquire(this.writer, id, key, tokens, waitMs);
    this.queued();
    return promise;
  }

  /**
   * RELEASE (id 0, no reply) of a lease granted here and not released yet;
   * false (nothing sent) for any other lease or when the connection is gone.
   */
  release(lease: number, outcome: number, latencyUs: number): boolean {
    if (!this.leases.delete(lease) || !this.alive) return false;
    writeRelease(this.writer, lease, outcome, latencyUs);
    this.queued();
    return true;
  }

  /** Closes the socket; waiting calls are rejected with `err`. Resolves when the socket is closed. */
  close(err: Error, code = CLOSE_NORMAL, reason = 'client closing'): Promise<void> {
    this.shutdown(err.message, err);
    try {
      this.socket.close(code, reason);
    } catch {
      abortSocket(this.socket);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = new Promise<void>((r) => {
      timer = setTimeout(() => { abortSocket(this.socket); r(); }, 1000);
    });
    return Promise.race([this.closed, giveUp]).finally(() => clearTimeout(timer));
  }

  /** Sends what has been batched so far. */
  flush(): void {
    this.flushQueued = false;
    if (!this.alive || this.writer.length === 0) return;
    this.calls.start(now());
    const bytes = this.writer.take();
    try {
      this.socket.send(bytes);
    } catch (err) {
      this.kill(`send failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private overloaded(): OverloadedError {
    return new OverloadedError(`tpsd client: ${this.calls.size} calls already outstanding (maxOutstanding)`);
  }

  private nextId(): number {
    this.calls.reserve();
    return this.ids.next(this.inUse);
  }

  private track(id: number, kind: number, op: number, timeoutMs: number, key: string | undefined, tokens: number, waitMs: number): Promise<never> {
    const promise = new Promise<never>(this.capture);
    this.calls.add(id, kind, op, timeoutMs, this.received, this.nextResolve!, this.nextReject!, key, tokens, waitMs);
    this.nextResolve = undefined;
    this.nextReject = undefined;
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(this.sweepNow, SWEEP_MS);
      // The socket keeps a Node process alive while calls wait; the sweep alone should not.
      (this.sweepTimer as { unref?: () => void }).unref?.();
    }
    return promise;
  }

  private queued(): void {
    if (this.writer.length >= this.flushAtBytes) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushNow);
    }
  }

  private onMessage(data: unknown): void {
    if (!this.alive) return;
    this.received++;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.kill('the daemon sent a text message');
      return;
    }
    // Value by value: flat arrays (ACQUIRE and RELEASE replies, error
    // replies) straight from the bytes; from the first value that is not
    // one (a map in HELLO or STATUS replies, or bytes that are not valid), the
    // rest of the message goes through the general decoder.
    const r = this.reader;
    const n = bytes.length;
    let pos = 0;
    while (pos < n) {
      if (!r.read(bytes, pos)) {
        this.onDecoded(pos === 0 ? bytes : bytes.subarray(pos));
        return;
      }
      pos = r.end;
      this.onFlat(bytes);
    }
  }

  /** The flat array the reader just read. */
  private onFlat(bytes: Uint8Array): void {
    const r = this.reader;
    if (r.length < 2 || r.kinds[1] !== FLAT_UINT) return;
    const id = r.nums[1];
    if (id === 0 || id > MAX_UINT32) return; // id 0: an error answering a RELEASE, nobody waits for it
    const slot = this.calls.find(id);
    if (slot < 0) {
      this.abandoned.delete(id); // late reply to a timed-out call
      return;
    }
    if (this.calls.kinds[slot] === CALL_ACQUIRE) {
      const permit = readAcquireFlat(r);
      if (permit !== null) {
        this.settle(slot, permit);
        return;
      }
    }
    this.complete(slot, flatToArray(r, bytes));
  }

  /** The rest of a message, decoded the general way. */
  private onDecoded(bytes: Uint8Array): void {
    let values: unknown[];
    try {
      values = decodeAll(bytes);
    } catch (err) {
      if (err instanceof DecodeError) for (const v of err.values) this.dispatch(v);
      this.kill(`undecodable reply: ${(err as Error).message}`);
      return;
    }
    for (const v of values) this.dispatch(v);
  }

  private dispatch(v: unknown): void {
    if (!Array.isArray(v) || !isUint32(v[1])) return;
    const id = v[1];
    if (id === 0) return;
    const slot = this.calls.find(id);
    if (slot < 0) {
      this.abandoned.delete(id);
      return;
    }
    this.complete(slot, v);
  }

  /** Answers the call in `slot` with its reply array. */
  private complete(slot: number, reply: unknown[]): void {
    const calls = this.calls;
    if (calls.kinds[slot] === CALL_RAW) {
      const resolve = calls.resolves[slot]!;
      calls.remove(slot);
      resolve(reply as never);
      return;
    }
    let permit: Permit;
    try {
      permit = readAcquireReply(reply);
    } catch (err) {
      this.fail(slot, err as Error);
      return;
    }
    this.settle(slot, permit);
  }

  /** Answers the ACQUIRE in `slot` with the daemon's permit. */
  private settle(slot: number, permit: Permit): void {
    const resolve = this.calls.resolves[slot]!;
    this.calls.remove(slot);
    if (permit.granted && permit.lease !== 0) this.leases.add(permit.lease);
    resolve(permit as never);
  }

  /** Fails the call in `slot`; an ACQUIRE the daemon cannot answer goes to the failure mode. */
  private fail(slot: number, err: Error): void {
    const calls = this.calls;
    const resolve = calls.resolves[slot]!;
    const reject = calls.rejects[slot]!;
    const kind = calls.kinds[slot];
    const key = calls.keys[slot];
    const tokens = calls.tokens[slot];
    const waitLeft = Math.max(0, calls.waitMs[slot] - Math.max(0, now() - calls.startedAt[slot]));
    calls.remove(slot);
    if (kind === CALL_ACQUIRE && key !== undefined) {
      const permit = this.failureModeAnswer(key, tokens, waitLeft, err);
      if (permit !== null) {
        resolve(permit as never);
        return;
      }
    }
    reject(err);
  }

  private unreachable(key: string, tokens: number, waitMs: number, err: Error): Promise<Permit> {
    const permit = this.failureModeAnswer(key, tokens, waitMs, err);
    return permit === null ? Promise.reject(err) : Promise.resolve(permit);
  }

  private failureModeAnswer(key: string, tokens: number, waitMs: number, err: Error): Permit | Promise<Permit> | null {
    if (!(err instanceof DisconnectedError || err instanceof ShuttingDownError) || !this.opts.onUnreachable) return null;
    try {
      return this.opts.onUnreachable(key, tokens, waitMs, err);
    } catch (thrown) {
      return Promise.reject(thrown);
    }
  }

  /** The periodic timer: fails the calls past their deadline, in deadline order. */
  private sweep(): void {
    const calls = this.calls;
    if (!this.alive || calls.size === 0) {
      this.stopSweeping();
      return;
    }
    for (const slot of calls.expired(now())) {
      if (!this.alive) return;
      const timeoutMs = calls.timeoutMs[slot];
      if (calls.receivedAtCall[slot] === this.received) {
        // Nothing at all came back since this call was made: the daemon is unreachable.
        this.kill(`no reply from the daemon within ${timeoutMs} ms`);
        return;
      }
      this.abandoned.add(calls.ids[slot]);
      this.fail(slot, new CallTimeoutError(`op ${calls.ops[slot]}`, timeoutMs));
      if (this.abandoned.size > MAX_ABANDONED_IDS) this.kill('too many calls without a reply');
    }
  }

  private stopSweeping(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Drops the socket at once and fails everything waiting. */
  private kill(reason: string): void {
    this.shutdown(reason);
    abortSocket(this.socket);
  }

  private shutdown(reason: string, err?: Error): void {
    if (!this.alive) return;
    this.alive = false;
    this.stopSweeping();
    const error = err ?? new DisconnectedError(`tpsd: ${reason}`);
    this.abandoned.clear();
    this.leases.clear();
    this.writer.reset();
    // The client learns first (it schedules its reconnect), so that a failure
    // mode answering the calls below sees when the next attempt is.
    this.opts.onClose(this, reason);
    for (const slot of this.calls.inCallOrder()) this.fail(slot, error);
  }
}
