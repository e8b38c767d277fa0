// The error codes in src/protocol/errors.ts are the ones documented in
// docs/protocol.md, and each maps to its own error class.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ErrorCode, TpsdError, errorCodeName, errorFromReply } from '../../../src/protocol/errors.ts';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

describe('protocol error codes', () => {
  it('match the table in docs/protocol.md', () => {
    const documented = new Map<string, number>();
    const section = doc.slice(doc.indexOf('## Errors'), doc.indexOf('## Closing codes'));
    for (const m of section.matchAll(/^\| (\d+) \| ([A-Z_]+) \|/gm)) documented.set(m[2], Number(m[1]));
    assert.deepEqual(Object.fromEntries(documented), { ...ErrorCode });
  });

  it('build one class per code, keeping code and message', () => {
    const classes = new Set<string>();
    for (const [name, code] of Object.entries(ErrorCode)) {
      const err = errorFromReply(code, `boom ${name}`);
      assert.ok(err instanceof TpsdError);
      assert.equal(err.code, code);
      assert.equal(err.message, `boom ${name}`);
      assert.equal(errorCodeName(code), name);
      classes.add(err.constructor.name);
    }
    assert.equal(classes.size, Object.keys(ErrorCode).length);
    assert.equal(errorFromReply(99, 'x').code, 99);
  });
});
