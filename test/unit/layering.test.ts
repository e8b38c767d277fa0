// Every import in src/ points down the stack (README, "Layout"):
//   cli -> daemon -> io / control / storage -> ppo / shm -> config / protocol,
// with sim/ and train/ a second root over control/, loadgen/ over the SDK.
// Each folder may import only the folders listed for it (static imports,
// dynamic imports and `new URL(...)` references alike), no file may import a
// folder outside src/, and no two files import each other, even through others.
// The SDK must also run in browsers: src/client/ imports only itself and
// src/protocol/ (which imports only msgpackr); `ws` is loaded dynamically, and
// only when there is no global WebSocket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const STATIC_IMPORT = /^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*(?:\/\*.*?\*\/\s*)?'([^']+)'\s*\)/g;
const URL_REF = /\bnew URL\(\s*'([^']+)'\s*,\s*import\.meta\.url\s*\)/g;

const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  config: ['protocol'],
  shm: ['config', 'protocol'],
  ppo: ['shm', 'config', 'protocol'],
  control: ['ppo', 'shm', 'config', 'protocol'],
  io: ['shm', 'config', 'protocol'],
  storage: ['shm', 'config', 'protocol'],
  daemon: ['io', 'control', 'storage', 'ppo', 'shm', 'config', 'protocol'],
  sim: ['control', 'ppo', 'shm', 'config', 'protocol'],
  train: ['sim', 'control', 'ppo', 'shm', 'config', 'protocol'],
  client: ['protocol'],
  loadgen: ['client', 'shm', 'config', 'protocol'],
  cli: ['daemon', 'io', 'control', 'storage', 'ppo', 'sim', 'train', 'shm', 'config', 'protocol', 'client', 'loadgen'],
};
/** What code outside src/ may name by URL: the package root and shipped data, never code. */
const DATA_OUTSIDE_SRC = ['config', 'systemd', 'test/fixtures/scenarios'];

function specifiers(file: string, re: RegExp): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(re)].map((m) => m[1]);
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mjs)$/.test(e.name) ? [p] : [];
  });
}

const folderOf = (file: string): string => path.relative(SRC, file).split(path.sep)[0];
const localImports = (file: string): string[] =>
  [...specifiers(file, STATIC_IMPORT), ...specifiers(file, DYNAMIC_IMPORT)]
    .filter((s) => s.startsWith('.'))
    .map((s) => path.resolve(path.dirname(file), s));

test('every folder of src/ has its rules, and no file sits outside a folder', () => {
  for (const e of fs.readdirSync(SRC, { withFileTypes: true })) {
    assert.ok(e.isDirectory(), `src/${e.name} is a file outside any folder`);
    assert.ok(e.name in ALLOWED, `src/${e.name} has no layering rule`);
  }
});

test('each folder of src/ imports only the folders below it', () => {
  const wrong: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    const targets = [...localImports(file), ...specifiers(file, URL_REF).map((s) => path.resolve(path.dirname(file), s))];
    for (const target of targets) {
      const rel = path.relative(SRC, target);
      const where = `${path.relative(SRC, file)} -> ${rel}`;
      if (rel.startsWith('..')) {
        const outside = path.relative(path.join(SRC, '..'), target);
        const data = outside === '' || DATA_OUTSIDE_SRC.some((d) => outside === d || outside.startsWith(`${d}/`));
        if (!data || /\.(ts|mjs)$/.test(outside)) wrong.push(`${where}: outside src/`);
        continue;
      }
      const to = rel.split(path.sep)[0];
      if (to !== from && !ALLOWED[from].includes(to)) wrong.push(`${where}: ${from}/ may not import ${to}/`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('no import cycles between files of src/', () => {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) graph.set(file, localImports(file));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      const cycle = stack.slice(stack.indexOf(f)).concat(f).map((x) => path.relative(SRC, x));
      cycles.push(cycle.join(' -> '));
      return;
    }
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) if (graph.has(g)) visit(g);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  assert.deepEqual(cycles, []);
});

test('src/client imports only ./ and ../protocol/', () => {
  for (const file of sourceFiles(path.join(SRC, 'client'))) {
    for (const spec of specifiers(file, STATIC_IMPORT)) {
      assert.ok(spec.startsWith('./') || spec.startsWith('../protocol/'), `${path.basename(file)} imports ${spec}`);
    }
    for (const spec of specifiers(file, DYNAMIC_IMPORT)) assert.equal(spec, 'ws', `${path.basename(file)} loads ${spec}`);
  }
});

test('src/protocol imports nothing Node-only', () => {
  for (const file of sourceFiles(path.join(SRC, 'protocol'))) {
    for (const spec of specifiers(file, STATIC_IMPORT)) {
      assert.ok(spec.startsWith('./') || spec === 'msgpackr', `${path.basename(file)} imports ${spec}`);
    }
  }
});
