// `tpsd train --from-history`: fine-tunes a model on scenario families built
// from the daemon's own telemetry (history-source.ts reads the database,
// ../train/history-scenarios.ts builds the scenarios) and writes a candidate
// model file into data_dir/models/ (or --out). CLI process, main thread; the
// rollouts run in the trainer's worker threads. Checkpoints are chosen on
// held-out members of the same families; the replays of the recorded history
// are played by the chosen one and recorded in the file.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_MODEL_PATH, ModelError, PpoModel } from '../ppo/model.ts';
import { familyScenario, REPLAY_WINDOW_S, replayWindows } from '../train/history-scenarios.ts';
import { HELD_OUT_SEED_BASE, train } from '../train/trainer.ts';
import type { ParsedArgs } from './args.ts';
import { readHistory } from './history-source.ts';
import { EXIT, formatTime, parseSince } from './terminal.ts';

/** Where candidates go: data_dir/models. */
export function candidatesDir(dataDir: string): string {
  return join(resolve(dataDir), 'models');
}

/** Writes `text` to `file` through a temporary file and a rename, so a reader never sees half a file. */
export function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export async function trainFromHistory(args: ParsedArgs, argv: string[], seed: number): Promise<number> {
  const now = Date.now();
  const since = parseSince(args.string('since') ?? '24h', now);
  const until = args.string('until') === undefined ? now : parseSince(args.string('until')!, now, 'until');
  const history = readHistory(args, 'train', since, until);
  if (typeof history === 'number') return history;
  history.db.close();
  const basePath = resolve(args.string('base') ?? history.config.policy.model ?? DEFAULT_MODEL_PATH);
  let base: PpoModel;
  try { base = PpoModel.load(basePath); } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    process.stderr.write(`tpsd train: --base: ${e.message}\n`);
    return EXIT.FAILURE;
  }
  const pools = history.pools;
  const durationS = args.number('duration') ?? 120;
  process.stderr.write(`history ${formatTime(history.fromMs)} .. ${formatTime(history.toMs)}: ${pools.length} pool(s) ` +
    `(${pools.map((p) => `${p.pool}: ${p.services.length} services, ${p.grantedTps.length} x ${p.stepS} s`).join('; ')}); fine-tuning ${base.version}\n`);
  const { file } = await train({
    iterations: args.number('iterations') ?? 20,
    episodesPerIteration: args.number('episodes') ?? 8,
    durationS, workers: args.number('workers') ?? 2, seed, hidden: [],
    evalEvery: args.number('eval-every') ?? 5,
    reportScenarios: pools.flatMap((p) => replayWindows(p, REPLAY_WINDOW_S, 3)),
    heldOut: args.number('held-out') ?? 8,
    timeBudgetS: args.number('time-budget') ?? 1080,
    hyper: { lr: args.number('lr') ?? 2e-4 },
    out: null, command: `tpsd train ${argv.join(' ')}`.trim(),
    log: (line) => process.stderr.write(`${line}\n`),
    init: base,
    trainEpisode: (it, j) => ({ scenario: familyScenario(pools[j % pools.length], (seed * 1_000_003 + it * 1000 + j) & 0x7fffffff, durationS) }),
    heldOutEpisode: (i) => ({ scenario: familyScenario(pools[i % pools.length], HELD_OUT_SEED_BASE + i, durationS) }),
    inputs: { history: pools, base_model_path: basePath },
  });
  const out = resolve(args.string('out') ?? join(candidatesDir(history.config.data_dir), `candidate-${file.model_version}.json`));
  writeAtomically(out, `${JSON.stringify(file)}\n`);
  process.stdout.write(`${out}\n`);
  process.stderr.write(`wrote candidate ${file.model_version} (fine-tuned from ${base.version}); compare it with \`tpsd model eval ${out}\`\n`);
  return 0;
}
