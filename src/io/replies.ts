// The reply frames of protocol v1 (PROTOCOL.md "Requests and replies",
// "Errors"), each written in one place: the request handler (replies to the
// message being read) and the waiter drain (replies that come later, on the
// connection's deferred writer) both write through these.
//
// Threads: pure functions over the MsgWriter they are given, which belongs to
// the calling I/O thread. Hot path: a frame is the same chain of MsgWriter
// calls the callers once wrote inline, with no closure, object or array made
// per reply (only writeBody encodes its map through msgpackr).

import type { MsgWriter } from '../protocol/codec.ts';
import { OP_ACQUIRE, OP_RELEASE, STATUS_DENIED, STATUS_OK } from '../protocol/opcodes.ts';

/** `[op, id, code, message]`: the error reply of any op. */
export function writeError(w: MsgWriter, op: number, id: number, code: number, message: string): void {
  w.array(4).uint(op).uint(id).uint(code).str(message);
}

/** `[1, id, 0, lease, remaining]`: ACQUIRE granted. */
export function writeGranted(w: MsgWriter, id: number, lease: number, remaining: number): void {
  w.array(5).uint(OP_ACQUIRE).uint(id).uint(STATUS_OK).uint(lease).uint(remaining);
}

/** `[1, id, 1, 0, retry_after_ms]`: ACQUIRE denied (no tokens within wait_ms). */
export function writeDenied(w: MsgWriter, id: number, retryAfterMs: number): void {
  w.array(5).uint(OP_ACQUIRE).uint(id).uint(STATUS_DENIED).uint(0).uint(retryAfterMs);
}

/** `[2, id, 0]`: RELEASE done (sent only when id is not 0). */
export function writeReleased(w: MsgWriter, id: number): void {
  w.array(3).uint(OP_RELEASE).uint(id).uint(STATUS_OK);
}

/** `[op, id, 0, body]`: success with a map (HELLO, STATUS, LIMITS), encoded by msgpackr. */
export function writeBody(w: MsgWriter, op: number, id: number, body: unknown): void {
  w.array(4).uint(op).uint(id).uint(STATUS_OK).value(body);
}
