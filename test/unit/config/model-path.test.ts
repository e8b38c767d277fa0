// policy.model from a config file resolves like data_dir: against the file's
// folder, so `tpsd start --config /etc/tpsd/tpsd.json` finds the model named
// beside it from any working directory. A path that exists only relative to
// the working directory (how it was read before) is still found there.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../../src/config/load.ts';
import { tempDir } from '../../fixtures/temp-dir.ts';

const POOLS = [{ name: 'p', capacity_tps: 10, services: [{ name: 's', priority: 'LOW' }] }];

function configWithModel(model: unknown, modelFileAt?: string): string {
  const dir = tempDir('tpsd-model-');
  mkdirSync(join(dir, 'etc', 'models'), { recursive: true });
  if (modelFileAt !== undefined) writeFileSync(join(dir, modelFileAt), '{}');
  const file = join(dir, 'etc', 'tpsd.json');
  writeFileSync(file, JSON.stringify({ pools: POOLS, policy: { mode: 'ppo', model } }));
  return file;
}

describe('policy.model', () => {
  it('a relative model path is relative to the config file\'s folder, not the working directory', () => {
    const file = configWithModel('models/m.json', 'etc/models/m.json');
    assert.equal(loadConfigFile(file, {}, {}).policy.model, join(file, '..', 'models', 'm.json'));
  });

  it('a relative path found only from the working directory is kept working', () => {
    const file = configWithModel('placeholder');
    const cwdRelative = relative(process.cwd(), join(file, '..', '..', 'here.json'));
    writeFileSync(join(file, '..', '..', 'here.json'), '{}');
    writeFileSync(file, JSON.stringify({ pools: POOLS, policy: { mode: 'ppo', model: cwdRelative } }));
    assert.equal(loadConfigFile(file, {}, {}).policy.model, join(process.cwd(), cwdRelative));
  });

  it('absolute paths and null stay as they are; a missing relative file resolves beside the config', () => {
    assert.equal(loadConfigFile(configWithModel('/opt/m.json'), {}, {}).policy.model, '/opt/m.json');
    assert.equal(loadConfigFile(configWithModel(null), {}, {}).policy.model, null);
    const file = configWithModel('nowhere.json');
    assert.equal(loadConfigFile(file, {}, {}).policy.model, join(file, '..', 'nowhere.json'));
  });
});
