// The systemd unit (systemd/tpsd.service) and `tpsd install-service`.
//
// The unit is checked with `systemd-analyze verify` (must print nothing) and
// `systemd-analyze security --offline` (exposure must stay in the "OK" band),
// which both only read the file: nothing is installed or started. Skipped,
// visibly, where systemd-analyze is not installed (apt-get install systemd).
// install-service runs as a child process against a temporary --prefix.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_PATH, SHIPPED_BIN, UNIT_PATH, UNIT_SOURCE, unitText } from '../../src/cli/install-service.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { tempDir } from '../fixtures/temp-dir.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const ANALYZE = 'systemd-analyze';
const hasAnalyze = spawnSync(ANALYZE, ['--version'], { encoding: 'utf8' }).status === 0;

function tpsd(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A copy of the unit, as install-service would write it, whose ExecStart runs
 * this checkout: `verify` fails when ExecStart's binary does not exist, and
 * /usr/local/bin/tpsd exists only where tpsd was installed globally. Every
 * other line is the shipped unit's, so the directives verified are the real
 * ones. The file must be named tpsd.service for verify to accept it.
 */
function verifiableUnit(): string {
  const dir = tempDir('tpsd-unit-');
  const file = join(dir, 'tpsd.service');
  writeFileSync(file, unitText(`${process.execPath} ${join(ROOT, 'bin/tpsd.mjs')}`));
  return file;
}

/** Directive=value pairs of a unit file (comments and sections dropped). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

describe('systemd unit', () => {
  it('passes systemd-analyze verify with no output', (t) => {
    if (!hasAnalyze) { t.skip('systemd-analyze not installed (apt-get install -y systemd)'); return; }
    const r = spawnSync(ANALYZE, ['verify', '--man=no', verifiableUnit()], { encoding: 'utf8' });
    assert.equal(`${r.stdout}${r.stderr}`, '', 'verify prints nothing');
    assert.equal(r.status, 0);
  });

  it('keeps its exposure in the OK band of systemd-analyze security (<= 2.0)', (t) => {
    if (!hasAnalyze) { t.skip('systemd-analyze not installed (apt-get install -y systemd)'); return; }
    const r = spawnSync(ANALYZE, ['security', '--offline=yes', '--threshold=20', '--no-pager', verifiableUnit()], { encoding: 'utf8' });
    const overall = /Overall exposure level for tpsd\.service: ([\d.]+)/.exec(r.stdout);
    assert.ok(overall, `no overall exposure in:\n${r.stdout}${r.stderr}`);
    t.diagnostic(`exposure ${overall[1]}`);
    assert.equal(r.status, 0, `exposure ${overall[1]} is above 2.0:\n${r.stdout}`);
  });

  it('runs tpsd start on /etc/tpsd/tpsd.json and /var/lib/tpsd, sandboxed, with room for 100k connections', () => {
    const d = directives(readFileSync(UNIT_SOURCE, 'utf8'));
    const one = (k: string) => d.get(k)?.at(-1);
    assert.equal(one('ExecStart'), `${SHIPPED_BIN} start --config /etc/tpsd/tpsd.json --data /var/lib/tpsd`);
    const expected: Record<string, string> = {
      Type: 'exec', DynamicUser: 'yes', StateDirectory: 'tpsd', ConfigurationDirectory: 'tpsd',
      NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes', ProtectKernelModules: 'yes', ProtectKernelLogs: 'yes', ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX', RestrictNamespaces: 'yes', LockPersonality: 'yes',
      MemoryMax: '1G', LimitNOFILE: '131072', Restart: 'on-failure', KillSignal: 'SIGTERM', TimeoutStopSec: '10',
      ExecReload: '/bin/kill -HUP $MAINPID',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(one(k), v, k);
    assert.ok(one('RestartSec'), 'RestartSec');
    assert.equal(d.get('MemoryDenyWriteExecute'), undefined, 'V8 needs W+X pages: MemoryDenyWriteExecute would kill node');
  });
});

describe('tpsd install-service', () => {
  it('--dry-run --prefix prints the prefixed paths and the next step, and writes nothing', () => {
    const prefix = tempDir('tpsd-root-');
    const r = tpsd('install-service', '--dry-run', '--prefix', prefix, '--bin', '/usr/bin/tpsd');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`would write ${join(prefix, UNIT_PATH)} \\(new\\)`));
    assert.match(r.stdout, new RegExp(`would write ${join(prefix, CONFIG_PATH)} \\(new`));
    assert.match(r.stdout, /systemctl daemon-reload && systemctl enable --now tpsd/);
    assert.deepEqual(readdirSync(prefix), [], 'nothing written');
  });

  it('--prefix writes the unit and a valid config, then keeps an edited config and replaces a changed unit', () => {
    const prefix = tempDir('tpsd-root-');
    const unit = join(prefix, UNIT_PATH), config = join(prefix, CONFIG_PATH);
    const first = tpsd('install-service', '--prefix', prefix, '--bin', '/usr/bin/tpsd');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /next step/);
    assert.equal(readFileSync(unit, 'utf8'), unitText('/usr/bin/tpsd'));
    assert.match(readFileSync(unit, 'utf8'), /^ExecStart=\/usr\/bin\/tpsd start --config \/etc\/tpsd\/tpsd.json --data \/var\/lib\/tpsd$/m);
    const cfg = loadConfigFile(config, {}, {});
    assert.equal(cfg.data_dir, '/var/lib/tpsd');
    assert.deepEqual(cfg.pools.map((p) => p.name), ['payments', 'email'], 'the shipped default config');

    writeFileSync(config, '{"pools": []}\n');
    writeFileSync(unit, '[Service]\nExecStart=/bin/true\n');
    const second = tpsd('install-service', '--prefix', prefix, '--bin', '/usr/bin/tpsd');
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /keep .*tpsd\.json \(exists, never overwritten\)/);
    assert.match(second.stdout, /write .*tpsd\.service \(replaces a different unit\)/);
    assert.equal(readFileSync(config, 'utf8'), '{"pools": []}\n');
    assert.equal(readFileSync(unit, 'utf8'), unitText('/usr/bin/tpsd'));
  });

  it('refuses a relative --bin (exit 2) and names a file it cannot write (exit 1)', () => {
    const prefix = tempDir('tpsd-root-');
    const rel = tpsd('install-service', '--prefix', prefix, '--bin', 'tpsd');
    assert.equal(rel.status, 2);
    assert.match(rel.stderr, /--bin: expected an absolute path/);
    mkdirSync(join(prefix, 'etc'));
    writeFileSync(join(prefix, 'etc/systemd'), 'a file where a directory should be');
    const blocked = tpsd('install-service', '--prefix', prefix, '--bin', '/usr/bin/tpsd');
    assert.equal(blocked.status, 1);
    assert.match(blocked.stderr, /cannot write .*tpsd\.service/);
    assert.equal(existsSync(join(prefix, CONFIG_PATH)), false, 'stops at the first failure');
  });
});
