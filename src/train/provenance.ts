// Where a model comes from (trainer = main thread of `tpsd train`, before and
// after training; pure except for reading source files and asking git): the
// code it was trained with, as the sha256 of the transitive closure of
// relative imports from the training entry points (so a change anywhere else
// in the tree does not change the model file), the last commit touching those
// files, and a sha256 of every other input. Nothing here reads a clock: the
// model file's `created` is the code commit's date, so the same inputs give
// the same bytes.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The files whose imports make up the training code (the verb, the trainer, the rollout worker and its thread entry). */
export const TRAINING_ENTRIES = ['src/cli/train.ts', 'src/train/trainer.ts', 'src/train/rollout.task.ts', 'src/shm/threads.ts'];

const IMPORT_RE = /(?:from\s+|import\s*\(?\s*|new URL\(\s*)'(\.{1,2}\/[^']+\.(?:ts|mjs|js))'/g;

/** Repository-relative paths of the entries and everything they import relatively, sorted. */
export function codeClosure(entries: readonly string[] = TRAINING_ENTRIES, root = REPO_ROOT): string[] {
  const seen = new Set<string>();
  const stack = entries.map((e) => resolve(root, e));
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT_RE)) stack.push(resolve(dirname(file), m[1]));
  }
  return [...seen].map((f) => relative(root, f)).sort();
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x !== null && typeof x === 'object' && !Array.isArray(x) && !ArrayBuffer.isView(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : x));
}

export function hashOf(v: unknown): string { return sha256(canonicalJson(v)); }

export interface CodeVersion {
  /** sha256 over the closure's paths and contents. */
  code_sha256: string;
  files: number;
  /** Last commit touching the closure; "+dirty" when the work tree differs from it there; null without git. */
  commit: string | null;
  /** That commit's date (ISO), used as the model's `created`; null without git. */
  commit_date: string | null;
}

function git(args: string[], root: string): string | null {
  try {
    return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function codeVersion(root = REPO_ROOT): CodeVersion {
  const files = codeClosure(TRAINING_ENTRIES, root);
  const h = createHash('sha256');
  for (const f of files) h.update(`${f}\n`).update(readFileSync(join(root, f))).update('\n');
  const log = git(['log', '-1', '--format=%H %cI', '--', ...files], root);
  const dirty = git(['status', '--porcelain', '--', ...files], root);
  const [commit, date] = log === null || log === '' ? [null, null] : log.split(' ');
  return {
    code_sha256: h.digest('hex'), files: files.length,
    commit: commit === null ? null : `${commit}${dirty ? '+dirty' : ''}`,
    commit_date: date === null ? null : new Date(date).toISOString(),
  };
}
