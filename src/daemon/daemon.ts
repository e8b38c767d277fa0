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
// Stop: stop the I/O threads (new acquires refused, waiters answered
// SHUTTING_DOWN, connections closed, threads exited), run a last tick (so
// every count the threads accepted is written), leave the cluster, close
// the database.
//
// Threads: the main thread owns the config, the lifecycle, the controller,
// the live limits and the database; I/O threads own connections, leases and
// waiters (src/io/io-worker.ts) and forward admin ops (op 16 LIMITS) here (admin.ts).

import { hostname } from 'node:os';
import { createLogger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { answerAdmin } from './admin.ts';
import { ClusterNode } from './cluster/cluster-node.ts';
import { IoThreads } from './io-threads.ts';
import { openMainState } from './main-state.ts';
import { reloadConfig } from './reload.ts';
import { assertNativeUws, checkListen } from './start-checks.ts';
import { TickLoop } from './tick-loop.ts';
import { TickRecorder } from './tick-recorder.ts';
import type { Daemon, DaemonOptions } from './types.ts';

export { assertNativeUws } from './start-checks.ts';
export type { Daemon, DaemonOptions } from './types.ts';

export async function startDaemon(config: TpsdConfig, options: DaemonOptions = {}): Promise<Daemon> {
  assertNativeUws();
  const log = options.logger ?? createLogger(config.log.level, 'tpsd');
  const port = await checkListen(config, log);
  // Shared pools start at no share: the cap is in place before the buckets are first written.
  const cluster = config.cluster === null ? null : new ClusterNode(config, log);
  const state = await openMainState(config, log, cluster ?? undefined);
  const { keys, views, controller, telemetry, live } = state;
  const recorder = new TickRecorder(controller, views, keys, config, telemetry?.writer ?? null);
  const threads = new IoThreads({
    views, bucketCount: keys.size, config, port, epochHrMs: state.epochHrMs, startedAtMs: Date.now(), log,
    onAdmin: (request) => answerAdmin(live.limits, request, log),
    onFatal: options.onFatal ?? ((err) => {
      log.fatal({ err }, 'an I/O thread died; stopping');
      void daemon.stop().finally(() => process.exit(1));
    }),
  });
  try { await threads.start(); } catch (err) { await threads.stop(); await state.close(); throw err; }
  cluster?.start(`${hostname()}:${port}`);
  const ticks = new TickLoop(controller, recorder, threads, () => live.limits.count, log, cluster);
  ticks.start(config.tick_ms);

  let stopped: Promise<void> | null = null;
  const daemon: Daemon = {
    port, views, keys, controller, dbFile: telemetry?.file ?? null,
    get config() { return live.config; },
    get limits() { return live.limits; },
    reload: (next) => reloadConfig(state, next, threads, log),
    stop: () => stopped ??= (async () => {
      log.info('stopping: draining I/O threads');
      ticks.stopTimer();
      await threads.stop();
      // The threads are gone, so their counters are final: the last tick writes all of them.
      await ticks.lastTick();
      // Nothing is granted any more: this node's shares go back to the cluster now, not at the end of its lease.
      await cluster?.leave();
      await state.close();
      log.info('stopped');
    })(),
  };
  log.info({ host: config.listen.host, port, io_threads: config.io_threads, keys: keys.size, mode: config.policy.mode }, `listening on ${config.listen.host}:${port}`);
  return daemon;
}
