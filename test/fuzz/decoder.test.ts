// Offline fuzz (no sockets): 100 000 generated messages through decodeAll,
// which may only ever throw DecodeError and must not hang; and 30 000 through
// one I/O thread's RequestHandler driven in-process, where every request must
// be answered exactly once with a well-formed reply, close codes must be the
// protocol's, the concurrency and queue gauges must match the leases and
// waiters after every message, and a RELEASE of a lease another connection
// holds must be UNKNOWN_LEASE and change nothing (handler-harness.ts). Both run in a worker
// under a watchdog that names the message of a hang or a crash.
// Seed: TPSD_FUZZ_SEED (default fixed); longer runs: npm run fuzz.

import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { runOfflineFuzz, type OfflineResult } from './offline.ts';

const SEED = Number(process.env.TPSD_FUZZ_SEED ?? 20_240_601);

function report(t: TestContext, r: OfflineResult): void {
  if (r.crash) assert.fail(`${r.crash.what} on message ${r.crash.index} (seed ${SEED}); bytes: ${r.crash.hex}`);
  const s = r.stats!;
  t.diagnostic(`seed ${SEED}: ${s.frames} messages in ${s.seconds.toFixed(1)} s (${Math.round(s.frames / s.seconds)}/s), ` +
    `decode errors ${JSON.stringify(s.decodeErrors)}, slowest decode ${s.maxDecodeMs.toFixed(1)} ms`);
  if (s.handlerFrames > 0) t.diagnostic(`handler: ${JSON.stringify(s.harness)}`);
  t.diagnostic(`known-bug messages skipped: ${JSON.stringify(s.skipped)}`);
  assert.deepEqual(s.violations, [], `violations (seed ${SEED})`);
}

describe('offline fuzz', () => {
  it('decodeAll only throws DecodeError and never hangs (100 000 messages)', async (t) => {
    const r = await runOfflineFuzz({ frames: 100_000, handlerFrames: 0, seed: SEED });
    report(t, r);
    assert.equal(r.stats!.frames, 100_000);
    assert.ok(r.stats!.decodeErrors.incomplete > 1000 && r.stats!.decodeErrors.corrupt > 1000, 'both kinds of bad input were generated');
  });

  it('the request handler answers every request once and keeps its gauges exact (30 000 messages)', async (t) => {
    const r = await runOfflineFuzz({ frames: 30_000, handlerFrames: 30_000, seed: SEED + 1 });
    report(t, r);
    const h = r.stats!.harness;
    assert.ok(h.grants > 1000 && h.releases + h.expired === h.grants,
      `leases granted (${h.grants}), each released (${h.releases}) or expired (${h.expired}) by the end`);
    assert.ok(h.releases > 1000 && h.expired > 100, 'both ways of ending a lease were exercised');
    assert.ok(h.foreignReleases > 100, `RELEASEs of other connections' leases were tried (${h.foreignReleases})`);
    assert.ok((h.closes['1002'] ?? 0) > 1000 && (h.closes['1009'] ?? 0) > 10, 'protocol-error and too-big closes were exercised');
  });
});
