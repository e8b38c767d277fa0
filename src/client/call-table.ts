// The calls of one connection that wait for a reply, by request id.
//
// Single-threaded (owned by one Connection). A call is one slot of parallel
// arrays, at index `id & mask`: no object, no Map entry and no timer per
// call. The id allocator never hands out an id whose slot is taken (see
// `isTaken`), so a lookup is one array read and a compare. The table keeps
// at most half of its slots busy (it doubles when needed), so the allocator
// rarely skips an id. Entries are cleared on removal so that nothing a
// finished call referenced (its promise's functions, its key) stays reachable.
//
// A call's clock starts when its batch is handed to the socket (start(),
// from the flush at the end of the tick it was made in), not when it is
// made: one clock read per batch instead of one per call (a clock read costs
// about as much as the rest of a call), and a deadline that can only be
// later than the exact one, never earlier.

import type { Permit } from './types.ts';

/** What a call resolves with: the decoded reply array, or a Permit (ACQUIRE). */
export const CALL_RAW = 0;
export const CALL_ACQUIRE = 1;

const MIN_CAPACITY = 64;

export type Resolve = (value: never) => void;
export type Reject = (err: Error) => void;

export class CallTable {
  /** Calls in the table. */
  size = 0;
  private mask = MIN_CAPACITY - 1;
  /** Request id per slot; 0 when the slot is free (0 is never a request id). */
  ids = new Uint32Array(MIN_CAPACITY);
  kinds = new Uint8Array(MIN_CAPACITY);
  ops = new Uint8Array(MIN_CAPACITY);
  /** performance.now() when the call's batch was sent; Infinity until then. */
  startedAt = new Float64Array(MIN_CAPACITY);
  timeoutMs = new Float64Array(MIN_CAPACITY);
  /** startedAt + timeoutMs. */
  deadlines = new Float64Array(MIN_CAPACITY);
  /** The connection's count of received messages when the call was made. */
  receivedAtCall = new Float64Array(MIN_CAPACITY);
  /** ACQUIRE arguments, kept for the failure mode if the connection is lost. */
  keys: (string | undefined)[] = new Array(MIN_CAPACITY).fill(undefined);
  tokens = new Float64Array(MIN_CAPACITY);
  waitMs = new Float64Array(MIN_CAPACITY);
  resolves: (Resolve | undefined)[] = new Array(MIN_CAPACITY).fill(undefined);
  rejects: (Reject | undefined)[] = new Array(MIN_CAPACITY).fill(undefined);
  /** No call in the table has an earlier deadline (it may be earlier than the earliest one left). */
  earliestDeadline = Infinity;
  /** Ids of the calls added since the last start(). */
  private unstarted: number[] = [];

  /** True when `id` may not be handed out now (its slot is taken). */
  isTaken(id: number): boolean {
    return this.ids[id & this.mask] !== 0;
  }

  /** The slot of the call with this id, or -1. */
  find(id: number): number {
    const slot = id & this.mask;
    return this.ids[slot] === id ? slot : -1;
  }

  /** Makes room for one more call; ids handed out before a grow stay valid (their slots move). */
  reserve(): void {
    if ((this.size + 1) * 2 > this.ids.length) this.grow();
  }

  /** Adds a call; `id` must not be taken (reserve() first, then allocate the id). */
  add(
    id: number, kind: number, op: number, timeoutMs: number, receivedAtCall: number,
    resolve: Resolve, reject: Reject, key?: string, tokens = 0, waitMs = 0,
  ): void {
    const slot = id & this.mask;
    this.ids[slot] = id;
    this.kinds[slot] = kind;
    this.ops[slot] = op;
    this.startedAt[slot] = Infinity;
    this.timeoutMs[slot] = timeoutMs;
    this.deadlines[slot] = Infinity;
    this.unstarted.push(id);
    this.receivedAtCall[slot] = receivedAtCall;
    this.resolves[slot] = resolve;
    this.rejects[slot] = reject;
    this.keys[slot] = key;
    this.tokens[slot] = tokens;
    this.waitMs[slot] = waitMs;
    this.size++;
  }

