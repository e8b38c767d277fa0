// What the main thread owns, opened in this order at start and closed after
// the last tick: the key index, shared memory with every bucket initialized,
// the controller, the telemetry database in data_dir (a database that cannot
// be opened stops the start) with the model registered, and the live limits
// with the persisted overrides re-applied.
//
// Threads: main thread only. The I/O threads share the memory (views.sab) and
// nothing else of this: they reach the limits through admin ops (admin.ts).

import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { Controller, usesPpo, type PoolCapProvider } from '../control/controller.ts';
import { DEFAULT_MODEL_PATH } from '../ppo/model.ts';
import { INFER_TASK_URL } from '../ppo/ppo-pool.ts';
import { threadEntry } from '../shm/thread-bundle.ts';
import { BucketTable } from '../shm/bucket-table.ts';
import { createClock, hrtimeMs } from '../shm/clock.ts';
import { KeyIndex } from '../shm/key-index.ts';
import { allocateShm, tenantSlotsFor, type ShmViews } from '../shm/layout.ts';
import { TenantCounterReader, allocateTenantCounters, tenantCounterViews } from '../shm/tenant-counters.ts';
import { tenantSlotsWanted } from '../config/tenants-schema.ts';
import { openTelemetry, type Telemetry } from '../storage/telemetry.ts';
import { LiveLimits } from './live-limits.ts';

/** The config and the limits in force: set at start, replaced by each reload (reload.ts). */
export interface LiveState {
  config: TpsdConfig;
  limits: LiveLimits;
}

export interface MainState {
  readonly keys: KeyIndex;
  readonly views: ShmViews;
  /** Per-tenant counters (shm/tenant-counters.ts): the buffer for the I/O threads, the main thread's reader; null without tenants. */
  readonly tenantCounters: SharedArrayBuffer | null;
  readonly tenantCounts: TenantCounterReader | null;
  /** The shared clock's epoch (hrtime ms), which every I/O thread's clock starts from. */
  readonly epochHrMs: number;
  readonly controller: Controller;
  /** Null with telemetry.enabled false. */
  readonly telemetry: Telemetry | null;
  readonly live: LiveState;
  /** Closes the database (its writer thread writes every tick posted first), then the controller. */
  close(): Promise<void>;
}

/** `poolCap`: the cluster's hook (daemon/cluster), in place before the buckets are first written. */
export async function openMainState(config: TpsdConfig, log: Logger, poolCap?: PoolCapProvider): Promise<MainState> {
  const keys = KeyIndex.fromConfig(config);
  const views = allocateShm(keys.size, config.io_threads, tenantSlotsFor(tenantSlotsWanted(config.pools.flatMap((p) => p.services))));
  const epochHrMs = hrtimeMs();
  const clock = createClock(epochHrMs);
  BucketTable.initialize(views, keys, clock.nowMs());
  // Per-tenant counters: their own buffer, written by every I/O thread, swept by the controller's tick.
  const slots = views.layout.tenantSlots;
  const tenantCounters = keys.hasTenants ? allocateTenantCounters(slots, config.io_threads) : null;
  const tenantCounts = tenantCounters === null ? null : new TenantCounterReader(tenantCounterViews(tenantCounters, slots, config.io_threads));
  // The PPO inference worker runs a bundle too, without a loader thread beside it (shm/thread-bundle.ts).
  const inferEntry = usesPpo(config) ? await threadEntry(INFER_TASK_URL, (err) =>
    log.warn({ err }, 'the PPO inference thread runs its TypeScript entry (a loader thread more): it could not be bundled')) : undefined;
  const controller = new Controller(views, keys, config, clock, { logger: log, poolCap, tenantCounts, inferEntry });
  let telemetry: Telemetry | null = null;
  try {
    telemetry = config.telemetry.enabled ? await openTelemetry(config, log, keys.shared()) : null;
  } catch (err) {
    await controller.close();
    throw err;
  }
  telemetry?.registerModel(controller.modelVersion, controller.modelPath);
  const live: LiveState = { config, limits: new LiveLimits(keys, controller, telemetry?.overrides ?? null, log) };
  live.limits.restore();
  const close = async (): Promise<void> => {
    try { await telemetry?.close(); } catch (err) { log.error({ err }, 'closing the telemetry database failed'); }
    await controller.close();
  };
  return { keys, views, tenantCounters, tenantCounts, epochHrMs, controller, telemetry, live, close };
}
