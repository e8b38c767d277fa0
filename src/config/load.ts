// Loads the config file once at start: reads it, parses JSON (syntax errors
// name the file, line and column), applies command-line overrides (--port,
// --data) and validates it with schema.ts. Every failure is a ConfigError
// that names the file.
//
// Paths: a relative data_dir in the file (or the default one when the file
// names none) is resolved against the file's folder, so every verb reading
// the same file finds the same database from any working directory; an
// absolute one is kept. --data from the command line is resolved against
// the working directory, as a path typed in a shell is. A relative
// policy.model is resolved against the file's folder too, unless it names a
// file only the working directory has (how it was read before).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS } from './defaults.ts';
import { ConfigError, isPlainObject } from './field-reader.ts';
import { validateConfig } from './schema.ts';
import type { TpsdConfig } from './types.ts';

export { ConfigError, deepFreeze } from './field-reader.ts';
export { validateConfig } from './schema.ts';

/** The shipped default config, config/default.json at the package root. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.json', import.meta.url));

/** Command-line values that win over the file's. */
export interface ConfigOverrides {
  port?: number;
  data_dir?: string;
}

export function loadConfigFile(
  path: string,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): TpsdConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read the file: ${(err as Error).message}`], path);
  }
  const raw = parseJson(text, path);
  try {
    return validateConfig(applyOverrides(raw, overrides, dirname(resolve(path))), env);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.errors, path);
    throw err;
  }
}

function parseJson(text: string, path: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const message = (err as Error).message.replace(/\r?\n/g, '\\n');
    const position = /at position (\d+)/.exec(message);
    const where = position && !/line \d+/.test(message) ? ` (${lineAndColumn(body, Number(position[1]))})` : '';
    throw new ConfigError([`invalid JSON: ${message}${where}`], path);
  }
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/**
 * Copies the raw file with the overrides in place and data_dir resolved (see
 * the header); a malformed file is left for the validator to report.
 */
function applyOverrides(raw: unknown, overrides: ConfigOverrides, fileDir: string): unknown {
  if (!isPlainObject(raw)) return raw;
  const out: Record<string, unknown> = { ...raw };
  if (overrides.port !== undefined) {
    if (raw.listen === undefined) out.listen = { port: overrides.port };
    else if (isPlainObject(raw.listen)) out.listen = { ...raw.listen, port: overrides.port };
  }
  if (overrides.data_dir !== undefined) out.data_dir = resolve(overrides.data_dir);
  else if (raw.data_dir === undefined) out.data_dir = resolve(fileDir, DEFAULTS.data_dir);
  else if (typeof raw.data_dir === 'string' && raw.data_dir !== '' && !isAbsolute(raw.data_dir)) out.data_dir = resolve(fileDir, raw.data_dir);
  const model = isPlainObject(raw.policy) ? raw.policy.model : undefined;
  if (typeof model === 'string' && model !== '' && !isAbsolute(model)) {
    const besideFile = resolve(fileDir, model);
    const fromCwd = resolve(model);
    out.policy = { ...(raw.policy as Record<string, unknown>), model: !existsSync(besideFile) && existsSync(fromCwd) ? fromCwd : besideFile };
  }
  return out;
}
