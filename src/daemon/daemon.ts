// The composition root: how the daemon starts and stops, in one place.
//
// Start: check the native uWS build and the listen settings, make sure nobody
// else serves the port (start-checks.ts), lay out shared memory and the
// buckets, open the telemetry database in data_dir and re-apply the persisted
// limit overrides (main-state.ts), start the I/O threads (io-threads.ts: each
// a uWS app on the same port), then run the controller's tick on this thread,
// each tick followed by its telemetry write (tick-loop.ts).
// With a `cluster` section, the pools marked `shared` run on this node's share
// (cluster/cluster-node.ts), which joins once the port is known.
// Stop: stop the I/O threads (new acquires refused, a message being answered
// cut within 16 requests, waiters answered SHUTTING_DOWN, connections
// closed), run a last tick from the counters in shared memory as soon as the
// threads said they stopped, or after a bounded wait whatever they are doing
// (so every count the threads accepted is written), leave the cluster, close
// the database, and wait for the threads to exit by themselves (never
// terminate()d: that aborts the process while uWS holds a socket), all within
// STOP_EXIT_WAIT_MS more.
//
// Threads: the main thread owns the config, the lifecycle, the controller,
// the live limits and the database; I/O threads own connections, leases and
// waiters (src/io/io-worker.ts) and forward admin ops (16 LIMITS, 17 TENANTS,
// 18 APPROVALS) here (admin.ts); governance.ts holds large limit changes for approval.
// The model file is watched (model-watch.ts): a promoted model applies without SIGHUP.

import { hostname } from 'node:os';
import { createLogger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { assertConstants } from '../shm/layout.ts';
import { answerAdmin } from './admin.ts';
import { ClusterNode } from './cluster/cluster-node.ts';
import { DaemonHealthTracker } from './daemon-health.ts';
import { Governance } from './governance.ts';
import { IoThreads, QUIESCE_WAIT_MS } from './io-threads.ts';
import { ModelWatch } from './model-watch.ts';
import { openMainState } from './main-state.ts';
import { reloadConfig } from './reload.ts';
import { assertNativeUws, checkListen } from './start-checks.ts';
import { TenantDirectory } from './tenant-admin.ts';
import { TenantRows } from './tenant-rows.ts';
import { TickLoop } from './tick-loop.ts';
import { TickRecorder } from './tick-recorder.ts';
import type { Daemon, DaemonOptions } from './types.ts';

export { assertNativeUws } from './start-checks.ts';
export type { Daemon, DaemonOptions } from './types.ts';

/** After the last tick is written, how long stop() waits for the I/O threads to exit. */
const STOP_EXIT_WAIT_MS = 2500;
/** SIGTERM to exit: a stop must end well within this, however busy the threads are. */
const STOP_BUDGET_MS = 5000;
assertConstants(QUIESCE_WAIT_MS + STOP_EXIT_WAIT_MS < STOP_BUDGET_MS, 'QUIESCE_WAIT_MS + STOP_EXIT_WAIT_MS < STOP_BUDGET_MS');

export async function startDaemon(config: TpsdConfig, options: DaemonOptions = {}): Promise<Daemon> {
  assertNativeUws();
  const log = options.logger ?? createLogger(config.log.level, 'tpsd');
  const port = await checkListen(config, log);
  // Shared pools start at no share: the cap is in place before the buckets are first written.
  const cluster = config.cluster === null ? null : new ClusterNode(config, log);
  const state = await openMainState(config, log, cluster ?? undefined);
  const { keys, views, controller, telemetry, live } = state;

  const health = new DaemonHealthTracker(config.policy.mode, controller.modelPath,
    () => controller.modelVersion, telemetry?.writer ?? null, log);
  const policy = health.policyNow;
  if (policy.fallbackReason !== null) {
    log.warn({ mode: policy.mode, policy: policy.running, reason: policy.fallbackReason },
      `policy mode ${policy.mode} configured, but ${policy.running} applies: ${policy.fallbackReason}`);
  }
  // Set once the daemon exists; IoThreads calls onFatal only after start() resolved, and this guards it anyway.
  let daemon: Daemon | null = null;
  // Tenants (keys made on first use): their tiers' assignments re-applied, then handed to every I/O thread.
  const tenants = keys.hasTenants
    ? new TenantDirectory(keys, views, telemetry?.tenantTiers ?? null, (m) => threads.broadcast(m), () => controller.table.nowMs()) : null;
  const tenantTiers = tenants?.restore(log) ?? [];
  // Governance (off without governance.approve_above): held changes read back; the tiers' caps pass its gate.
  const governance = new Governance(keys, () => live.limits, () => live.config.governance?.approve_above ?? null,
    telemetry?.approvals ?? null, log);
  governance.restore();
  if (keys.hasTenants) controller.governTiers(governance);
  // Telemetry rows for the busiest tenants, from the per-tenant counters the controller's tick sweeps.
  const { tenantCounters, tenantCounts } = state;
  const recorder = new TickRecorder(controller, views, keys, config, telemetry?.writer ?? null,
    tenantCounts === null || tenants === null ? null : new TenantRows(tenantCounts, tenants.table, keys));
  const threads = new IoThreads({
    views, bucketCount: keys.size, keys: keys.shared(), config, port, epochHrMs: state.epochHrMs, startedAtMs: Date.now(), policy, log, tenantTiers, tenantCounters,
    onAdmin: (request) => answerAdmin(live.limits, request, log, tenants, governance),
    onFatal: options.onFatal ?? ((err) => {
      log.fatal({ err }, 'an I/O thread died; stopping');
      if (daemon !== null) void daemon.stop().finally(() => process.exit(1));
    }),
  });
  try {
    await threads.start();
  } catch (err) {
    await threads.stop();
    await threads.exited(STOP_EXIT_WAIT_MS);
    await state.close();
    throw err;
  }
  cluster?.start(`${hostname()}:${port}`);
  const ticks = new TickLoop(controller, recorder, threads, () => live.limits.count, health, log, cluster,
    tenants === null ? null : () => tenants.sweep(controller.table.nowMs()));
  ticks.start(config.tick_ms);
  // A promoted model (`tpsd model promote` renames it over this file) is reloaded without SIGHUP.
  const modelWatch = new ModelWatch(controller.modelPath, async () => {
    const r = await controller.reloadModel();
    if (r.ok) telemetry?.registerModel(r.version, controller.modelPath);
    return r;
  }, log);
  modelWatch.start();

  let stopped: Promise<void> | null = null;
  daemon = {
    port, views, keys, controller, dbFile: telemetry?.file ?? null,
    get config() { return live.config; },
    get limits() { return live.limits; },
    reload: (next) => reloadConfig(state, next, threads, log, tenants),
    stop: () => stopped ??= (async () => {
      log.info('stopping: draining I/O threads');
      ticks.stopTimer();
      modelWatch.stop();
      // Resolves when every thread said it stopped (its counters are final), or after QUIESCE_WAIT_MS regardless.
      await threads.stop();
      // The counters are in shared memory: the last tick writes them whatever the threads are doing.
      await ticks.lastTick();
      // Nothing is granted any more: this node's shares go back to the cluster now, not at the end of its lease.
      await cluster?.leave();
      await state.close();
      await threads.exited(STOP_EXIT_WAIT_MS);
      log.info('stopped');
    })(),
  };
  log.info({ host: config.listen.host, port, io_threads: config.io_threads, keys: keys.size, mode: config.policy.mode }, `listening on ${config.listen.host}:${port}`);
  return daemon;
}
