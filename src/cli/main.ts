// Entry point of the `tpsd` command: picks the verb and runs it. To add a
// verb, write src/cli/<verb>.ts exporting `run(argv): Promise<number>` (use
// runVerb from args.ts for flags and --help) and add one line to VERBS.
// Runs itself when executed directly (npm run tpsd, node --import tsx);
// bin/tpsd.mjs imports it and calls main().

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface VerbModule {
  run(argv: string[]): Promise<number>;
}

interface VerbEntry {
  summary: string;
  load: () => Promise<VerbModule>;
}

/** Every verb; loaded lazily so `tpsd check-config` does not pull in the daemon. */
export const VERBS: Readonly<Record<string, VerbEntry>> = {
  start: { summary: 'run the daemon', load: () => import('./start.ts') },
  'check-config': { summary: 'validate a config file and print the effective config', load: () => import('./check-config.ts') },
  bench: { summary: 'load-test a daemon over real connections (src/loadgen)', load: () => import('./bench.ts') },
  'install-service': { summary: 'install the systemd unit and /etc/tpsd/tpsd.json', load: () => import('./install-service.ts') },
  status: { summary: 'live limits, traffic and queues of a running daemon (--watch)', load: () => import('./status.ts') },
  limits: { summary: 'read or change live limits (get|set|rm), persisted and audited', load: () => import('./limits.ts') },
  tenants: { summary: 'tenant tiers (get|set|rm|list|import FILE), persisted and audited', load: () => import('./tenants.ts') },
  approvals: { summary: 'limit changes held for approval (list|approve ID|reject ID), audited', load: () => import('./approvals.ts') },
  history: { summary: 'a key\'s traffic and limit over time (sparklines, --csv, --png)', load: () => import('./history.ts') },
  decisions: { summary: 'the audit trail: controller decisions and limit changes', load: () => import('./decisions.ts') },
  recommend: { summary: 'suggested limits from history (85/95/99 % of 429-free goodput)', load: () => import('./recommend.ts') },
  sim: { summary: 'replay a traffic scenario and compare allocation policies', load: () => import('./sim.ts') },
  train: { summary: 'train the PPO allocation model (--from-history: fine-tune on this daemon\'s telemetry)', load: () => import('./train.ts') },
  model: { summary: 'PPO models: list, eval a candidate on recorded history, promote it (audited)', load: () => import('./model.ts') },
};

export function usage(): string {
  const names = Object.keys(VERBS);
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((name) => `  ${name.padEnd(width)}  ${VERBS[name].summary}`);
  return [
    'Usage: tpsd VERB [options]',
    '',
    'Verbs:',
    ...lines,
    '',
    'Run "tpsd VERB --help" for the options of a verb.',
    '',
  ].join('\n');
}

/** Runs the verb named by argv[0]; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === '--help' || verb === '-h' || verb === 'help') {
    if (rest.length > 0 && verb === 'help' && Object.hasOwn(VERBS, rest[0])) return main([rest[0], '--help']);
    process.stdout.write(usage());
    return 0;
  }
  if (verb === undefined || !Object.hasOwn(VERBS, verb)) {
    const problem = verb === undefined ? 'missing VERB' : `unknown verb ${JSON.stringify(verb)}`;
    process.stderr.write(`tpsd: ${problem}\n\n${usage()}`);
    return 2;
  }
  try {
    const module = await VERBS[verb].load();
    return await module.run(rest);
  } catch (err) {
    process.stderr.write(`tpsd ${verb}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
