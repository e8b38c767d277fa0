// The daemon's health as the main thread sees it, worked out once per tick
// and sent to every I/O thread with the tick's figures (tick-loop.ts):
// - whether telemetry is being written: the writer thread's last tick write
//   failed (SQLite's reason, e.g. a full disk), ticks were dropped because it
//   is behind, or none was written for STALE_TICKS ticks (the thread is stuck
//   or gone). /readyz answers 503 with that reason, 200 again once a tick is
//   written; /healthz stays the liveness probe.
// - which policy really applies (PolicyRunning): when the mode asks for PPO
//   and no model loaded, fair applies, and STATUS, /readyz and /metrics say
//   so with the reason. Logged loudly at start (daemon.ts) and when it changes.
//
// Threads: main thread only. Reads the TelemetryWriter's figures (set by its
// message handler on this thread) and the controller's model version.

import type { Logger } from '../config/log.ts';
import { runningMode, type PolicyMode } from '../config/types.ts';
import type { DaemonHealth, PolicyRunning } from '../io/messages.ts';
import { PpoModel } from '../ppo/model.ts';
import { MAX_PENDING, type TelemetryWriter } from '../storage/telemetry-writer.ts';

/** Ticks without a tick written (and no failure reported) before the writer counts as stuck: past its queue. */
export const STALE_TICKS = MAX_PENDING + 2;

/** What the mode applies when it has a model (`modelVersion` not 'none') or not; `modelPath` to say why not. */
export function policyRunning(mode: PolicyMode, modelVersion: string, modelPath: string): PolicyRunning {
  const running = runningMode(mode);
  if (running === 'static') return { mode, running: 'static', fallbackReason: null };
  if (running === 'fallback') return { mode, running: 'fair', fallbackReason: null };
  const hasModel = modelVersion !== 'none';
  if (running === 'shadow') {
    return { mode, running: 'fair', fallbackReason: hasModel ? null : `shadow mode has no model to record: ${whyNoModel(modelPath)}` };
  }
  return hasModel ? { mode, running: 'ppo', fallbackReason: null } : { mode, running: 'fair', fallbackReason: whyNoModel(modelPath) };
}

/** Why the model at `path` is not in use, in words (the model loader's own message). */
function whyNoModel(path: string): string {
  try {
    PpoModel.load(path);
    return `the model ${path} was not usable when it was loaded; SIGHUP reloads it`;
  } catch (e) {
    return `no usable PPO model: ${(e as Error).message}`;
  }
}

export class DaemonHealthTracker {
  private prevDropped = 0;
  private prevWritten = -1;
  private ticksWithoutWrite = 0;
  private policy: PolicyRunning;
  private policyModel: string;

  constructor(
    private readonly mode: PolicyMode,
    private readonly modelPath: string,
    private readonly modelVersion: () => string,
    private readonly writer: TelemetryWriter | null,
    private readonly log: Logger,
  ) {
    this.policyModel = modelVersion();
    this.policy = policyRunning(mode, this.policyModel, modelPath);
  }

  /** The policy that applies now (worked out again only when the model in use changes). */
  get policyNow(): PolicyRunning {
    const version = this.modelVersion();
    if (version !== this.policyModel) {
      this.policyModel = version;
      this.policy = policyRunning(this.mode, version, this.modelPath);
      if (this.policy.fallbackReason === null) this.log.info({ mode: this.mode, policy: this.policy.running }, `policy mode ${this.mode}: ${this.policy.running} applies`);
      else this.log.warn({ mode: this.mode, policy: this.policy.running, reason: this.policy.fallbackReason }, `policy mode ${this.mode} configured, but ${this.policy.running} applies`);
    }
    return this.policy;
  }

  /** Call once per tick, after the tick's telemetry was handed to the writer. */
  check(): DaemonHealth {
    return { telemetryProblem: this.telemetryProblem(), policy: this.policyNow };
  }

  private telemetryProblem(): string | null {
    const w = this.writer;
    if (w === null) return null;
    const dropped = w.stats.droppedTicks - this.prevDropped;
    this.prevDropped = w.stats.droppedTicks;
    if (w.lastWrittenTick !== this.prevWritten) { this.prevWritten = w.lastWrittenTick; this.ticksWithoutWrite = 0; } else this.ticksWithoutWrite++;
    if (w.lastError !== null) return `telemetry writes are failing (${w.stats.errors} failed so far): ${w.lastError}`;
    if (dropped > 0) return `the telemetry writer is behind: ${dropped} tick(s) dropped since the last tick (${w.stats.droppedTicks} in all)`;
    if (this.ticksWithoutWrite >= STALE_TICKS) return `no telemetry written for ${this.ticksWithoutWrite} ticks: the writer thread is stuck or gone (see the log)`;
    return null;
  }
}
