// `tpsd start`: loads and validates the config (config errors exit 1 before
// anything starts), starts the daemon (src/daemon/daemon.ts, which logs the port it
// bound) and stops it cleanly on SIGTERM/SIGINT; a second signal exits at once.
// SIGHUP reloads the config file (and the model) without dropping connections.

import { ConfigError, DEFAULT_CONFIG_PATH, loadConfigFile, type ConfigOverrides } from '../config/load.ts';
import type { Daemon } from '../daemon/daemon.ts';
import { createLogger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { runVerb, type VerbSpec } from './args.ts';

export const SPEC: VerbSpec = {
  name: 'start',
  summary: 'Run the daemon in the foreground until SIGTERM or SIGINT.',
  flags: {
    config: { type: 'string', value: 'FILE', help: 'config file (default: the shipped config/default.json)' },
    port: { type: 'integer', value: 'N', min: 0, max: 65535, help: 'listen port, overrides listen.port (0: any free port)' },
    data: { type: 'string', value: 'DIR', help: 'data directory, overrides data_dir' },
  },
  details: 'Exit status: 0 after a clean stop, 1 on a config or startup error, 2 wrong usage.',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    let config: TpsdConfig;
    const file = args.string('config') ?? DEFAULT_CONFIG_PATH;
    const overrides = { port: args.number('port'), data_dir: args.string('data') };
    try {
      config = loadConfigFile(file, overrides);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`tpsd start: ${err.message}\n`);
      return 1;
    }
    // Listen before starting: a signal during startup stops the daemon as soon as it is up,
    // and a SIGHUP then (its default action would kill the process) reloads it once it is up.
    const shutdown = exitOnSignal();
    let daemon: Daemon | null = null;
    let reloadAtStart = false;
    process.on('SIGHUP', () => {
      if (daemon === null) reloadAtStart = true;
      else void reloadOnSignal(daemon, file, overrides);
    });
    try {
      const { startDaemon } = await import('../daemon/daemon.ts');
      const started = await startDaemon(config);
      daemon = started;
      shutdown.started(() => started.stop());
      if (reloadAtStart) void reloadOnSignal(started, file, overrides);
    } catch (err) {
      shutdown.dispose();
      process.stderr.write(`tpsd start: cannot start the daemon: ${errorMessage(err)}\n`);
      return 1;
    }
    // Never settles: the signal handler ends the process with process.exit().
    return new Promise<number>(() => {});
  });
}

/**
 * SIGHUP: read the config file again and apply it live. An invalid file or a
 * change that needs a restart is logged and the running config is kept.
 */
async function reloadOnSignal(daemon: Daemon, file: string, overrides: ConfigOverrides): Promise<void> {
  const log = createLogger(daemon.config.log.level, 'tpsd');
  try {
    await daemon.reload(loadConfigFile(file, overrides));
  } catch (err) {
    log.error({ file, reason: errorMessage(err) }, 'config not reloaded; keeping the running config');
  }
}

/** First SIGTERM/SIGINT: stop(), then exit 0 (1 if stop fails). Second: exit 1 at once. */
function exitOnSignal(): { started(stop: () => Promise<void>): void; dispose(): void } {
  let stop: (() => Promise<void>) | undefined;
  let requested = false;
  const stopAndExit = (s: () => Promise<void>): void => {
    s().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`tpsd start: error while stopping: ${errorMessage(err)}\n`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (requested) {
      process.stderr.write(`tpsd start: ${signal} while stopping, exiting now\n`);
      process.exit(1);
    }
    requested = true;
    if (stop !== undefined) stopAndExit(stop);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    started(s) {
      stop = s;
      if (requested) stopAndExit(s);
    },
    dispose() {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
