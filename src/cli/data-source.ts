// Finding the telemetry database for the verbs that read history:
// --db FILE, else --data DIR, else $TPSD_DATA, else the data_dir of
// --config FILE, else of /etc/tpsd/tpsd.json when it exists (what
// `tpsd install-service` writes), else of the shipped config (the data/
// folder at the package root). A relative data_dir in a config file resolves
// against that file's folder (config/load.ts), as it does for `tpsd start`;
// --data and $TPSD_DATA, typed in a shell, against the current directory.

import { existsSync } from 'node:fs';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigFile } from '../config/load.ts';
import { dbPath, openReadOnly, StorageError, type Db } from '../storage/db.ts';
import type { FlagSpec, ParsedArgs } from './args.ts';
import { EXIT } from './terminal.ts';

export const SYSTEM_CONFIG = '/etc/tpsd/tpsd.json';

export const DB_FLAGS: Record<string, FlagSpec> = {
  data: { type: 'string', value: 'DIR', help: 'the daemon\'s data directory, holding tpsd.db (default: $TPSD_DATA)' },
  config: { type: 'string', value: 'FILE', help: `the daemon's config file: use its data_dir (default: ${SYSTEM_CONFIG} if present, else the shipped config)` },
  db: { type: 'string', value: 'FILE', help: 'the database file itself' },
};

/** The database to read, opened read-only; or an exit code after a message on stderr. */
export function openHistory(args: ParsedArgs, verb: string): Db | number {
  let file = args.string('db');
  if (file === undefined) {
    let dataDir = args.string('data') ?? (process.env.TPSD_DATA || undefined);
    if (dataDir === undefined) {
      const config = args.string('config') ?? (existsSync(SYSTEM_CONFIG) ? SYSTEM_CONFIG : DEFAULT_CONFIG_PATH);
      try {
        dataDir = loadConfigFile(config, {}, {}).data_dir;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`tpsd ${verb}: ${err.message}\n`);
        return EXIT.FAILURE;
      }
    }
    file = dbPath(dataDir);
  }
  if (!existsSync(file)) {
    process.stderr.write(`tpsd ${verb}: no database at ${file} (has the daemon run with this data_dir? use --data, --config or --db)\n`);
    return EXIT.NO_DATA;
  }
  try {
    return openReadOnly(file);
  } catch (err) {
    if (!(err instanceof StorageError)) throw err;
    process.stderr.write(`tpsd ${verb}: ${err.message}\n`);
    return EXIT.NO_DATA;
  }
}
