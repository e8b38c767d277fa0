// What a reloaded config (SIGHUP) may change while the daemon runs, and how
// it is applied. The shared-memory layout, the listen socket, the I/O
// threads, the database, the policy pipeline and each pool's gate kind
// (upstream.window) are built once at start; a change to any of them needs a
// restart, and so does a tenant tier's tps or burst (tierRateChanges).
// Everything per key (limits, bursts, concurrency, priorities), each pool's
// upstream.slo_ms, each tier's defence, auth, lease TTL, queue and connection
// limits, log level apply live, and the model file is read again.
//
// Threads: main thread only (cli/start.ts calls Daemon.reload on SIGHUP). The
// controller and the live limits change here; each I/O thread gets the new
// config by message and applies it between messages (io/io-worker.ts).

import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { DEFAULT_MODEL_PATH } from '../ppo/model.ts';
import { configForThreads, KeyIndex } from '../shm/key-index.ts';
import type { IoThreads } from './io-threads.ts';
import { LiveLimits } from './live-limits.ts';
import type { MainState } from './main-state.ts';
import { RestartNeededError } from './errors.ts';

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Why `next` cannot replace `current` without a restart, or null when it can. */
export function restartNeeded(current: TpsdConfig, next: TpsdConfig): string | null {
  const fixed: [string, unknown, unknown][] = [
    ['listen', current.listen, next.listen],
    ['io_threads', current.io_threads, next.io_threads],
    ['tick_ms', current.tick_ms, next.tick_ms],
    ['data_dir', current.data_dir, next.data_dir],
    ['telemetry', current.telemetry, next.telemetry],
    ['policy.mode', current.policy.mode, next.policy.mode],
    ['policy.model', current.policy.model, next.policy.model],
    ['policy.shadow_model', current.policy.shadow_model, next.policy.shadow_model],
    ['limits.idle_timeout_s', current.limits.idle_timeout_s, next.limits.idle_timeout_s],
    ['rls.host/port', [current.rls?.host, current.rls?.port], [next.rls?.host, next.rls?.port]],
    // A pool's gate is a sliding window or a token bucket in shared memory, chosen at start.
    ['pools[].upstream.window', current.pools.map((p) => p.upstream.window), next.pools.map((p) => p.upstream.window)],
    ['cluster', current.cluster, next.cluster],
    ['pools[].shared', current.pools.map((p) => p.shared === true), next.pools.map((p) => p.shared === true)],
  ];
  const changed = [...fixed.filter(([, a, b]) => !same(a, b)).map(([name]) => name), ...tierRateChanges(current, next)];
  const before = KeyIndex.fromConfig(current).specs.map((s) => s.key);
  const after = KeyIndex.fromConfig(next).specs.map((s) => s.key);
  if (!same(before, after)) changed.push(`the key set (${keySetChange(before, after)})`);
  return changed.length === 0 ? null : `changing ${changed.join(', ')} needs a restart`;
}

/**
 * The paths of tenant tiers' `tps` and `burst` that changed (the key set
 * being the same, tiers are at the same indices). Each I/O thread holds its
 * tiers' rates for the tenants it makes, and every live tenant its tier's
 * rate in its slot: neither is rewritten by a reload, so such a change needs
 * a restart. A tier's `defense` applies live (control/tenant-guard.ts).
 */
export function tierRateChanges(current: TpsdConfig, next: TpsdConfig): string[] {
  const changed: string[] = [];
  current.pools.forEach((pool, p) => pool.services.forEach((svc, s) => svc.tenants?.tiers.forEach((tier, t) => {
    const after = next.pools[p]?.services[s]?.tenants?.tiers[t];
    if (after === undefined || after.name !== tier.name) return; // a key-set change, named as such
    const at = `pools[${p}].services[${s}].tenants.tiers[${t}]`;
    if (after.tps !== tier.tps) changed.push(`${at}.tps`);
    if (after.burst !== tier.burst) changed.push(`${at}.burst`);
  })));
  return changed;
}

/** "+added, -removed" keys, or "order" when only the order differs; Sets, not includes(): a config may hold 100k keys. */
export function keySetChange(before: readonly string[], after: readonly string[]): string {
  const beforeKeys = new Set(before);
  const afterKeys = new Set(after);
  const added = after.filter((k) => !beforeKeys.has(k));
  const removed = before.filter((k) => !afterKeys.has(k));
  return [...added.map((k) => `+${k}`), ...removed.map((k) => `-${k}`)].join(', ') || 'order';
}

/**
 * Applies `next` without dropping connections and reloads the model. Throws,
 * keeping the running config, when the change needs a restart.
 */
export async function reloadConfig(
  state: MainState, next: TpsdConfig, threads: Pick<IoThreads, 'broadcast'>, log: Logger,
): Promise<{ model: string }> {
  const { controller, telemetry, live } = state;
  const reason = restartNeeded(live.config, next);
  if (reason !== null) throw new RestartNeededError(reason);
  const nextKeys = KeyIndex.fromConfig(next);
  controller.reconfigure(nextKeys, next);
  // Live overrides stay on top of the new config values (nextKeys: the same keys, the new config's limits).
  live.limits = new LiveLimits(nextKeys, controller, telemetry?.overrides ?? null, log);
  live.limits.restore();
  live.config = next;
  log.level = next.log.level;
  // The I/O threads' keys are the shared table's; their config has no services (as at start).
  threads.broadcast({ type: 'config', config: configForThreads(next) });
  const model = await controller.reloadModel();
  if (model.ok) telemetry?.registerModel(model.version, controller.modelPath);
  log.info({ model: model.version, model_ok: model.ok }, 'config reloaded');
  return { model: model.version };
}
