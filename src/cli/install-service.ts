// `tpsd install-service [--prefix DIR] [--bin PATH] [--dry-run]`: installs the
// systemd unit (systemd/tpsd.service) as <prefix>/etc/systemd/system/tpsd.service
// and, when absent, <prefix>/etc/tpsd/tpsd.json from the shipped
// config/default.json; then prints the systemctl step. It never runs
// systemctl itself and never overwrites an existing config.
//
// ExecStart: the shipped unit names /usr/local/bin/tpsd (Debian's npm global
// prefix); the installed copy names the tpsd this command runs as, or --bin.

import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_PATH } from '../config/load.ts';
import { UsageError, runVerb, type VerbSpec } from './args.ts';

export const UNIT_SOURCE = fileURLToPath(new URL('../../systemd/tpsd.service', import.meta.url));
export const SHIPPED_BIN = '/usr/local/bin/tpsd';
export const UNIT_PATH = 'etc/systemd/system/tpsd.service';
export const CONFIG_PATH = 'etc/tpsd/tpsd.json';
const STATE_DIR = '/var/lib/tpsd';
const NEXT_STEP = 'systemctl daemon-reload && systemctl enable --now tpsd';

export const SPEC: VerbSpec = {
  name: 'install-service',
  summary: 'Install the systemd unit and /etc/tpsd/tpsd.json (if absent), then print the systemctl step.',
  flags: {
    prefix: { type: 'string', value: 'DIR', help: 'root to install under (default /; e.g. an image being built)' },
    bin: { type: 'string', value: 'PATH', help: 'absolute path of the tpsd command for ExecStart (default: this tpsd, else /usr/local/bin/tpsd)' },
    'dry-run': { type: 'boolean', help: 'print what would be done, change nothing' },
  },
  details: 'Writes <prefix>/etc/systemd/system/tpsd.service (replaced when it differs) and\n' +
    '<prefix>/etc/tpsd/tpsd.json (only when absent; data_dir set to /var/lib/tpsd).\n' +
    `Then run: ${NEXT_STEP}\n` +
    'Exit status: 0 done, 1 a file could not be written, 2 wrong usage.',
};

interface Step {
  path: string;
  /** 'write': created or replaced; 'keep': left as it is. */
  action: 'write' | 'keep';
  why: string;
  content: string;
  mode: number;
}

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const prefix = resolve(args.string('prefix') ?? '/');
    const bin = args.string('bin') ?? detectBin();
    if (!isAbsolute(bin) || /\s/.test(bin)) throw new UsageError(`--bin: expected an absolute path without spaces, found ${JSON.stringify(bin)}`);
    const dryRun = args.boolean('dry-run');
    const steps = plan(prefix, bin);
    const out = process.stdout;
    for (const s of steps) out.write(`${dryRun ? 'would ' : ''}${s.action === 'write' ? 'write' : 'keep'} ${s.path} (${s.why})\n`);
    for (const w of warnings(prefix, bin)) process.stderr.write(`tpsd install-service: warning: ${w}\n`);
    if (!dryRun) {
      for (const s of steps.filter((x) => x.action === 'write')) {
        try {
          mkdirSync(dirname(s.path), { recursive: true });
          writeFileSync(s.path, s.content, { mode: s.mode });
        } catch (err) {
          const hint = (err as NodeJS.ErrnoException).code === 'EACCES' ? ' (run as root, or pass --prefix)' : '';
          process.stderr.write(`tpsd install-service: cannot write ${s.path}: ${(err as Error).message}${hint}\n`);
          return 1;
        }
      }
    }
    const where = prefix === '/' ? '' : ` (files are under ${prefix}; run it on the system that boots from it)`;
    out.write(`${dryRun ? 'dry run, nothing changed. ' : ''}next step${where}:\n  ${NEXT_STEP}\n`);
    return 0;
  });
}

/** What install-service would do under `prefix` with ExecStart naming `bin`. */
export function plan(prefix: string, bin: string): Step[] {
  const unitPath = join(prefix, UNIT_PATH);
  const unit = unitText(bin);
  const unitNow = existsSync(unitPath) ? readFileSync(unitPath, 'utf8') : null;
  const configPath = join(prefix, CONFIG_PATH);
  const configExists = existsSync(configPath);
  return [
    {
      path: unitPath,
      action: unitNow === unit ? 'keep' : 'write',
      why: unitNow === null ? 'new' : unitNow === unit ? 'already up to date' : 'replaces a different unit',
      content: unit,
      mode: 0o644,
    },
    {
      path: configPath,
      action: configExists ? 'keep' : 'write',
      why: configExists ? 'exists, never overwritten' : 'new, from config/default.json',
      content: configExists ? '' : defaultConfigText(),
      // Readable by the service's dynamic user; keep auth tokens out of it or tighten by hand.
      mode: 0o644,
    },
  ];
}

/** The shipped unit with every Exec*= line that runs tpsd pointing at `bin`. */
export function unitText(bin: string): string {
  const shipped = readFileSync(UNIT_SOURCE, 'utf8');
  return shipped.replace(/^(Exec[A-Za-z]*=[-@:+!]*)\/usr\/local\/bin\/tpsd(?=\s|$)/gm, (_, head: string) => `${head}${bin}`);
}

function defaultConfigText(): string {
  const text = readFileSync(DEFAULT_CONFIG_PATH, 'utf8');
  return text.replace(/("data_dir"\s*:\s*)"[^"]*"/, `$1${JSON.stringify(STATE_DIR)}`);
}

/** The installed tpsd this runs as (argv[1] is the bin link npm made), else the shipped path. */
function detectBin(): string {
  const script = process.argv[1];
  if (script !== undefined && isAbsolute(script) && basename(script) === 'tpsd') return script;
  return SHIPPED_BIN;
}

function warnings(prefix: string, bin: string): string[] {
  const out: string[] = [];
  if (!existsSync(join(prefix, bin))) {
    out.push(`${bin} does not exist${prefix === '/' ? '' : ` under ${prefix}`}; install tpsd with npm install -g, or pass --bin "$(npm prefix -g)/bin/tpsd"`);
  }
  let pkg = fileURLToPath(new URL('../../', import.meta.url));
  try { pkg = realpathSync(pkg); } catch { /* keep the unresolved path */ }
  if (/^\/(home|root|run\/user)(\/|$)/.test(pkg)) {
    out.push(`tpsd is installed from ${pkg}, which ProtectHome=yes hides from the service; ` +
      'install from a tarball instead (npm pack && npm install -g ./tpsd-*.tgz)');
  }
  return out;
}
