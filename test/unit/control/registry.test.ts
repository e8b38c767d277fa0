// One registry for each set of names: policies (control/policies/registry.ts),
// modes (config/types.ts, read by shm MODE_NAMES and /metrics) and fallback
// kinds (control/decision.ts, counted by the runner and rendered by /metrics
// from DaemonStats).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { POLICY_MODES, RUNNING_MODES, runningMode } from '../../../src/config/types.ts';
import { FALLBACK_KINDS } from '../../../src/control/decision.ts';
import { createPolicy, isPolicyName, POLICY_NAMES } from '../../../src/control/policies/registry.ts';
import { PolicyRunner } from '../../../src/control/policy-runner.ts';
import type { DaemonStats } from '../../../src/io/messages.ts';
import { renderMetrics } from '../../../src/io/metrics.ts';
import type { StatusSnapshot } from '../../../src/io/status.ts';
import { PpoModel } from '../../../src/ppo/model.ts';
import { KeyIndex } from '../../../src/shm/key-index.ts';
import { allocateShm, MODE_NAMES } from '../../../src/shm/layout.ts';

test('every policy name builds the policy of that name; ppo needs its model', () => {
  const model = PpoModel.load();
  for (const name of POLICY_NAMES) assert.equal(createPolicy(name, model).name, name);
  assert.throws(() => createPolicy('ppo'), /needs a model/);
  assert.ok(isPolicyName('aimd') && !isPolicyName('all'));
});

test('the running modes derive from the config\'s modes: shm MODE_NAMES is that list, fair runs as fallback', () => {
  assert.deepEqual(RUNNING_MODES, ['ppo', 'shadow', 'fallback', 'static']);
  assert.equal(MODE_NAMES, RUNNING_MODES);
  assert.equal(runningMode('fair'), 'fallback');
  for (const m of POLICY_MODES) assert.ok(MODE_NAMES.includes(runningMode(m)), m);
});

test('/metrics lists every running mode and every fallback kind the runner counts', () => {
  const runner = new PolicyRunner('fair', null, 50, null);
  assert.deepEqual(Object.keys(runner.fallbacksByKind), [...FALLBACK_KINDS]);
  const keys = new KeyIndex([]);
  const snapshot = { mode: 'static', keys: [], pools: [] } as unknown as StatusSnapshot;
  const stats = {
    ticks: 1, tickOverruns: 0, tickLastMs: 1, tickSumMs: 1, fallbacks: { ...runner.fallbacksByKind, busy: 3 },
    shadowRegret: 0, model: 'none', overrides: 0, sqlite: { enabled: false },
  } as unknown as DaemonStats;
  const body = renderMetrics(snapshot, keys, allocateShm(0, 1), stats);
  assert.deepEqual([...body.matchAll(/^tpsd_policy_mode\{mode="([^"]+)"\} (\d)$/gm)].map((m) => [m[1], m[2]]),
    MODE_NAMES.map((m) => [m, m === 'static' ? '1' : '0']));
  assert.deepEqual([...body.matchAll(/^tpsd_policy_fallbacks_total\{kind="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
    FALLBACK_KINDS.map((k) => [k, k === 'busy' ? 3 : 0]));
});
