// How long `tpsd start` takes to listen, launched as an operator launches it
// (bench/servers.ts: node bin/tpsd.mjs start), for this checkout and a
// baseline commit, alternated in the same run: the small bench config (16
// keys) and the memory benchmark's 100 000 keys. Wall time from spawn to the
// "listening" log line, median of the rounds.
//
// Run: npx tsx bench/start-time.ts --baseline REF [--rounds 5] [--keys 100000]

import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchConfig, manyKeysConfig } from './bench-config.ts';
import { baselineWorktree } from './idle-keys.ts';
import { ROOT, startTpsd } from './servers.ts';

const { values } = parseArgs({ options: { baseline: { type: 'string' }, rounds: { type: 'string', default: '5' }, keys: { type: 'string', default: '100000' } } });
if (values.baseline === undefined) throw new Error('--baseline REF is required');
const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
const wt = baselineWorktree(values.baseline);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function listenMs(root: string, config: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  const s = await startTpsd({ config, root });
  const ms = performance.now() - t0;
  await s.stop();
  return ms;
}

try {
  const configs: [string, Record<string, unknown>][] = [['16 keys', benchConfig({ keys: 16, ioThreads: 2 })], [`${values.keys} keys`, manyKeysConfig(Number(values.keys), 2)]];
  for (const [what, config] of configs) {
    const before: number[] = [], after: number[] = [];
    for (let r = 0; r < Number(values.rounds); r++) {
      before.push(await listenMs(wt.dir, config));
      after.push(await listenMs(ROOT, config));
    }
    process.stdout.write(`${what}: before (${values.baseline}) ${median(before).toFixed(0)} ms [${before.map((x) => x.toFixed(0)).join(', ')}], ` +
      `after (${head}) ${median(after).toFixed(0)} ms [${after.map((x) => x.toFixed(0)).join(', ')}], ratio ${(median(after) / median(before)).toFixed(2)}; load ${loadavg()[0].toFixed(2)}\n`);
  }
} finally {
  wt.remove();
}
