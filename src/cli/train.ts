// `tpsd train`: trains the PPO allocation model on generated scenario families
// (rollouts in Piscina workers), choosing the checkpoint on held-out generated
// scenarios only, reports the chosen one on the example scenarios, and writes
// a versioned model file recording its commit, command and input hashes.
// The shipped config/model.json is produced, byte for byte, by
// `npm run train:model`.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenario } from '../sim/scenario.ts';
import { train } from '../train/trainer.ts';
import { runVerb, UsageError, type VerbSpec } from './args.ts';
import { DB_FLAGS } from './data-source.ts';
import { trainFromHistory } from './train-history.ts';

export const EXAMPLE_SCENARIOS_DIR = fileURLToPath(new URL('../../test/fixtures/scenarios/', import.meta.url));
/** The scenarios `npm run sim:table` reports: the shared examples, then the throttling ones. */
export const REPORTED_SCENARIO_DIRS = [EXAMPLE_SCENARIOS_DIR, join(EXAMPLE_SCENARIOS_DIR, 'throttling')];

export function reportedScenarioFiles(): string[] {
  return REPORTED_SCENARIO_DIRS.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f)));
}

export const SPEC: VerbSpec = {
  name: 'train',
  summary: 'Train the PPO allocation model and write a model file.',
  flags: {
    out: { type: 'string', value: 'FILE', help: 'where to write the model (default config/model.json)' },
    scenario: { type: 'string', value: 'FILE', multiple: true, help: 'reported scenario, played by the chosen model and recorded, never used to choose it (repeatable; default the sim:table ones)' },
    iterations: { type: 'integer', min: 1, max: 100000, help: 'PPO iterations (default 30; 20 with --from-history)' },
    episodes: { type: 'integer', min: 1, max: 10000, help: 'generated episodes per iteration (default 24)' },
    duration: { type: 'integer', min: 10, max: 3600, help: 'seconds per generated episode (default 150)' },
    workers: { type: 'integer', min: 1, max: 64, help: 'rollout worker threads (default 2)' },
    seed: { type: 'integer', min: 0, max: 1000000, help: 'random seed (default 1)' },
    hidden: { type: 'string', value: 'N,N', help: 'hidden layer sizes (default 24,24)' },
    'eval-every': { type: 'integer', min: 1, max: 1000, help: 'evaluate every N iterations (default 5)' },
    'held-out': { type: 'integer', min: 0, max: 1000, help: 'held-out generated scenarios the checkpoint is chosen on (default 16)' },
    'time-budget': { type: 'integer', min: 1, max: 1000000, help: 'stop starting iterations after N seconds (default 1080)' },
    lr: { type: 'number', min: 1e-6, max: 1, help: 'Adam learning rate (default 0.0005; 0.0002 with --from-history)' },
    'from-history': { type: 'boolean', help: 'fine-tune on scenario families built from the daemon\'s telemetry; write a candidate' },
    since: { type: 'string', value: 'WHEN', help: '--from-history: the history to learn from, back from now or a date/time (default 24h)' },
    until: { type: 'string', value: 'WHEN', help: '--from-history: its end (default now)' },
    base: { type: 'string', value: 'FILE', help: '--from-history: the model to fine-tune (default the config\'s policy.model, else the shipped one)' },
    ...DB_FLAGS,
  },
  details: 'Progress (steps, reward per tick, losses, evaluation against fair) goes to stderr.\n' +
    'Checkpoints are chosen on held-out generated scenarios (seeds training never draws); the\n' +
    'reported scenarios only get the chosen model\'s result recorded in the file.\n' +
    'The same flags, seed and code give the same bytes whatever --workers (no clock in the file:\n' +
    '"created" is the code commit\'s date), unless the time budget cuts the run short.\n' +
    'The file records the commit, the command and a sha256 of every input (code, recipe,\n' +
    'episodes, held-out and reported scenarios, starting model).\n\n' +
    '--from-history reads the daemon\'s database (--data, --config or --db, as `tpsd history`):\n' +
    'per pool the recorded demand of each service, the 429s (the upstream\'s limit where they\n' +
    'were seen) and the latency become a replay scenario and a family of variations of it\n' +
    '(random windows, scaled demand and upstream, noise). The base model is fine-tuned on the\n' +
    'family (defaults: 20 iterations of 8 episodes of 120 s, 8 held-out members to choose the\n' +
    'checkpoint); the candidate goes to DATA_DIR/models/candidate-VERSION.json (or --out), its\n' +
    'path on stdout. Then: tpsd model eval FILE, tpsd model promote FILE.\n' +
    'Exit status: 0 ok, 1 unexpected error or unusable base model, 2 wrong usage, 6 no history.',
};

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    if (args.boolean('from-history')) return trainFromHistory(args, argv, args.number('seed') ?? 1);
    for (const f of ['since', 'until', 'base', 'data', 'db', 'config']) if (args.has(f)) throw new UsageError(`--${f} is for --from-history`);
    const hidden = (args.string('hidden') ?? '24,24').split(',').map(Number);
    if (hidden.some((h) => !Number.isInteger(h) || h < 1 || h > 256)) throw new UsageError('--hidden: expected sizes like 24,24');
    const files = args.strings('scenario').length > 0 ? args.strings('scenario') : reportedScenarioFiles();
    const reportScenarios = files.map((f) => parseScenario(JSON.parse(readFileSync(f, 'utf8')), f));
    const out = args.string('out') ?? fileURLToPath(new URL('../../config/model.json', import.meta.url));
    const { file } = await train({
      iterations: args.number('iterations') ?? 30,
      episodesPerIteration: args.number('episodes') ?? 24,
      durationS: args.number('duration') ?? 150,
      workers: args.number('workers') ?? 2,
      seed: args.number('seed') ?? 1,
      hidden,
      evalEvery: args.number('eval-every') ?? 5,
      reportScenarios,
      heldOut: args.number('held-out') ?? 16,
      timeBudgetS: args.number('time-budget') ?? 1080,
      hyper: args.number('lr') === undefined ? {} : { lr: args.number('lr') },
      out,
      command: `tpsd train ${argv.join(' ')}`.trim(),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stderr.write(`wrote ${out} (${file.model_version})\n`);
    return 0;
  });
}
