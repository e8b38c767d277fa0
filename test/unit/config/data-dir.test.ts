// data_dir from a config file resolves against the file's folder (so every
// verb that reads that file finds the same database, from any working
// directory); an absolute one stays as it is; --data on the command line is
// relative to the working directory, like any path typed in a shell.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG_PATH, loadConfigFile, validateConfig } from '../../../src/config/load.ts';
import { tempDir } from '../../fixtures/temp-dir.ts';

const POOLS = [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'LOW' }] }];

function configIn(extra: Record<string, unknown>): string {
  const dir = tempDir('tpsd-datadir-');
  mkdirSync(join(dir, 'etc'));
  const file = join(dir, 'etc', 'tpsd.json');
  writeFileSync(file, JSON.stringify({ pools: POOLS, ...extra }));
  return file;
}

describe('data_dir', () => {
  it('a relative data_dir in a file is relative to the file\'s folder, not the working directory', () => {
    const file = configIn({ data_dir: './data' });
    assert.equal(loadConfigFile(file, {}, {}).data_dir, join(dirname(file), 'data'));
    const up = configIn({ data_dir: '../state/db' });
    assert.equal(loadConfigFile(up, {}, {}).data_dir, resolve(dirname(up), '../state/db'));
  });

  it('the default data_dir of a file that names none is also beside the file', () => {
    const file = configIn({});
    assert.equal(loadConfigFile(file, {}, {}).data_dir, join(dirname(file), 'data'));
  });

  it('an absolute data_dir stays as it is', () => {
    const file = configIn({ data_dir: '/var/lib/tpsd' });
    assert.equal(loadConfigFile(file, {}, {}).data_dir, '/var/lib/tpsd');
  });

  it('--data from the command line is relative to the working directory', () => {
    const file = configIn({ data_dir: './data' });
    assert.equal(loadConfigFile(file, { data_dir: 'here' }, {}).data_dir, resolve(process.cwd(), 'here'));
    assert.equal(loadConfigFile(file, { data_dir: '/srv/tpsd' }, {}).data_dir, '/srv/tpsd');
  });

  it('the shipped config keeps its database at the package root, wherever tpsd runs', () => {
    assert.equal(loadConfigFile(DEFAULT_CONFIG_PATH, {}, {}).data_dir, resolve(dirname(DEFAULT_CONFIG_PATH), '..', 'data'));
  });

  it('a config that is not from a file is left as given', () => {
    assert.equal(validateConfig({ data_dir: 'rel', pools: POOLS }, {}).data_dir, 'rel');
  });
});
