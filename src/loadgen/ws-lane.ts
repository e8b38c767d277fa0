// The raw WebSocket connection of the load generator (client "raw"):
// ws-wire.ts underneath, pre-encoded frames (frames.ts), replies read without
// full decoding. Works against tpsd and against the bare echo server: the
// reply to the first message (HELLO) tells which one answers.
//
// Single-threaded: owned by one load worker thread. A frame is patched only
// for a ring slot whose previous message was answered (see frameCount), so a
// buffer still queued in the socket is never changed.
//
// With spec.release, the leases granted in one reply message go back in one
// message of RELEASEs (id 0: no reply, outcome ok), sent at once.

import { MsgWriter, decodeAll } from '../protocol/codec.ts';
import { OP_ACQUIRE, OP_HELLO, OP_RELEASE, PROTOCOL_VERSION } from '../protocol/opcodes.ts';
import type { Lane, LaneSink } from './engine.ts';
import {
  ECHOED, HELLO_ID, MalformedReply, ReplyReader, buildFrames, frameCount, idScheme, patchIds, seqOfId, slotOfId,
} from './frames.ts';
import { wsUrl, type LoadSpec } from './spec.ts';
import { WireSocket, clientFrame, frameHeader } from './ws-wire.ts';

const OPEN_TIMEOUT_MS = 10_000;

export type ServerKind = 'tpsd' | 'echo';

/** Sends HELLO and tells from the reply who answers: tpsd (a HELLO reply) or an echo server (our HELLO back). */
function hello(ws: WireSocket, token: string | null): Promise<ServerKind> {
  const body: Record<string, unknown> = { v: PROTOCOL_VERSION, name: 'tpsd-bench' };
  if (token !== null) body.token = token;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no HELLO reply within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
    ws.onClose = (code, reason) => { clearTimeout(timer); reject(new Error(`closed during HELLO (code ${code}: ${reason})`)); };
    ws.onMessage = (buf, start, end) => {
      clearTimeout(timer);
      let reply: unknown;
      try { reply = decodeAll(buf.subarray(start, end))[0]; } catch (err) { reject(err); return; }
      if (!Array.isArray(reply) || reply[0] !== OP_HELLO || reply[1] !== HELLO_ID) reject(new Error('unexpected reply to HELLO'));
      else if (reply[2] === 0) resolve('tpsd');
      else if (typeof reply[2] === 'object' && reply[2] !== null) resolve('echo');
      else reject(new Error(`HELLO refused: code ${String(reply[2])} ${String(reply[3] ?? '')}`));
    };
    ws.send(clientFrame(new MsgWriter(64).array(3).uint(OP_HELLO).uint(HELLO_ID).value(body).take()));
  });
}

export async function openWsLane(spec: LoadSpec, index: number, sink: LaneSink): Promise<{ lane: Lane; server: ServerKind }> {
  const ws = await WireSocket.open(wsUrl(spec.url), OPEN_TIMEOUT_MS);
  let server: ServerKind;
  try { server = await hello(ws, spec.token); } catch (err) { await ws.close(1000, 100); throw err; }

  const scheme = idScheme(spec.batch, spec.pipeline);
  const frames = buildFrames(spec.keys, spec.batch, index * spec.batch, frameCount(spec.keys.length, spec.batch, scheme.ring),
    (n) => frameHeader(n));
  const intended = new Float64Array(scheme.ring);
  const remaining = new Int32Array(scheme.ring);
  const slotSeq = new Float64Array(scheme.ring).fill(-1);
  const reader = new ReplyReader();
  const releases = spec.release && server === 'tpsd' ? new MsgWriter(64 * spec.batch) : null;
  let closing = false;
  let broken = false;

  // Hot path: no closures created per message (tsx wraps named ones in a defineProperty call).
  ws.onMessage = (buf, start, end) => {
    if (broken) return;
    reader.reset(buf.subarray(start, end));
    // The replies of one message usually answer one request message: record them as runs of (slot, status).
    let runSlot = -1;
    let runStatus = 0;
    let runCount = 0;
    try {
      while (reader.next()) {
        const slot = reader.op === OP_ACQUIRE ? slotOfId(reader.id, scheme) : -1;
        if (slot < 0 || slotSeq[slot] !== seqOfId(reader.id, scheme)) {
          if (runCount > 0) { sink.replies(intended[runSlot], runStatus, runCount); runCount = 0; }
          sink.failures(performance.now(), `reply with unexpected op/id [${reader.op}, ${reader.id}]`, 1);
          continue;
        }
        const status = reader.status;
        if (server === 'tpsd' && status === ECHOED) throw new MalformedReply('a reply whose status is not an integer');
        if (slot !== runSlot || status !== runStatus) {
          if (runCount > 0) { sink.replies(intended[runSlot], runStatus, runCount); runCount = 0; }
          runSlot = slot;
          runStatus = status;
        }
        runCount++;
        if (releases !== null && reader.lease !== 0) releases.array(5).uint(OP_RELEASE).uint(0).uint(reader.lease).uint(0).uint(0);
        if (--remaining[slot] === 0) {
          sink.replies(intended[slot], runStatus, runCount);
          runCount = 0;
          slotSeq[slot] = -1;
          sink.complete();
        }
      }
      if (runCount > 0) sink.replies(intended[runSlot], runStatus, runCount);
      if (releases !== null && releases.length > 0) { ws.send(clientFrame(releases.view())); releases.reset(); }
    } catch (err) {
      if (!(err instanceof MalformedReply)) throw err;
      broken = true;
      sink.failures(performance.now(), `malformed reply: ${err.message}`, 1);
      sink.lost('malformed reply');
      void ws.close(1002, 100);
    }
  };
  ws.onClose = (code, reason) => { if (!closing) sink.lost(`closed (code ${code}${reason ? `: ${reason}` : ''})`); };

  const lane: Lane = {
    submit(seq, intendedMs) {
      const slot = seq % scheme.ring;
      const frame = frames[seq % frames.length];
      patchIds(frame, scheme, seq);
      intended[slot] = intendedMs;
      remaining[slot] = spec.batch;
      slotSeq[slot] = seq % scheme.seqWrap;
      ws.send(frame.bytes);
    },
    close() {
      closing = true;
      return ws.close(1000, 1000);
    },
  };
  return { lane, server };
}
