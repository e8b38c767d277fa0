// Micro-benchmark of the protocol codec (src/protocol/codec.ts): decodeAll on
// incoming messages and the MsgWriter hand encoder for replies.
//
// Cases:
//   - decode a message holding one ACQUIRE request [1, id, key, tokens, wait_ms];
//   - encode one ACQUIRE reply [1, id, 0, lease, remaining] with MsgWriter
//     (array(5) + 5 x uint, then view() and reset(), as the I/O thread does);
//   - decode a message holding 64 ACQUIRE requests (ops = requests, not messages).
// Baselines, same process and run, on the same values:
//   - msgpackr: a plain Packr/Unpackr (useRecords: false): pack, unpack and
//     unpackMultiple;
//   - a fixed layout: the same 5 fields as big-endian uint32 in a DataView (the
//     key is carried as a uint32 bucket index, as a fixed-layout protocol would);
//     the lower bound of any encoding of these messages.
// Inputs cycle through 256 prepared messages (ids, keys and waits differ), so
// no case decodes one constant buffer.
//
// Run: node --import tsx native-bench/codec.ts [--json] [--seconds S]

import { Packr, Unpackr } from 'msgpackr';
import { MsgWriter, decodeAll } from '../src/protocol/codec.ts';
import { OP_ACQUIRE, STATUS_OK } from '../src/protocol/opcodes.ts';
import { type CaseResult, benchArgs, lastCpuOpsPerSec, measure, report } from './harness.ts';

const args = benchArgs();
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

const MESSAGES = 256; // power of two: index with & (MESSAGES - 1)
const BATCH = 64;
const FIELDS = 5;
const FIXED_BYTES = FIELDS * 4;
const KEYS = ['payments/card/authorize', 'payments/card/capture', 'search/query', 'search'];

interface Request { id: number; key: number; tokens: number; waitMs: number }
const requestAt = (i: number): Request => ({ id: 1000 + i * 7, key: i % KEYS.length, tokens: 1 + (i % 3), waitMs: (i % 4) * 50 });

function writeRequest(w: MsgWriter, r: Request): void {
  w.array(FIELDS).uint(OP_ACQUIRE).uint(r.id).str(KEYS[r.key]).uint(r.tokens).uint(r.waitMs);
}
function writeFixed(dv: DataView, at: number, r: Request): void {
  dv.setUint32(at, OP_ACQUIRE); dv.setUint32(at + 4, r.id); dv.setUint32(at + 8, r.key);
  dv.setUint32(at + 12, r.tokens); dv.setUint32(at + 16, r.waitMs);
}

// One request per message.
const single: Uint8Array[] = [];
const fixedSingle = new DataView(new ArrayBuffer(MESSAGES * FIXED_BYTES));
// BATCH requests per message.
const batched: Uint8Array[] = [];
const fixedBatched: DataView[] = [];
{
  const w = new MsgWriter();
  for (let m = 0; m < MESSAGES; m++) {
    writeRequest(w, requestAt(m));
    single.push(w.take());
    writeFixed(fixedSingle, m * FIXED_BYTES, requestAt(m));
    const dv = new DataView(new ArrayBuffer(BATCH * FIXED_BYTES));
    for (let r = 0; r < BATCH; r++) {
      writeRequest(w, requestAt(m * BATCH + r));
      writeFixed(dv, r * FIXED_BYTES, requestAt(m * BATCH + r));
    }
    batched.push(w.take());
    fixedBatched.push(dv);
  }
  // The messages must decode to the requests they were written from.
  const check = decodeAll(batched[3]) as unknown[][];
  const want = requestAt(3 * BATCH + 5);
  if (check.length !== BATCH || check[5][1] !== want.id || check[5][2] !== KEYS[want.key]) {
    throw new Error('prepared batch does not decode to its requests');
  }
}

// --- decode, one request per message -------------------------------------

