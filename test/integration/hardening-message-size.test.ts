// A message over max_message_bytes closes with 1009 whatever its size,
// including over 16 MiB (PROTOCOL.md "Memory per connection is bounded"),
// and the daemon keeps serving. uWS cuts a frame above its maxPayloadLength
// at the header without a close frame (the client sees 1006), so the
// worker sets that limit far above any max_message_bytes the config allows
// (io-worker.ts MAX_FRAME_BYTES) and answers 1009 itself.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { RawClient, startTestDaemon } from '../fixtures/daemon.ts';

const MIB = 1024 * 1024;

async function stillServing(port: number): Promise<void> {
  const c = await RawClient.open(port);
  assert.equal((await c.call([1, 1, 'api/low', 1, 0]))[2], 0, 'still grants');
  c.close();
}

async function closeCodeFor(port: number, bytes: number): Promise<number> {
  const c = await RawClient.open(port);
  c.sendBytes(new Uint8Array(bytes));
  return c.closed(60_000);
}

describe('messages over max_message_bytes', () => {
  for (const maxMessageBytes of [65_536, 16 * MIB]) {
    describe(`max_message_bytes ${maxMessageBytes}`, () => {
      let daemon: Daemon;
      before(async () => { daemon = await startTestDaemon({ max_message_bytes: maxMessageBytes }); });
      after(async () => { await daemon.stop(); });

      for (const bytes of new Set([maxMessageBytes + 1, 16 * MIB + 1, 33 * MIB, 100 * MIB])) {
        it(`closes a message of ${bytes} bytes with 1009`, { timeout: 120_000 }, async () => {
          assert.equal(await closeCodeFor(daemon.port, bytes), 1009);
          await stillServing(daemon.port);
        });
      }
    });
  }
});
