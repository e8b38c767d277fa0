// `tpsd model list|eval|promote` (CLI process, main thread): the models there
// are (the shipped one, the config's policy.model, the candidates in
// data_dir/models), a candidate compared with the running model on the
// recorded history (simulator replays of history windows and held-out
// variations of them, ../train/model-eval.ts), and its promotion: written
// atomically where policy.model points, audited in the database
// (model_audit). The daemon watches that file and reloads it on change, no
// SIGHUP needed (daemon/model-watch.ts).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_MODEL_PATH, ModelError, PpoModel, type ModelFile } from '../ppo/model.ts';
import { dbPath } from '../storage/db.ts';
import { loadedModels, readModelAudit, recordModelAudit } from '../storage/model-audit.ts';
import { familyScenario, REPLAY_WINDOW_S, replayWindows } from '../train/history-scenarios.ts';
import { compareModels, type ModelComparison } from '../train/model-eval.ts';
import { HELD_OUT_SEED_BASE } from '../train/trainer.ts';
import { runVerb, UsageError, type ParsedArgs, type VerbSpec } from './args.ts';
import { DB_FLAGS, openHistory } from './data-source.ts';
import { daemonConfig, readHistory } from './history-source.ts';
import { candidatesDir, writeAtomically } from './train-history.ts';
import { EXIT, formatTime, parseSince, table } from './terminal.ts';

/** Variations per pool `eval` plays beside the replays; seeds disjoint from the trainer's held-out ones. */
const EVAL_VARIANTS = 4;
const EVAL_SEED_BASE = HELD_OUT_SEED_BASE + 1_000_000;

export const SPEC: VerbSpec = {
  name: 'model',
  summary: 'List the PPO models, compare a candidate with the running one on recorded history, promote it.',
  positionals: [
    { name: 'ACTION', help: 'list, eval or promote', required: true },
    { name: 'FILE', help: 'eval, promote: the candidate model file' },
  ],
  flags: {
    against: { type: 'string', value: 'FILE', help: 'eval, promote: the model to beat (default the config\'s policy.model, else the shipped one)' },
    since: { type: 'string', value: 'WHEN', help: 'eval, promote: the history to replay, back from now or a date/time (default 1h)' },
    until: { type: 'string', value: 'WHEN', help: 'eval, promote: its end, back from now or a date/time (default now)' },
    force: { type: 'boolean', help: 'promote: even when the candidate does worse than the running model (audited as forced)' },
    json: { type: 'boolean', help: 'print JSON' },
    ...DB_FLAGS,
  },
  details: 'list: the shipped model, the config\'s policy.model (the running one), candidates in\n' +
    'DATA_DIR/models (from `tpsd train --from-history`), what the daemon last loaded, recent promotions.\n' +
    `eval: every pool's recorded history is replayed in the simulator (up to 4 windows of ${REPLAY_WINDOW_S} s)\n` +
    `and ${EVAL_VARIANTS} held-out variations of it, by fair, the running model and the candidate; the\n` +
    'difference is relative to fair\'s reward.\n' +
    'promote: evaluates first and refuses (exit 5) a candidate whose mean is below the running\n' +
    'model\'s, unless --force; then writes it where policy.model points (never over the shipped\n' +
    'model: set policy.model first) and records the promotion in the database. The daemon\n' +
    'notices the new file within about a second and reloads it (no SIGHUP); a file it cannot use\n' +
    'leaves the running model in place (logged).\n' +
    'Exit status: 0 ok, 1 unexpected error or unusable model file, 2 wrong usage, 5 refused, 6 no history.',
};

interface Listed { role: string; path: string; file: ModelFile | null; error?: string }

function readModelFile(path: string): ModelFile | { error: string } {
  try {
    const text = readFileSync(path, 'utf8');
    const m = PpoModel.fromJson(JSON.parse(text), path);
    return { ...(JSON.parse(text) as ModelFile), model_version: m.version };
  } catch (e) { return { error: (e as Error).message }; }
}

function list(args: ParsedArgs): number {
  const config = daemonConfig(args, 'model');
  if (typeof config === 'number') return config;
  const running = resolve(config.policy.model ?? DEFAULT_MODEL_PATH);
  const paths: [string, string][] = [[running, 'running (policy.model)']];
  if (running !== DEFAULT_MODEL_PATH) paths.push([DEFAULT_MODEL_PATH, 'shipped']);
  const dir = candidatesDir(config.data_dir);
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) if (join(dir, f) !== running) paths.push([join(dir, f), 'candidate']);
  }
  const models: Listed[] = paths.map(([path, role]) => {
    const r = existsSync(path) ? readModelFile(path) : { error: 'missing' };
    return 'error' in r ? { role, path, file: null, error: r.error } : { role, path, file: r };
  });
  // The database is optional here: without one, only the files are listed.
  const db = args.has('db') || args.has('data') || existsSync(dbPath(config.data_dir)) ? openHistory(args, 'model') : null;
  const loaded = db !== null && typeof db !== 'number' ? loadedModels(db) : [];
  const audit = db !== null && typeof db !== 'number' ? readModelAudit(db, 10) : [];
  if (db !== null && typeof db !== 'number') db.close();
  if (args.boolean('json')) {
    process.stdout.write(`${JSON.stringify({ models: models.map((m) => ({ role: m.role, path: m.path, version: m.file?.model_version ?? null,
      error: m.error, metadata: m.file?.metadata, eval: m.file?.eval })), loaded, audit }, null, 2)}\n`);
    return 0;
  }
  const heldOut = (f: ModelFile): string => {
    const h = (f.eval as { held_out?: { vs_fair_mean?: number } }).held_out?.vs_fair_mean;
    return typeof h === 'number' ? `${(h * 100).toFixed(2)}%` : '-';
  };
  const rows = [['VERSION', 'ROLE', 'CREATED', 'FROM', 'HELD-OUT VS FAIR', 'PATH'], ...models.map((m) => m.file === null
    ? ['-', m.role, '-', '-', m.error ?? '', m.path]
    : [m.file.model_version, m.role, m.file.created.slice(0, 19), String(m.file.metadata.fine_tuned_from ?? '-'), heldOut(m.file), m.path])];
  process.stdout.write(table(rows));
  if (loaded.length > 0) process.stdout.write(`\nlast loaded by the daemon: ${loaded[0].version} (${formatTime(loaded[0].lastLoadedMs)}, ${loaded[0].path})\n`);
  for (const a of audit) process.stdout.write(`${formatTime(a.tsMs)}  ${a.action.toUpperCase()}  ${a.previous ?? '-'} -> ${a.version}  by ${a.actor}\n`);
  return 0;
}

