// DaemonHealthTracker: the reasons /readyz gives from the telemetry writer's
// figures (failed write, ticks dropped, nothing written for STALE_TICKS
// ticks) and the return to ready once a tick is written; policyRunning for
// every mode, with and without a model. readyz.test.ts checks a real daemon
// with a real failing SQLite file and a missing model.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/config/log.ts';
import { STALE_TICKS, DaemonHealthTracker, policyRunning } from '../../../src/daemon/daemon-health.ts';
import { DEFAULT_MODEL_PATH } from '../../../src/ppo/model.ts';
import type { TelemetryWriter } from '../../../src/storage/telemetry-writer.ts';

/** The writer's figures the tracker reads, set by hand. */
function writerFigures() {
  return { stats: { errors: 0, droppedTicks: 0 }, lastWrittenTick: -1, lastError: null as string | null };
}

describe('DaemonHealthTracker', () => {
  it('names a failed write, dropped ticks and a stuck writer, and is ready again once a tick is written', () => {
    const w = writerFigures();
    const h = new DaemonHealthTracker('fair', DEFAULT_MODEL_PATH, () => 'none', w as unknown as TelemetryWriter, createLogger('silent'));
    w.lastWrittenTick = 1;
    assert.equal(h.check().telemetryProblem, null);

    w.stats.errors = 1; w.lastError = 'database or disk is full';
    assert.equal(h.check().telemetryProblem, 'telemetry writes are failing (1 failed so far): database or disk is full');
    w.lastError = null; w.lastWrittenTick = 3;
    assert.equal(h.check().telemetryProblem, null, 'a tick written: ready');

    w.stats.droppedTicks = 2; w.lastWrittenTick = 4;
    assert.match(h.check().telemetryProblem!, /^the telemetry writer is behind: 2 tick\(s\) dropped/);
    w.lastWrittenTick = 5;
    assert.equal(h.check().telemetryProblem, null, 'no more drops: ready');

    let problem: string | null = null;
    for (let i = 0; i < STALE_TICKS; i++) problem = h.check().telemetryProblem;
    assert.match(problem!, new RegExp(`^no telemetry written for ${STALE_TICKS} ticks`));
    w.lastWrittenTick = 6;
    assert.equal(h.check().telemetryProblem, null);
  });

  it('has nothing to say with telemetry off', () => {
    const h = new DaemonHealthTracker('fair', DEFAULT_MODEL_PATH, () => 'none', null, createLogger('silent'));
    for (let i = 0; i < STALE_TICKS + 1; i++) assert.equal(h.check().telemetryProblem, null);
  });

  it('follows the model in use: fair with a reason while there is none, ppo once one loads', () => {
    let version = 'none';
    const h = new DaemonHealthTracker('ppo', '/nonexistent/model.json', () => version, null, createLogger('silent'));
    assert.equal(h.check().policy.running, 'fair');
    assert.match(h.check().policy.fallbackReason!, /\/nonexistent\/model\.json/);
    version = 'ppo-1234';
    assert.deepEqual(h.check().policy, { mode: 'ppo', running: 'ppo', fallbackReason: null });
  });
});

describe('policyRunning', () => {
  it('is the mode\'s policy, and fair with a reason when PPO is asked for without a model', () => {
    assert.deepEqual(policyRunning('static', 'none', DEFAULT_MODEL_PATH), { mode: 'static', running: 'static', fallbackReason: null });
    assert.deepEqual(policyRunning('fallback', 'none', DEFAULT_MODEL_PATH), { mode: 'fallback', running: 'fair', fallbackReason: null });
    assert.deepEqual(policyRunning('fair', 'none', DEFAULT_MODEL_PATH), { mode: 'fair', running: 'fair', fallbackReason: null });
    assert.deepEqual(policyRunning('ppo', 'ppo-1', DEFAULT_MODEL_PATH), { mode: 'ppo', running: 'ppo', fallbackReason: null });
    assert.deepEqual(policyRunning('shadow', 'ppo-1', DEFAULT_MODEL_PATH), { mode: 'shadow', running: 'fair', fallbackReason: null });
    const missing = policyRunning('ppo', 'none', '/nonexistent/model.json');
    assert.equal(missing.running, 'fair');
    assert.match(missing.fallbackReason!, /^no usable PPO model: cannot read model \/nonexistent\/model\.json/);
    assert.match(policyRunning('shadow', 'none', '/nonexistent/model.json').fallbackReason!, /^shadow mode has no model to record/);
    // A model that loads now but is not in use (it was unusable at load): SIGHUP is the way.
    assert.match(policyRunning('ppo', 'none', DEFAULT_MODEL_PATH).fallbackReason!, /SIGHUP reloads it/);
  });
});
