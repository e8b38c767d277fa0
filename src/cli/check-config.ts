// `tpsd check-config FILE`: validates a config file and prints the effective
// config (defaults applied) as JSON on stdout. Exit 0 when valid, 1 with every
// error on stderr when not, 2 on command-line misuse.

import { ConfigError, loadConfigFile } from '../config/load.ts';
import type { TpsdConfig } from '../config/types.ts';
import { runVerb, type VerbSpec } from './args.ts';

export const SPEC: VerbSpec = {
  name: 'check-config',
  summary: 'Validate a config file and print the effective config (with defaults) as JSON.',
  positionals: [{ name: 'FILE', help: 'the config file (JSON)', required: true }],
  flags: {
    'show-secrets': { type: 'boolean', help: 'print auth tokens instead of "<redacted>"' },
  },
  details: 'Exit status: 0 valid, 1 invalid (errors on stderr), 2 wrong usage.\n' +
    'TPSD_LOG_LEVEL, when set, overrides log.level as it does for "tpsd start".',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const file = args.positionals[0];
    let config: TpsdConfig;
    try {
      config = loadConfigFile(file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`tpsd check-config: ${err.message}\n`);
      return 1;
    }
    const shown = args.boolean('show-secrets') ? config : redactTokens(config);
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return 0;
  });
}

function redactTokens(config: TpsdConfig): TpsdConfig {
  if (config.auth === null) return config;
  const tokens = config.auth.tokens.map((t) => ({ ...t, token: '<redacted>' }));
  return { ...config, auth: { ...config.auth, tokens } };
}
