// The calls of one connection that wait for a reply, and how each one ends:
// answered by its reply (a flat array read straight from the bytes, or a
// value from the general decoder), failed at its deadline, or failed with
// the connection, where an ACQUIRE the daemon cannot answer goes to the
// client's failure mode. Also the leases granted on the connection (only
// those are released on it) and the ids of timed-out calls, kept out of reuse
// until their late reply.
//
// Single-threaded: owned by one Connection (connection.ts), on the event loop
// of the page or process. Built for the hot path: a call is a slot in
// CallTable (no Map entry, no timer, no closure of its own); one Promise
// executor, made once, hands over each call's resolve and reject; ACQUIRE
// replies go from the FlatReader straight into the Permit.

import { isUint32 } from '../protocol/codec.ts';
import { FLAT_UINT, type FlatReader } from '../protocol/flat-reader.ts';
import { MAX_UINT32 } from '../protocol/opcodes.ts';
import { ShuttingDownError } from '../protocol/errors.ts';
import { CALL_ACQUIRE, CALL_RAW, CallTable, type Reject, type Resolve } from './call-table.ts';
import { CallTimeoutError, DisconnectedError } from './errors.ts';
import { IdAllocator } from './id-allocator.ts';
import { LeaseSet } from './lease-set.ts';
import type { Permit } from './types.ts';
import { flatToArray, readAcquireFlat, readAcquireReply } from './wire.ts';

/**
 * An ACQUIRE the daemon could not answer (see ConnectionOptions.onUnreachable):
 * the failure mode's permit, or null to reject with `err`.
 */
export type OnUnreachable = (key: string, tokens: number, waitMs: number, err: Error) => Permit | Promise<Permit> | null;

/** At least the last this many leases granted on a connection are remembered (at most twice as many); a forgotten one is only released by its TTL. */
const TRACKED_LEASES = 65_536;
/** Ids of timed-out calls kept out of reuse until their late reply (or the end of the connection). */
const MAX_ABANDONED_IDS = 65_536;

const now = (): number => performance.now();

export class PendingCalls {
  private readonly calls = new CallTable();
  private readonly abandoned = new Set<number>();
  private readonly leases = new LeaseSet(TRACKED_LEASES);
  private readonly ids = new IdAllocator();
  /** Messages received so far: a call made at count c saw a reply to anything once it is > c. */
  private received = 0;
  /** Set by end(), when the connection goes. */
  private ended = false;
  private readonly inUse = (id: number): boolean => this.calls.isTaken(id) || (this.abandoned.size > 0 && this.abandoned.has(id));
  /** A Promise executor that hands its functions over, so no closure is made per call. */
  private nextResolve: Resolve | undefined;
  private nextReject: Reject | undefined;
  private readonly capture = (resolve: Resolve, reject: Reject): void => {
    this.nextResolve = resolve;
    this.nextReject = reject;
  };

  constructor(private readonly onUnreachable: OnUnreachable | undefined) {}

  /** Calls waiting for a reply. */
  get size(): number {
    return this.calls.size;
  }

  /** A request id no waiting call (nor a timed-out one awaiting its late reply) has; room is made for its call. */
  nextId(): number {
    this.calls.reserve();
    return this.ids.next(this.inUse);
  }

  /** Adds the call `id` (kind CALL_RAW or CALL_ACQUIRE, with the ACQUIRE's arguments); its promise. */
  track(id: number, kind: number, op: number, timeoutMs: number, key: string | undefined, tokens: number, waitMs: number): Promise<never> {
    const promise = new Promise<never>(this.capture);
    this.calls.add(id, kind, op, timeoutMs, this.received, this.nextResolve!, this.nextReject!, key, tokens, waitMs);
    this.nextResolve = undefined;
    this.nextReject = undefined;
    return promise;
  }

  /** Drops the call `id` without settling it (its request could not be written). */
  untrack(id: number): void {
    this.calls.remove(this.calls.find(id));
  }

  /** Starts the clock of the calls made since the last batch went out (see CallTable.start). */
  start(nowMs: number): void {
    this.calls.start(nowMs);
  }

  /** Forgets a lease granted here; false when it was not (or is no longer) known. */
  deleteLease(lease: number): boolean {
    return this.leases.delete(lease);
  }

  /** A message arrived (proof that the daemon is alive for every call made before it). */
  countMessage(): void {
    this.received++;
  }

  /** The flat array the reader just read from `bytes`. */
  answerFlat(r: FlatReader, bytes: Uint8Array): void {
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

  /** A value of a message decoded the general way. */
  answer(v: unknown): void {
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

  /** An ACQUIRE made when the connection is already gone: the failure mode's answer, or `err`. */
  unreachable(key: string, tokens: number, waitMs: number, err: Error): Promise<Permit> {
    const permit = this.failureModeAnswer(key, tokens, waitMs, err);
    return permit === null ? Promise.reject(err) : Promise.resolve(permit);
  }

  private failureModeAnswer(key: string, tokens: number, waitMs: number, err: Error): Permit | Promise<Permit> | null {
    if (!(err instanceof DisconnectedError || err instanceof ShuttingDownError) || !this.onUnreachable) return null;
    try {
      return this.onUnreachable(key, tokens, waitMs, err);
    } catch (thrown) {
      return Promise.reject(thrown);
    }
  }

  /**
   * Fails the calls past their deadline at `nowMs`, in deadline order, with
   * CallTimeoutError. Returns why the connection must be dropped (nothing at
   * all came back since a call was made: the daemon is unreachable; or too
   * many calls went without a reply), or null.
   */
  failExpired(nowMs: number): string | null {
    const calls = this.calls;
    for (const slot of calls.expired(nowMs)) {
      if (this.ended) return null; // a failure mode's callback closed the connection
      const timeoutMs = calls.timeoutMs[slot];
      // Nothing at all came back since this call was made: the daemon is unreachable.
      if (calls.receivedAtCall[slot] === this.received) return `no reply from the daemon within ${timeoutMs} ms`;
      this.abandoned.add(calls.ids[slot]);
      this.fail(slot, new CallTimeoutError(`op ${calls.ops[slot]}`, timeoutMs));
      if (this.abandoned.size > MAX_ABANDONED_IDS) return 'too many calls without a reply';
    }
    return null;
  }

  /** The connection is gone: forgets its leases and abandoned ids (then failAll answers the calls). */
  end(): void {
    this.ended = true;
    this.abandoned.clear();
    this.leases.clear();
  }

  /** Fails every waiting call with `err`, oldest first. */
  failAll(err: Error): void {
    for (const slot of this.calls.inCallOrder()) this.fail(slot, err);
  }
}
