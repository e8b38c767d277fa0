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
// periodic timer per connection fails the calls past their deadline. This
// file is the socket side (batching, reading messages, the sweep timer, the
// connection's end); the waiting calls and how each ends are pending-calls.ts.

import { MsgWriter, decodeAll, DecodeError } from '../protocol/codec.ts';
import { FlatReader } from '../protocol/flat-reader.ts';
import { CLOSE_NORMAL, OP_ACQUIRE } from '../protocol/opcodes.ts';
import { OverloadedError } from '../protocol/errors.ts';
import { CALL_ACQUIRE, CALL_RAW } from './call-table.ts';
import { DisconnectedError } from './errors.ts';
import { PendingCalls, type OnUnreachable } from './pending-calls.ts';
import { abortSocket, type WireSocket } from './socket.ts';
import type { Permit } from './types.ts';
import { writeAcquire, writeRelease, type WireHints } from './wire.ts';

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
  onUnreachable?: OnUnreachable;
}

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
  private readonly pending: PendingCalls;
  private readonly reader = new FlatReader();
  private readonly writer = new MsgWriter(1024);
  private readonly flushAtBytes: number;
  private flushQueued = false;
  private alive = true;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private readonly closed: Promise<void>;
  private readonly flushNow = (): void => this.flush();
  private readonly sweepNow = (): void => this.sweep();

  constructor(private readonly socket: WireSocket, private readonly opts: ConnectionOptions) {
    this.pending = new PendingCalls(opts.onUnreachable);
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
    return this.pending.size;
  }

  /**
   * Sends a request and resolves with its reply array. Rejects with
   * DisconnectedError if the connection is lost (or looks dead: nothing
   * received since the call was made when its timeout is up), with
   * CallTimeoutError if the daemon is alive but this call got no reply.
   */
  call(op: number, timeoutMs: number, encode: (w: MsgWriter, id: number) => void): Promise<unknown[]> {
    if (!this.alive) return Promise.reject(new DisconnectedError('tpsd: not connected'));
    if (this.pending.size >= this.opts.maxOutstanding) return Promise.reject(this.overloaded());
    const id = this.pending.nextId();
    const promise = this.pending.track(id, CALL_RAW, op, timeoutMs, undefined, 0, 0) as Promise<unknown[]>;
    this.startSweeping();
    const mark = this.writer.pos;
    try {
      encode(this.writer, id);
    } catch (err) {
      this.writer.pos = mark; // nothing half-written goes out
      this.pending.untrack(id);
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
    if (!this.alive) return this.pending.unreachable(key, tokens, waitMs, new DisconnectedError('tpsd: not connected'));
    if (this.pending.size >= this.opts.maxOutstanding) return Promise.reject(this.overloaded());
    const id = this.pending.nextId();
    const promise = this.pending.track(id, CALL_ACQUIRE, OP_ACQUIRE, timeoutMs, key, tokens, waitMs) as Promise<Permit>;
    this.startSweeping();
    writeAcquire(this.writer, id, key, tokens, waitMs);
    this.queued();
    return promise;
  }

  /**
   * RELEASE (id 0, no reply, with the upstream's hints when given) of a lease granted here and not released yet;
   * false (nothing sent) for any other lease or when the connection is gone.
   */
  release(lease: number, outcome: number, latencyUs: number, hints?: WireHints): boolean {
    if (!this.pending.deleteLease(lease) || !this.alive) return false;
    writeRelease(this.writer, lease, outcome, latencyUs, hints);
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
    this.pending.start(now());
    const bytes = this.writer.take();
    try {
      this.socket.send(bytes);
    } catch (err) {
      this.kill(`send failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private overloaded(): OverloadedError {
    return new OverloadedError(`tpsd client: ${this.pending.size} calls already outstanding (maxOutstanding)`);
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
    this.pending.countMessage();
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
      this.pending.answerFlat(r, bytes);
    }
  }

  /** The rest of a message, decoded the general way. */
  private onDecoded(bytes: Uint8Array): void {
    let values: unknown[];
    try {
      values = decodeAll(bytes);
    } catch (err) {
      if (err instanceof DecodeError) for (const v of err.values) this.pending.answer(v);
      this.kill(`undecodable reply: ${(err as Error).message}`);
      return;
    }
    for (const v of values) this.pending.answer(v);
  }

  /** The periodic timer: fails the calls past their deadline, in deadline order. */
  private sweep(): void {
    if (!this.alive || this.pending.size === 0) {
      this.stopSweeping();
      return;
    }
    const dead = this.pending.failExpired(now());
    if (dead !== null) this.kill(dead);
  }

  private startSweeping(): void {
    if (this.sweepTimer !== null) return;
    this.sweepTimer = setInterval(this.sweepNow, SWEEP_MS);
    // The socket keeps a Node process alive while calls wait; the sweep alone should not.
    (this.sweepTimer as { unref?: () => void }).unref?.();
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
    this.pending.end();
    this.writer.reset();
    // The client learns first (it schedules its reconnect), so that a failure
    // mode answering the calls below sees when the next attempt is.
    this.opts.onClose(this, reason);
    this.pending.failAll(error);
  }
}
