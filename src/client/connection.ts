// One open WebSocket to the daemon: the batch writer, the calls waiting for
// a reply, and the leases granted on it.
//
// Single-threaded (the event loop of the page or process). Requests made in
// the same tick are appended to one MsgWriter and sent as one message from a
// microtask; the daemon may answer several per message and in any order, so
// replies are matched by id. A connection is used once: when it closes, every
// waiting call is rejected with DisconnectedError (the client turns that into
// its failure mode) and the client opens a new one.

import { MsgWriter, decodeAll, DecodeError, isUint32 } from '../protocol/codec.ts';
import { CLOSE_NORMAL } from '../protocol/opcodes.ts';
import { OverloadedError } from '../protocol/errors.ts';
import { CallTimeoutError, DisconnectedError } from './errors.ts';
import { IdAllocator } from './id-allocator.ts';
import { abortSocket, type WireSocket } from './socket.ts';

export interface ConnectionOptions {
  maxOutstanding: number;
  maxMessageBytes: number;
  /** Called once, when the connection is gone for whatever reason. */
  onClose: (conn: Connection, reason: string) => void;
}

interface Pending {
  op: number;
  sentAt: number;
  timeoutMs: number;
  timer: ReturnType<typeof setTimeout>;
  resolve: (reply: unknown[]) => void;
  reject: (err: Error) => void;
}

/** Leases remembered per connection; a forgotten one is only released by its TTL. */
const MAX_TRACKED_LEASES = 65_536;
/** Ids of timed-out calls kept out of reuse until their late reply (or the end of the connection). */
const MAX_ABANDONED_IDS = 65_536;
/** setTimeout fires at once for longer delays (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 0x7fffffff;

const now = (): number => performance.now();

export class Connection {
  private readonly pending = new Map<number, Pending>();
  private readonly abandoned = new Set<number>();
  private readonly leases = new Set<number>();
  /** The last MAX_TRACKED_LEASES leases granted, oldest overwritten first. */
  private readonly leaseRing = new Float64Array(MAX_TRACKED_LEASES);
  private leaseRingPos = 0;
  private readonly ids = new IdAllocator();
  private readonly writer = new MsgWriter(1024);
  private readonly flushAtBytes: number;
  private flushQueued = false;
  private alive = true;
  private lastReceiveAt = 0;
  private readonly closed: Promise<void>;
  private readonly inUse = (id: number): boolean => this.pending.has(id) || this.abandoned.has(id);
  private readonly flushNow = (): void => this.flush();

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
    return this.pending.size;
  }

  /**
   * Sends a request and resolves with its reply array. Rejects with
   * DisconnectedError if the connection is lost (or looks dead: no byte
   * received since the call was sent when its timeout fires), with
   * CallTimeoutError if the daemon is alive but this call got no reply.
   */
  call(op: number, timeoutMs: number, encode: (w: MsgWriter, id: number) => void): Promise<unknown[]> {
    if (!this.alive) return Promise.reject(new DisconnectedError('tpsd: not connected'));
    if (this.pending.size >= this.opts.maxOutstanding) {
      return Promise.reject(new OverloadedError(`tpsd client: ${this.pending.size} calls already outstanding (maxOutstanding)`));
    }
    const id = this.ids.next(this.inUse);
    return new Promise<unknown[]>((resolve, reject) => {
      const timer = setTimeout(() => this.onTimeout(id), Math.min(timeoutMs, MAX_TIMER_MS));
      this.pending.set(id, { op, sentAt: now(), timeoutMs, timer, resolve, reject });
      encode(this.writer, id);
      this.queued();
    });
  }

  /** Sends a request that gets no reply (RELEASE with id 0). Dropped when the connection is gone. */
  send(encode: (w: MsgWriter) => void): void {
    if (!this.alive) return;
    encode(this.writer);
    this.queued();
  }

  /**
   * Remembers a lease granted here. Only the last MAX_TRACKED_LEASES are kept:
   * the lease being overwritten in the ring is forgotten (its release would be
   * dropped; the daemon ends it at its TTL). O(1), unlike evicting through a
   * Set iterator, which slows down as deletions pile up.
   */
  trackLease(lease: number): void {
    const pos = this.leaseRingPos;
    const old = this.leaseRing[pos];
    if (old !== 0) this.leases.delete(old);
    this.leaseRing[pos] = lease;
    this.leaseRingPos = pos + 1 === MAX_TRACKED_LEASES ? 0 : pos + 1;
    this.leases.add(lease);
  }

  /** True when `lease` was granted on this connection and not yet released. */
  untrackLease(lease: number): boolean {
    return this.leases.delete(lease);
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
    const bytes = this.writer.take();
    try {
      this.socket.send(bytes);
    } catch (err) {
      this.kill(`send failed: ${(err as Error)?.message ?? String(err)}`);
    }
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
    this.lastReceiveAt = now();
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.kill('the daemon sent a text message');
      return;
    }
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
    if (id === 0) return; // an error answering a RELEASE: nobody waits for it
    const p = this.pending.get(id);
    if (!p) {
      this.abandoned.delete(id); // late reply to a timed-out call
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(v);
  }

  private onTimeout(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    if (this.lastReceiveAt < p.sentAt) {
      // Nothing at all came back since this call went out: the daemon is unreachable.
      this.kill(`no reply from the daemon within ${p.timeoutMs} ms`);
      return;
    }
    this.pending.delete(id);
    this.abandoned.add(id);
    p.reject(new CallTimeoutError(`op ${p.op}`, p.timeoutMs));
    if (this.abandoned.size > MAX_ABANDONED_IDS) this.kill('too many calls without a reply');
  }

  /** Drops the socket at once and fails everything waiting. */
  private kill(reason: string): void {
    this.shutdown(reason);
    abortSocket(this.socket);
  }

  private shutdown(reason: string, err?: Error): void {
    if (!this.alive) return;
    this.alive = false;
    const error = err ?? new DisconnectedError(`tpsd: ${reason}`);
    const calls = [...this.pending.values()];
    this.pending.clear();
    this.abandoned.clear();
    this.leases.clear();
    this.leaseRing.fill(0);
    this.writer.reset();
    for (const p of calls) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.opts.onClose(this, reason);
  }
}
