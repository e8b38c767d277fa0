// Every document a verb's --help (or the top-level usage) points to exists in
// the project: a user who follows the help must find the page.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatHelp, type VerbSpec } from '../../../src/cli/args.ts';
import { usage, VERBS } from '../../../src/cli/main.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;

test('every .md file cited by --help exists in the repository', async () => {
  const texts: [string, string][] = [['tpsd --help', usage()]];
  for (const [name, entry] of Object.entries(VERBS)) {
    const mod = await entry.load() as { SPEC?: VerbSpec };
    assert.ok(mod.SPEC !== undefined, `${name} exports its SPEC`);
    texts.push([`tpsd ${name} --help`, formatHelp(mod.SPEC)]);
  }
  let cited = 0;
  for (const [where, text] of texts) {
    for (const m of text.matchAll(/[\w./-]+\.md\b/g)) {
      cited++;
      assert.ok(existsSync(join(ROOT, m[0])), `${where} cites ${m[0]}, which is not in the repository (paths are from its root)`);
    }
  }
  assert.ok(cited > 0, 'some help cites a document');
});

test('tpsd sim --help points to the scenario format', async () => {
  const mod = await VERBS.sim.load() as unknown as { SPEC: VerbSpec };
  assert.match(formatHelp(mod.SPEC), /docs\/scenarios\.md/);
});
