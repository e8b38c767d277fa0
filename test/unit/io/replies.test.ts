// The reply frames (src/io/replies.ts) byte for byte, as PROTOCOL.md gives
// them, and the server name the daemon gives in HELLO and STATUS.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { writeBody, writeDenied, writeError, writeGranted, writeReleased } from '../../../src/io/replies.ts';
import { SERVER_NAME } from '../../../src/io/server-name.ts';
import { MsgWriter, decodeAll } from '../../../src/protocol/codec.ts';

const hex = (write: (w: MsgWriter) => void): string => {
  const w = new MsgWriter();
  write(w);
  return Buffer.from(w.take()).toString('hex');
};

test('each reply frame has the bytes of its hand-written MessagePack form', () => {
  // [1, 7, 0, 300, 5]: fixarray 5, uint 300 as uint16.
  assert.equal(hex((w) => writeGranted(w, 7, 300, 5)), '95010700cd012c05');
  // [1, 70000, 1, 0, 250]: id as uint32, retry as uint8.
  assert.equal(hex((w) => writeDenied(w, 70_000, 250)), '9501ce000111700100ccfa');
  // [2, 9, 0]
  assert.equal(hex((w) => writeReleased(w, 9)), '930209' + '00');
  // [1, 3, 19, "no"]: fixarray 4, fixstr 2.
  assert.equal(hex((w) => writeError(w, 1, 3, 19, 'no')), '94010313a26e6f');
  // [3, 4, 0, {a: 1}]: the body through msgpackr.
  assert.equal(hex((w) => writeBody(w, 3, 4, { a: 1 })), '94030400' + '81a16101');
});

test('frames written one after another decode as the replies they stand for', () => {
  const w = new MsgWriter();
  writeGranted(w, 1, 2 ** 40, 0);
  writeDenied(w, 2, 1);
  writeReleased(w, 3);
  writeError(w, 16, 4, 21, 'the server is shutting down');
  writeBody(w, 0, 5, { v: 1, server: SERVER_NAME, tick_ms: 100 });
  assert.deepEqual(decodeAll(w.take()), [
    [1, 1, 0, 2 ** 40, 0], [1, 2, 1, 0, 1], [2, 3, 0], [16, 4, 21, 'the server is shutting down'],
    [0, 5, 0, { v: 1, server: SERVER_NAME, tick_ms: 100 }],
  ]);
});

test('the server name carries the version in package.json', () => {
  const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(SERVER_NAME, `tpsd/${version}`);
});
