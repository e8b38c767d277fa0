// `npm run fuzz -- [--frames N] [--live-frames N] [--seed S] [--include-known-bugs]`:
// the fuzzers of the test suite (decoder.test.ts, live.test.ts) run longer.
// Offline: N messages through decodeAll and the in-process request handler,
// in a worker under a watchdog. Live: against a daemon started here on port 0,
// then the after-check (no leaked slot, waiter or lease). Prints messages/s,
// violations and crashes, and the seed that reproduces the run; exits 1 when
// anything was found.
//
// --include-known-bugs sends the inputs of KNOWN_BUGS too (frame-fuzzer.ts):
// expect a hang, a crash or a dead daemon until they are fixed.

import { randomInt } from 'node:crypto';
import { runVerb, type VerbSpec } from '../../src/cli/args.ts';
import { startTestDaemon } from '../fixtures/daemon.ts';
import { KNOWN_BUGS } from './known-bugs.ts';
import { LIVE_CONFIG, checkRecovered, runLiveFuzz } from './live-fuzz.ts';
import { runOfflineFuzz } from './offline.ts';

const SPEC: VerbSpec = {
  name: 'fuzz',
  summary: 'Fuzz the protocol decoder, the request handler and a live daemon.',
  flags: {
    frames: { type: 'integer', min: 0, value: 'N', help: 'offline messages (default 500000)' },
    'live-frames': { type: 'integer', min: 0, value: 'N', help: 'messages sent to a live daemon (default 100000)' },
    seed: { type: 'integer', min: 0, max: 0xffffffff, value: 'S', help: 'seed (default: random, printed)' },
    'include-known-bugs': { type: 'boolean', help: 'do not skip the inputs of known, unfixed bugs' },
  },
};

async function main(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const frames = args.number('frames') ?? 500_000;
    const liveFrames = args.number('live-frames') ?? 100_000;
    const seed = args.number('seed') ?? randomInt(0xffffffff);
    const includeKnownBugs = args.boolean('include-known-bugs');
    const again = `npm run fuzz -- --seed ${seed} --frames ${frames} --live-frames ${liveFrames}${includeKnownBugs ? ' --include-known-bugs' : ''}`;
    const out = (s: string) => process.stdout.write(`${s}\n`);
    out(`seed ${seed}`);
    if (!includeKnownBugs && KNOWN_BUGS.length > 0) out(`skipping inputs of known bugs: ${KNOWN_BUGS.map((k) => k.id).join(', ')}`);
    let crashes = 0, violations = 0;
    if (frames > 0) {
      let last = Date.now();
      const r = await runOfflineFuzz({
        frames, seed, includeKnownBugs,
        onProgress: (done) => { if (Date.now() - last > 10_000) { last = Date.now(); out(`  offline: ${done} messages`); } },
      });
      if (r.crash) { crashes++; out(`offline: CRASH ${r.crash.what} on message ${r.crash.index}; bytes ${r.crash.hex}`); }
      if (r.stats) {
        const s = r.stats;
        violations += s.violations.length;
        out(`offline: ${s.frames} messages in ${s.seconds.toFixed(1)} s, ${Math.round(s.frames / s.seconds)} messages/s; ` +
          `decode errors ${JSON.stringify(s.decodeErrors)}; slowest decode ${s.maxDecodeMs.toFixed(1)} ms`);
        out(`offline: handler ${JSON.stringify(s.harness)}`);
        out(`offline: known-bug messages skipped ${JSON.stringify(s.skipped)}`);
        for (const v of s.violations) out(`offline: VIOLATION ${v}`);
      }
    }
    if (liveFrames > 0) {
      const daemon = await startTestDaemon(LIVE_CONFIG);
      try {
        const r = await runLiveFuzz({ port: daemon.port, frames: liveFrames, seed, includeKnownBugs });
        violations += r.violations.length;
        out(`live: ${r.frames} messages in ${r.seconds.toFixed(1)} s, ${Math.round(r.frames / r.seconds)} messages/s; ` +
          `closes ${JSON.stringify(r.closes)}; clean requests ${r.cleanRequests}, barriers ${r.barriers}; ` +
          `other connections' leases tried: ${r.foreignReleases} clean, ${r.cleanLeasesToDirty} fuzzed`);
        out(`live: known-bug messages skipped ${JSON.stringify(r.skipped)}`);
        for (const v of r.violations) out(`live: VIOLATION ${v}`);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, r.dirtyDoneAt + LIVE_CONFIG.lease_ttl_ms + 300 - performance.now())));
        try { await checkRecovered(daemon.port); out('live: after-check passed (no leaked slot, waiter or lease)'); } catch (err) {
          violations++;
          out(`live: VIOLATION after-check: ${(err as Error).message}`);
        }
      } finally {
        await daemon.stop();
      }
    }
    out(`crashes ${crashes}, violations ${violations}; seed ${seed} (again: ${again})`);
    return crashes + violations > 0 ? 1 : 0;
  });
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`fuzz: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
