// `npm run bench:native -- --help` prints its usage and exits 0 without
// running any benchmark (it threw ERR_PARSE_ARGS_UNKNOWN_OPTION before).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('bench:native --help', () => {
  it('prints the options and the benchmarks, exit code 0', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'native-bench/run.ts', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    for (const word of ['--trials', '--only', '--seconds', '--write', 'tenant-acquire', 'bucket-take']) assert.ok(r.stdout.includes(word), `usage names ${word}:\n${r.stdout}`);
    assert.equal(r.stderr.includes('trial 1/'), false, 'no benchmark ran');
  });
});
