// The argument parser every verb shares: `--name value`, `--name=value`,
// boolean flags, positionals, `--` to end flags, and `--help`/`-h`, which
// prints the verb's help (generated from its VerbSpec) and exits 0. Any
// misuse is a UsageError, which runVerb() turns into exit code 2.

import { closest } from '../config/field-reader.ts';
import { CodedError } from '../protocol/coded-error.ts';

export type FlagType = 'string' | 'boolean' | 'integer' | 'number';

export interface FlagSpec {
  type: FlagType;
  help: string;
  /** Placeholder shown in help, e.g. FILE; default VALUE (or N for numbers). */
  value?: string;
  /** Inclusive bounds for integer and number flags. */
  min?: number;
  max?: number;
  /** May be given several times; read with ParsedArgs.strings(). */
  multiple?: boolean;
}

export interface PositionalSpec {
  name: string;
  help: string;
  required?: boolean;
  /** Takes all remaining positionals (must be last). */
  variadic?: boolean;
}

export interface VerbSpec {
  name: string;
  /** One line, shown at the top of the verb's help. */
  summary: string;
  flags?: Record<string, FlagSpec>;
  positionals?: PositionalSpec[];
  /** Free text printed after the options. */
  details?: string;
}

/** Wrong use of the command line: exit code 2. */
export class UsageError extends CodedError {
  override readonly code = 'TPSD_CLI_USAGE';
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type FlagValue = string | number | boolean;

export class ParsedArgs {
  constructor(
    readonly positionals: readonly string[],
    private readonly values: ReadonlyMap<string, FlagValue[]>,
    private readonly spec: VerbSpec,
  ) {}

  has(name: string): boolean {
    return this.values.has(this.declared(name));
  }
  /** The last value given for a string flag. */
  string(name: string): string | undefined {
    return this.values.get(this.declared(name))?.at(-1) as string | undefined;
  }
  /** Every value of a repeatable string flag, in order. */
  strings(name: string): string[] {
    return (this.values.get(this.declared(name)) ?? []) as string[];
  }
  /** The last value given for an integer or number flag. */
  number(name: string): number | undefined {
    return this.values.get(this.declared(name))?.at(-1) as number | undefined;
  }
  boolean(name: string): boolean {
    return (this.values.get(this.declared(name))?.at(-1) as boolean | undefined) ?? false;
  }

  private declared(name: string): string {
    if (this.spec.flags?.[name] === undefined) throw new Error(`flag --${name} is not declared by "${this.spec.name}"`);
    return name;
  }
}

/** Parses argv against the spec; 'help' when --help or -h was given. */
export function parseArgs(argv: readonly string[], spec: VerbSpec): ParsedArgs | 'help' {
  const flags = spec.flags ?? {};
  const values = new Map<string, FlagValue[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') return 'help';
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq === -1 ? undefined : eq) : arg;
    const flag = arg.startsWith('--') ? flags[name] : undefined;
    if (flag === undefined) throw unknownFlag(arg.startsWith('--') ? `--${name}` : arg, flags);
    let text: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (text === undefined && flag.type !== 'boolean') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name}: expected a value (${placeholder(flag)})`);
      text = next;
      i++;
    }
    const value = convert(name, flag, text);
    const list = values.get(name) ?? [];
    if (list.length > 0 && !flag.multiple && flag.type !== 'boolean') {
      throw new UsageError(`--${name}: given more than once`);
    }
    list.push(value);
    values.set(name, list);
  }
  checkPositionals(positionals, spec.positionals ?? []);
  return new ParsedArgs(positionals, values, spec);
}

function unknownFlag(given: string, flags: Record<string, FlagSpec>): UsageError {
  const names = [...Object.keys(flags), 'help'];
  const guess = closest(given.replace(/^-+/, ''), names);
  return new UsageError(`unknown flag ${given}${guess === undefined ? '' : `; did you mean --${guess}?`}`);
}

function convert(name: string, flag: FlagSpec, text: string | undefined): FlagValue {
  if (flag.type === 'boolean') {
    if (text === undefined || text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    throw new UsageError(`--${name}: expected true or false, found ${JSON.stringify(text)}`);
  }
  if (text === undefined) throw new UsageError(`--${name}: expected a value`);
  if (flag.type === 'string') return text;
  const n = Number(text);
  const isInteger = flag.type === 'integer';
  const ok = text.trim() !== '' && Number.isFinite(n) && (!isInteger || Number.isInteger(n)) &&
    (flag.min === undefined || n >= flag.min) && (flag.max === undefined || n <= flag.max);
  if (ok) return n;
  const kind = isInteger ? 'an integer' : 'a number';
  const range = flag.min !== undefined && flag.max !== undefined ? ` from ${flag.min} to ${flag.max}`
    : flag.min !== undefined ? ` >= ${flag.min}` : flag.max !== undefined ? ` <= ${flag.max}` : '';
  throw new UsageError(`--${name}: expected ${kind}${range}, found ${JSON.stringify(text)}`);
}

function checkPositionals(given: string[], specs: PositionalSpec[]): void {
  const missing = specs.slice(given.length).find((p) => p.required);
  if (missing !== undefined) throw new UsageError(`missing ${missing.name}`);
  const variadic = specs.at(-1)?.variadic === true;
  if (!variadic && given.length > specs.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(given[specs.length])}`);
  }
}

function placeholder(flag: FlagSpec): string {
  return flag.value ?? (flag.type === 'integer' || flag.type === 'number' ? 'N' : 'VALUE');
}

/** The verb's help text: usage line, summary, positionals, options. */
export function formatHelp(spec: VerbSpec): string {
  const flags = Object.entries(spec.flags ?? {});
  const positionals = spec.positionals ?? [];
  const usage = [`tpsd ${spec.name}`];
  for (const [name, flag] of flags) usage.push(flag.type === 'boolean' ? `[--${name}]` : `[--${name} ${placeholder(flag)}]`);
  for (const p of positionals) {
    const shown = p.variadic ? `${p.name}...` : p.name;
    usage.push(p.required ? shown : `[${shown}]`);
  }
  const args = positionals.map((p): [string, string] => [p.name, p.help]);
  const options: [string, string][] = flags.map(([name, flag]) => [
    flag.type === 'boolean' ? `--${name}` : `--${name} ${placeholder(flag)}`, flag.help,
  ]);
  options.push(['--help', 'show this help']);
  const width = Math.max(...[...args, ...options].map(([left]) => left.length));
  const table = (rows: [string, string][]) => rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
  const lines = [`Usage: ${usage.join(' ')}`, '', spec.summary];
  if (args.length > 0) lines.push('', 'Arguments:', ...table(args));
  lines.push('', 'Options:', ...table(options));
  if (spec.details !== undefined) lines.push('', spec.details.trimEnd());
  return `${lines.join('\n')}\n`;
}

/**
 * Parses argv, answers --help, runs `body`; a UsageError from either becomes
 * a message on stderr and exit code 2.
 */
export async function runVerb(
  argv: readonly string[],
  spec: VerbSpec,
  body: (args: ParsedArgs) => Promise<number>,
): Promise<number> {
  try {
    const parsed = parseArgs(argv, spec);
    if (parsed === 'help') {
      process.stdout.write(formatHelp(spec));
      return 0;
    }
    return await body(parsed);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`tpsd ${spec.name}: ${err.message}\nRun "tpsd ${spec.name} --help" for usage.\n`);
    return err.exitCode;
  }
}