function loadModel(path: string, what: string): PpoModel | number {
  try { return PpoModel.load(path); } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    process.stderr.write(`tpsd model: ${what}: ${e.message}\n`);
    return EXIT.FAILURE;
  }
}

/** The candidate against the running model on the recorded history; the comparison, or an exit code. */
async function evaluate(args: ParsedArgs, candidatePath: string): Promise<{ cmp: ModelComparison; target: string | null; dbFile: string } | number> {
  const candidate = loadModel(candidatePath, 'candidate');
  if (typeof candidate === 'number') return candidate;
  const now = Date.now();
  const until = args.string('until') === undefined ? now : parseSince(args.string('until')!, now, 'until');
  const history = readHistory(args, 'model', parseSince(args.string('since') ?? '1h', now), until);
  if (typeof history === 'number') return history;
  const dbFile = history.db.name;
  history.db.close();
  const target = history.config.policy.model === null ? null : resolve(history.config.policy.model);
  const current = loadModel(resolve(args.string('against') ?? target ?? DEFAULT_MODEL_PATH), 'running model');
  if (typeof current === 'number') return current;
  const scenarios = history.pools.flatMap((p) => [...replayWindows(p, REPLAY_WINDOW_S, 4),
    ...Array.from({ length: EVAL_VARIANTS }, (_, k) => familyScenario(p, EVAL_SEED_BASE + k, Math.min(REPLAY_WINDOW_S, 120)))]);
  const cmp = await compareModels(scenarios, current, candidate, (d, n) => process.stderr.write(`\r  evaluated ${d}/${n} scenarios`));
  process.stderr.write('\n');
  return { cmp, target, dbFile };
}

function printComparison(cmp: ModelComparison): void {
  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;
  process.stdout.write(table([['SCENARIO', 'FAIR', `RUNNING ${cmp.current}`, `CANDIDATE ${cmp.candidate}`, 'CANDIDATE - RUNNING'],
    ...cmp.rows.map((r) => [r.scenario, r.fair.toFixed(1), r.current.toFixed(1), r.candidate.toFixed(1), pct(r.delta)])], new Set([1, 2, 3, 4])));
  process.stdout.write(`mean ${pct(cmp.mean)}, worst ${pct(cmp.worst)} (relative to fair's reward)\n`);
}

async function promote(args: ParsedArgs, file: string): Promise<number> {
  const r = await evaluate(args, file);
  if (typeof r === 'number') return r;
  const { cmp, target, dbFile } = r;
  if (!args.boolean('json')) printComparison(cmp);
  const actor = `tpsd model promote (${userInfo().username})`;
  const detail = { mean: cmp.mean, worst: cmp.worst, scenarios: cmp.rows.length, forced: args.boolean('force') };
  const refuse = (why: string): number => {
    recordModelAudit(dbFile, { tsMs: Date.now(), action: 'refused', version: cmp.candidate, previous: cmp.current, path: target ?? '', actor, detail: { ...detail, why } });
    process.stderr.write(`tpsd model promote: refused: ${why}\n`);
    return EXIT.REFUSED;
  };
  if (target === null) return refuse('policy.model is not set in the config, so the daemon runs the shipped model; set policy.model to a file (e.g. DATA_DIR/models/current.json) first');
  if (cmp.mean < 0 && !args.boolean('force')) return refuse(`the candidate does worse than the running model on the recorded history (mean ${(cmp.mean * 100).toFixed(2)}%); --force to promote anyway`);
  writeAtomically(target, readFileSync(resolve(file), 'utf8'));
  recordModelAudit(dbFile, { tsMs: Date.now(), action: 'promote', version: cmp.candidate, previous: cmp.current, path: target, actor, detail });
  if (args.boolean('json')) process.stdout.write(`${JSON.stringify({ promoted: cmp.candidate, previous: cmp.current, path: target, comparison: cmp }, null, 2)}\n`);
  else process.stdout.write(`promoted ${cmp.candidate} (was ${cmp.current}) to ${target}; the daemon reloads it within about a second\n`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return runVerb(argv, SPEC, async (args) => {
    const [action, file] = args.positionals;
    if (action !== 'list' && action !== 'eval' && action !== 'promote') throw new UsageError(`ACTION must be list, eval or promote, found ${JSON.stringify(action)}`);
    if (action === 'list') return list(args);
    if (file === undefined) throw new UsageError(`${action} needs the candidate's FILE`);
    if (action === 'promote') return promote(args, file);
    const r = await evaluate(args, file);
    if (typeof r === 'number') return r;
    if (args.boolean('json')) process.stdout.write(`${JSON.stringify(r.cmp, null, 2)}\n`);
    else printComparison(r.cmp);
    return 0;
  });
}
