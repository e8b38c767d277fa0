// `tpsd check-config` as a user runs it: a child process per case, checking
// exit codes (0 valid, 1 invalid, 2 usage), stdout and stderr.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../fixtures/temp-dir.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'src/cli/main.ts');

function tpsd(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.TPSD_LOG_LEVEL;
  const result = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT, env, encoding: 'utf8', timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('tpsd check-config', () => {
  const dir = tempDir('tpsd-cli-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };
  const pools = [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'LOW' }] }];

  it('prints the effective config and exits 0', () => {
    const r = tpsd('check-config', write('ok.json', { pools }));
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(r.stdout);
    assert.equal(config.tick_ms, 1000);
    assert.deepEqual(config.pools[0].services[0], {
      name: 's', priority: 'LOW', min_tps: 0, max_tps: 100, burst: 20, concurrency: 0, endpoints: [],
    });
  });

  it('accepts the shipped default config', () => {
    const r = tpsd('check-config', 'config/default.json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).pools[0].name, 'payments');
  });

  it('redacts tokens unless --show-secrets', () => {
    const file = write('auth.json', { pools, auth: { tokens: [{ token: 'hunter2' }] } });
    const hidden = tpsd('check-config', file);
    assert.equal(hidden.code, 0, hidden.stderr);
    assert.equal(JSON.parse(hidden.stdout).auth.tokens[0].token, '<redacted>');
    const shown = tpsd('check-config', '--show-secrets', file);
    assert.equal(JSON.parse(shown.stdout).auth.tokens[0].token, 'hunter2');
  });

  it('lists every error with its path and exits 1', () => {
    const file = write('bad.json', {
      pools: [{ name: 'p', capacity_tps: 100, services: [{ name: 's', priority: 'URGENT', burts: 3 }] }],
    });
    const r = tpsd('check-config', file);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(file), r.stderr);
    assert.ok(r.stderr.includes('pools[0].services[0].priority: expected one of CRITICAL, HIGH, MEDIUM, LOW, found "URGENT"'), r.stderr);
    assert.ok(r.stderr.includes('did you mean "burst"?'), r.stderr);
  });

  it('exits 1 naming the file when it is missing or not JSON', () => {
    const missing = path.join(dir, 'nope.json');
    const r1 = tpsd('check-config', missing);
    assert.equal(r1.code, 1);
    assert.ok(r1.stderr.includes(missing), r1.stderr);
    const broken = write('broken.json', '{"pools": ');
    const r2 = tpsd('check-config', broken);
    assert.equal(r2.code, 1);
    assert.ok(r2.stderr.includes(broken) && r2.stderr.includes('invalid JSON'), r2.stderr);
  });

  it('exits 2 on usage errors', () => {
    const noFile = tpsd('check-config');
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /missing FILE/);
    const badFlag = tpsd('check-config', '--verbose', 'config/default.json');
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /unknown flag --verbose/);
    const unknownVerb = tpsd('frobnicate');
    assert.equal(unknownVerb.code, 2);
    assert.match(unknownVerb.stderr, /unknown verb "frobnicate"/);
    assert.match(unknownVerb.stderr, /check-config/);
  });

  it('prints help and exits 0', () => {
    const verbHelp = tpsd('check-config', '--help');
    assert.equal(verbHelp.code, 0);
    assert.match(verbHelp.stdout, /^Usage: tpsd check-config/);
    const usage = tpsd('--help');
    assert.equal(usage.code, 0);
    assert.match(usage.stdout, /start/);
    assert.match(usage.stdout, /check-config/);
  });
});
