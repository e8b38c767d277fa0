// The SDK must run in browsers: src/client/ imports only itself and
// src/protocol/ (which imports only msgpackr); `ws` is loaded dynamically,
// and only when there is no global WebSocket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const STATIC_IMPORT = /^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*(?:\/\*.*?\*\/\s*)?'([^']+)'\s*\)/g;

function specifiers(file: string, re: RegExp): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(re)].map((m) => m[1]);
}

const tsFiles = (dir: string): string[] =>
  fs.readdirSync(path.join(SRC, dir)).filter((f) => f.endsWith('.ts')).map((f) => path.join(SRC, dir, f));

test('src/client imports only ./ and ../protocol/', () => {
  for (const file of tsFiles('client')) {
    for (const spec of specifiers(file, STATIC_IMPORT)) {
      assert.ok(spec.startsWith('./') || spec.startsWith('../protocol/'), `${path.basename(file)} imports ${spec}`);
    }
    for (const spec of specifiers(file, DYNAMIC_IMPORT)) assert.equal(spec, 'ws', `${path.basename(file)} loads ${spec}`);
  }
});

test('src/protocol imports nothing Node-only', () => {
  for (const file of tsFiles('protocol')) {
    for (const spec of specifiers(file, STATIC_IMPORT)) {
      assert.ok(spec.startsWith('./') || spec === 'msgpackr', `${path.basename(file)} imports ${spec}`);
    }
  }
});
