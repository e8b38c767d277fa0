// Worker-thread entry of the offline fuzz (started by offline.ts through
// src/thread-bootstrap.mjs): generates messages, checks that decodeAll only
// ever throws DecodeError, and feeds each message to the in-process
// RequestHandler harness; between messages, now and then, the client
// disconnects, a second connection takes or returns a lease (leases the
// fuzzed connection's RELEASEs then try), or the lease TTL passes. Before each message it publishes the message's
// index and bytes in shared memory, so that a hang or a crash, which the
// parent detects, names the exact input.

import { parentPort, workerData } from 'node:worker_threads';
import { DecodeError } from '../../src/protocol/codec.ts';
import { FrameFuzzer, JUNK_KEYS, Rng, decode, type FrameKind } from './frame-fuzzer.ts';
import { HandlerHarness } from './handler-harness.ts';

export interface FuzzWorkerData {
  entry: string;
  frames: number;
  /** How many of the messages (the first ones) also go to the handler harness. */
  handlerFrames: number;
  seed: number;
  includeKnownBugs: boolean;
  /** Int32 [index of the message being processed, its length]; bytes follow at offset 8. */
  current: SharedArrayBuffer;
}

export interface OfflineStats {
  frames: number;
  handlerFrames: number;
  seconds: number;
  kinds: Partial<Record<FrameKind, number>>;
  decodeErrors: { incomplete: number; corrupt: number };
  maxDecodeMs: number;
  harness: HandlerHarness['stats'];
  violations: string[];
  skipped: Record<string, number>;
}

const data = workerData as FuzzWorkerData;
const head = new Int32Array(data.current, 0, 2);
const body = new Uint8Array(data.current, 8);
const harness = new HandlerHarness();
const choices = new Rng(data.seed ^ 0x5bd1e995);
const fuzzer: FrameFuzzer = new FrameFuzzer(data.seed, {
  keys: [...JUNK_KEYS, 'acct', 'acct/held'],
  maxMessageBytes: harness.config.max_message_bytes,
  lease: () => harness.liveLease(choices.u32()),
  includeKnownBugs: data.includeKnownBugs,
});
const stats: OfflineStats = {
  frames: 0, handlerFrames: Math.min(data.frames, data.handlerFrames), seconds: 0, kinds: {}, decodeErrors: { incomplete: 0, corrupt: 0 }, maxDecodeMs: 0,
  harness: harness.stats, violations: harness.violations, skipped: fuzzer.skipped,
};
const t0 = performance.now();
for (let i = 0; i < data.frames; i++) {
  const f = fuzzer.next();
  head[1] = Math.min(f.bytes.length, body.length);
  body.set(f.bytes.subarray(0, body.length));
  Atomics.store(head, 0, i);
  stats.kinds[f.kind] = (stats.kinds[f.kind] ?? 0) + 1;
  const { error, ms } = f.decoded ?? decode(f.bytes); // the known-bug filter decoded it already
  stats.maxDecodeMs = Math.max(stats.maxDecodeMs, ms);
  if (error instanceof DecodeError) stats.decodeErrors[error.kind]++;
  else if (error !== null && harness.violations.length < 50) harness.violations.push(`message ${i} (${f.kind}): decodeAll threw ${String(error)}, not a DecodeError`);
  if (i < data.handlerFrames) {
    harness.feed(f.bytes, `message ${i} (${f.kind})`);
    if (choices.chance(0.01)) harness.disconnect('client');
    // Leases of another open connection for the fuzzed one to try; now and then every lease's TTL runs out.
    if (choices.chance(0.05)) harness.neighbourStep(choices.u32());
    if (choices.chance(0.005)) harness.ttlPasses();
  }
  stats.frames++;
  if (i % 2000 === 0) parentPort!.postMessage({ type: 'progress', done: i });
}
harness.finish();
stats.seconds = (performance.now() - t0) / 1000;
parentPort!.postMessage({ type: 'done', stats });