const decodeOne = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += ((decodeAll(single[i & (MESSAGES - 1)])[0]) as number[])[1];
  return acc;
};
const unpackOne = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += (unpackr.unpack(single[i & (MESSAGES - 1)]) as number[])[1];
  return acc;
};
const fixedDecodeOne = (n: number) => {
  const dv = fixedSingle;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const at = (i & (MESSAGES - 1)) * FIXED_BYTES;
    acc += dv.getUint32(at) + dv.getUint32(at + 4) + dv.getUint32(at + 8) + dv.getUint32(at + 12) + dv.getUint32(at + 16);
  }
  return acc;
};

// --- encode one reply [1, id, 0, lease, remaining] ---------------------------

const writer = new MsgWriter();
const encodeReply = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) {
    writer.array(FIELDS).uint(OP_ACQUIRE).uint(1000 + i).uint(STATUS_OK).uint((i & 0xffff) + 1).uint(i & 1023);
    acc += writer.view().length;
    writer.reset();
  }
  return acc;
};
const packReply = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += packr.pack([OP_ACQUIRE, 1000 + i, STATUS_OK, (i & 0xffff) + 1, i & 1023]).length;
  return acc;
};
const fixedOut = new DataView(new ArrayBuffer(FIXED_BYTES));
const fixedEncodeReply = (n: number) => {
  const dv = fixedOut;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    dv.setUint32(0, OP_ACQUIRE); dv.setUint32(4, 1000 + i); dv.setUint32(8, STATUS_OK);
    dv.setUint32(12, (i & 0xffff) + 1); dv.setUint32(16, i & 1023);
    acc += FIXED_BYTES;
  }
  return acc;
};

// --- decode, BATCH requests per message (n = messages) ---------------------

const decodeBatch = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += decodeAll(batched[i & (MESSAGES - 1)]).length;
  return acc;
};
const unpackBatch = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += (unpackr.unpackMultiple(batched[i & (MESSAGES - 1)]) as unknown[]).length;
  return acc;
};
const fixedDecodeBatch = (n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const dv = fixedBatched[i & (MESSAGES - 1)];
    for (let at = 0; at < BATCH * FIXED_BYTES; at += FIXED_BYTES) {
      acc += dv.getUint32(at) + dv.getUint32(at + 4) + dv.getUint32(at + 8) + dv.getUint32(at + 12) + dv.getUint32(at + 16);
    }
  }
  return acc;
};

const DEC = 'decodeAll, 1 ACQUIRE per message';
const ENC = 'MsgWriter, 1 ACQUIRE reply';
const BAT = `decodeAll, ${BATCH} ACQUIRE per message (per request)`;
const s = args.seconds;
const cases: CaseResult[] = [
  { case: DEC, opsPerSec: measure(decodeOne, s), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  { case: 'msgpackr unpack, 1 request', opsPerSec: measure(unpackOne, s), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: true, baselineOf: DEC },
  { case: 'fixed DataView, decode 5 x uint32', opsPerSec: measure(fixedDecodeOne, s), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: true, baselineOf: DEC },
  { case: ENC, opsPerSec: measure(encodeReply, s), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  { case: 'msgpackr pack, 1 reply', opsPerSec: measure(packReply, s), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: true, baselineOf: ENC },
  { case: 'fixed DataView, encode 5 x uint32', opsPerSec: measure(fixedEncodeReply, s), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: true, baselineOf: ENC },
  { case: BAT, opsPerSec: measure(decodeBatch, s, undefined, BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: false },
  {
    case: `msgpackr unpackMultiple, ${BATCH} per message (per request)`,
    opsPerSec: measure(unpackBatch, s, undefined, BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: true, baselineOf: BAT,
  },
  {
    case: `fixed DataView, ${BATCH} x 5 uint32 (per request)`,
    opsPerSec: measure(fixedDecodeBatch, s, undefined, BATCH), cpuOpsPerSec: lastCpuOpsPerSec(), baseline: true, baselineOf: BAT,
  },
];
report({ name: 'codec', cases }, args);
