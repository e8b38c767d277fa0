// Building blocks of the config validator (schema.ts): a FieldReader that
// reads typed fields out of untrusted JSON, applies defaults and collects
// every problem as "<path>: expected <what>, found <what>" instead of
// stopping at the first one; the ConfigError that carries them; "did you
// mean" suggestions for misspelled keys; and deepFreeze.

import { CodedError } from '../protocol/coded-error.ts';

/** Invalid configuration: `errors` holds one line per problem, each naming its path. */
export class ConfigError extends CodedError {
  override readonly code = 'TPSD_CONFIG_INVALID';
  readonly errors: string[];
  constructor(errors: string[], source?: string) {
    const where = source === undefined ? 'config' : `config file ${source}`;
    const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
    const shown = errors.slice(0, MAX_LISTED_ERRORS).map((e) => `  - ${e}`);
    if (errors.length > MAX_LISTED_ERRORS) shown.push(`  ... and ${errors.length - MAX_LISTED_ERRORS} more`);
    super(`invalid ${where} (${count}):\n${shown.join('\n')}`);
    this.name = 'ConfigError';
    this.errors = errors;
  }
}
const MAX_LISTED_ERRORS = 50;

export type JsonObject = Record<string, unknown>;

/** A number field's rule; the text for "expected" is derived from it unless given. */
export interface NumberRule {
  integer?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Extra acceptance test, e.g. "0 or at least 8". */
  accept?: (n: number) => boolean;
  expected?: string;
}

export const joinKey = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
export const joinIndex = (path: string, i: number): string => `${path}[${i}]`;

/** How a found value reads in an error: strings quoted, containers by kind. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing (the field is required)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') {
    const s = value.length > 60 ? `${value.slice(0, 60)}...` : value;
    return JSON.stringify(s);
  }
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeRule(rule: NumberRule): string {
  if (rule.expected !== undefined) return rule.expected;
  const kind = rule.integer ? 'an integer' : 'a number';
  const { min, max, above } = rule;
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
  if (above !== undefined && max !== undefined) return `${kind} > ${above} and <= ${max}`;
  if (above !== undefined) return `${kind} > ${above}`;
  if (min !== undefined) return `${kind} >= ${min}`;
  if (max !== undefined) return `${kind} <= ${max}`;
  return rule.integer ? 'an integer' : 'a finite number';
}

/** Edit distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[(i - 1) * cols + j] + 1, d[i * cols + j - 1] + 1, d[(i - 1) * cols + j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[(i - 2) * cols + j - 2] + 1);
      }
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1];
}

/** The closest candidate within `maxDistance` edits (case-insensitive), or undefined. */
export function closest(word: string, candidates: readonly string[], maxDistance = 2): string | undefined {
  let best: string | undefined;
  let bestDistance = maxDistance + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Reads fields of untrusted JSON; every problem is appended to `errors`. */
export class FieldReader {
  readonly errors: string[] = [];

  get errorCount(): number {
    return this.errors.length;
  }

  fail(path: string, expected: string, found: unknown): void {
    this.errors.push(`${path}: expected ${expected}, found ${describe(found)}`);
  }

  /** Free-form "found" text, for findings that are not a single value. */
  failWith(path: string, expected: string, foundText: string): void {
    this.errors.push(`${path}: expected ${expected}, found ${foundText}`);
  }

  /** An object with only `keys`; unknown keys are reported with a suggestion. */
  object(path: string, value: unknown, keys: readonly string[]): JsonObject | undefined {
    if (!isPlainObject(value)) {
      this.fail(path === '' ? '(root)' : path, 'an object', value);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (keys.includes(key)) continue;
      const guess = closest(key, keys);
      const hint = guess === undefined ? '' : `; did you mean "${guess}"?`;
      this.errors.push(
        `${joinKey(path, key)}: expected one of the keys ${keys.join(', ')}, found unknown key ${JSON.stringify(key)}${hint}`,
      );
    }
    return value;
  }

  number(obj: JsonObject, path: string, key: string, rule: NumberRule, fallback?: number): number | undefined {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (!rule.integer || Number.isInteger(value)) &&
      (rule.min === undefined || value >= rule.min) &&
      (rule.above === undefined || value > rule.above) &&
      (rule.max === undefined || value <= rule.max) &&
      (rule.accept === undefined || rule.accept(value));
    if (ok) return value;
    this.fail(joinKey(path, key), describeRule(rule), value);
    return undefined;
  }

  string(obj: JsonObject, path: string, key: string, fallback?: string): string | undefined {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === 'string' && value.length > 0) return value;
    this.fail(joinKey(path, key), 'a non-empty string', value);
    return undefined;
  }

  /** A string matching `pattern`; `expected` describes it. */
  matching(obj: JsonObject, path: string, key: string, pattern: RegExp, expected: string): string | undefined {
    const value = obj[key];
    if (typeof value === 'string' && pattern.test(value)) return value;
    this.fail(joinKey(path, key), expected, value);
    return undefined;
  }

  oneOf<T extends string>(obj: JsonObject, path: string, key: string, allowed: readonly T[], fallback?: T): T | undefined {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    this.fail(joinKey(path, key), `one of ${allowed.join(', ')}`, value);
    return undefined;
  }

  boolean(obj: JsonObject, path: string, key: string, fallback?: boolean): boolean | undefined {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === 'boolean') return value;
    this.fail(joinKey(path, key), 'true or false', value);
    return undefined;
  }

  /** An array (required unless `fallback`), with at least `minItems` items. */
  array(obj: JsonObject, path: string, key: string, what: string, minItems = 0, fallback?: unknown[]): unknown[] | undefined {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (Array.isArray(value) && value.length >= minItems) return value;
    const expected = minItems > 0 ? `a non-empty array of ${what}` : `an array of ${what}`;
    if (Array.isArray(value)) this.failWith(joinKey(path, key), expected, 'an empty array');
    else this.fail(joinKey(path, key), expected, value);
    return undefined;
  }
}

/** Freezes `value` and everything reachable from it; returns it with a readonly type. */
export function deepFreeze<T>(value: T, seen = new WeakSet<object>()): T {
  if (typeof value !== 'object' || value === null || seen.has(value)) return value;
  seen.add(value);
  for (const key of Object.keys(value)) deepFreeze((value as JsonObject)[key], seen);
  return Object.freeze(value);
}