  /** Starts the clock of every call added since the last start. */
  start(now: number): void {
    const list = this.unstarted;
    let earliest = this.earliestDeadline;
    for (let i = 0; i < list.length; i++) {
      const slot = this.find(list[i]);
      if (slot < 0) continue; // already answered or failed
      this.startedAt[slot] = now;
      const deadline = now + this.timeoutMs[slot];
      this.deadlines[slot] = deadline;
      if (deadline < earliest) earliest = deadline;
    }
    this.earliestDeadline = earliest;
    list.length = 0;
  }

  /** Frees a slot (its values stay readable until the slot is reused). */
  remove(slot: number): void {
    this.ids[slot] = 0;
    this.resolves[slot] = undefined;
    this.rejects[slot] = undefined;
    this.keys[slot] = undefined;
    this.size--;
  }

  /**
   * The slots of calls whose deadline is at or before `now`, in deadline
   * order; updates earliestDeadline to the earliest one not returned.
   * Scans every slot, but only when `now` has reached earliestDeadline.
   */
  expired(now: number): number[] {
    if (now < this.earliestDeadline) return NONE;
    const out: number[] = [];
    let earliest = Infinity;
    const { ids, deadlines } = this;
    for (let slot = 0; slot < ids.length; slot++) {
      if (ids[slot] === 0) continue;
      const d = deadlines[slot];
      if (d <= now) out.push(slot);
      else if (d < earliest) earliest = d;
    }
    this.earliestDeadline = earliest;
    return out.length > 1 ? out.sort((a, b) => deadlines[a] - deadlines[b]) : out;
  }

  /** Every slot in use, oldest call first (ties: lower id first). */
  inCallOrder(): number[] {
    const out: number[] = [];
    for (let slot = 0; slot < this.ids.length; slot++) if (this.ids[slot] !== 0) out.push(slot);
    const { startedAt, ids } = this;
    return out.sort((a, b) => (startedAt[a] === startedAt[b] ? ids[a] - ids[b] : startedAt[a] < startedAt[b] ? -1 : 1));
  }

  /** Doubles every array and moves each call to `id & newMask` (distinct slots stay distinct). */
  private grow(): void {
    const old = {
      ids: this.ids, kinds: this.kinds, ops: this.ops, startedAt: this.startedAt, timeoutMs: this.timeoutMs,
      deadlines: this.deadlines, receivedAtCall: this.receivedAtCall, keys: this.keys, tokens: this.tokens,
      waitMs: this.waitMs, resolves: this.resolves, rejects: this.rejects,
    };
    const n = old.ids.length * 2;
    this.mask = n - 1;
    this.ids = new Uint32Array(n);
    this.kinds = new Uint8Array(n);
    this.ops = new Uint8Array(n);
    this.startedAt = new Float64Array(n);
    this.timeoutMs = new Float64Array(n);
    this.deadlines = new Float64Array(n);
    this.receivedAtCall = new Float64Array(n);
    this.keys = new Array(n).fill(undefined);
    this.tokens = new Float64Array(n);
    this.waitMs = new Float64Array(n);
    this.resolves = new Array(n).fill(undefined);
    this.rejects = new Array(n).fill(undefined);
    for (let from = 0; from < old.ids.length; from++) {
      const id = old.ids[from];
      if (id === 0) continue;
      const to = id & this.mask;
      this.ids[to] = id;
      this.kinds[to] = old.kinds[from];
      this.ops[to] = old.ops[from];
      this.startedAt[to] = old.startedAt[from];
      this.timeoutMs[to] = old.timeoutMs[from];
      this.deadlines[to] = old.deadlines[from];
      this.receivedAtCall[to] = old.receivedAtCall[from];
      this.keys[to] = old.keys[from];
      this.tokens[to] = old.tokens[from];
      this.waitMs[to] = old.waitMs[from];
      this.resolves[to] = old.resolves[from];
      this.rejects[to] = old.rejects[from];
    }
  }
}

const NONE: number[] = [];
