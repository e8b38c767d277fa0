// What a reloaded config (SIGHUP) may change while the daemon runs, and how
// it is applied. The shared-memory layout, the listen socket, the I/O
// threads, the database, the policy pipeline and each pool's gate kind
// (upstream.window) are built once at start; a change to any of them needs a
// restart, and so does a change to a service's set of tenant tiers (each tier
// is a bucket of the layout), its default_tier (every I/O thread holds it for
// the tenants it makes, and live tenants are in it) or its tenants.max (the
// tenant slots are sized from it at start): tenantSectionChanges names them.
// Everything per key (limits, bursts, concurrency, priorities, a tier's
// priority too), each pool's upstream.slo_ms, each tier's defence, tps and
// burst, tenants.idle_s, auth, lease TTL, queue and connection limits, log
// level, and `enforce` (dry runs) on any key or tier apply live, and the
// model file is read again.
//
// A tier's new tps and burst (tierRateChanges): the main thread rewrites
// every live tenant of the tier in shared memory at once, then sends the
// change to each I/O thread ('tier-rates'), which keeps it for the tenants
// it makes and fixes those it made at the old rate before the message came
// (io/tenant-keys.ts). A tenant under a defensive limit keeps it; the guard
// recomputes it from the new tps at its next tick (control/tenant-guard.ts).
//
// Threads: main thread only (cli/start.ts calls Daemon.reload on SIGHUP). The
// controller and the live limits change here; each I/O thread gets the new
// config by message and applies it between messages (io/io-worker.ts).

import type { Logger } from '../config/log.ts';
import type { TpsdConfig } from '../config/types.ts';
import { DEFAULT_MODEL_PATH } from '../ppo/model.ts';
import { configForThreads, KeyIndex, TIER_MARK } from '../shm/key-index.ts';
import { MILLI } from '../shm/layout.ts';
import type { TierRateChange } from '../shm/tenant-table.ts';
import type { IoThreads } from './io-threads.ts';
import { LiveLimits } from './live-limits.ts';
import type { MainState } from './main-state.ts';
import type { TenantDirectory } from './tenant-admin.ts';
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
  const changed = [...fixed.filter(([, a, b]) => !same(a, b)).map(([name]) => name), ...tenantSectionChanges(current, next)];
  const before = KeyIndex.fromConfig(current).specs.map((s) => s.key);
  const after = KeyIndex.fromConfig(next).specs.map((s) => s.key);
  if (!same(before, after)) changed.push(`the key set (${keySetChange(before, after)})`);
  return changed.length === 0 ? null : `changing ${changed.join(', ')} needs a restart`;
}

/**
 * The paths of what a reload cannot change in a service's tenants section
 * (the service being at the same place): a tier added, removed or put in
 * another's place, the default_tier, max; and the section itself added or
 * removed.
 */
export function tenantSectionChanges(current: TpsdConfig, next: TpsdConfig): string[] {
  const changed: string[] = [];
  current.pools.forEach((pool, p) => pool.services.forEach((svc, s) => {
    const after = next.pools[p]?.services[s];
    if (after === undefined || after.name !== svc.name || pool.name !== next.pools[p].name) return; // a key-set change, named as such
    const at = `pools[${p}].services[${s}].tenants`;
    const [a, b] = [svc.tenants ?? null, after.tenants ?? null];
    if (a === null || b === null) {
      if (a !== b) changed.push(`${at} (${a === null ? 'added' : 'removed'})`);
      return;
    }
    for (let t = 0; t < Math.max(a.tiers.length, b.tiers.length); t++) {
      const [was, is] = [a.tiers[t]?.name, b.tiers[t]?.name];
      if (was === is) continue;
      const what = was === undefined ? `tier "${is}" added` : is === undefined ? `tier "${was}" removed` : `tier "${was}" replaced by "${is}"`;
      changed.push(`${at}.tiers[${t}] (${what})`);
    }
    if (a.default_tier !== b.default_tier) changed.push(`${at}.default_tier`);
    if (a.max !== b.max) changed.push(`${at}.max`);
  }));
  return changed;
}

/**
 * The tiers whose `tps` or `burst` changed (the tiers being the same, at the
 * same indices: tenantSectionChanges), with their buckets in `keys`.
 */
export function tierRateChanges(current: TpsdConfig, next: TpsdConfig, keys: KeyIndex): TierRateChange[] {
  const changed: TierRateChange[] = [];
  current.pools.forEach((pool, p) => pool.services.forEach((svc, s) => svc.tenants?.tiers.forEach((tier, t) => {
    const after = next.pools[p]?.services[s]?.tenants?.tiers[t];
    if (after === undefined || after.name !== tier.name || (after.tps === tier.tps && after.burst === tier.burst)) return;
    changed.push({
      tier: keys.find(`${pool.name}/${svc.name}/${TIER_MARK}${tier.name}`), fromRateMilli: Math.round(tier.tps * MILLI),
      rateMilli: Math.round(after.tps * MILLI), burstMilli: Math.round(after.burst * MILLI),
    });
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
  state: MainState, next: TpsdConfig, threads: Pick<IoThreads, 'broadcast'>, log: Logger, tenants: TenantDirectory | null = null,
): Promise<{ model: string }> {
  const { controller, telemetry, live } = state;
  const reason = restartNeeded(live.config, next);
  if (reason !== null) throw new RestartNeededError(reason);
  const nextKeys = KeyIndex.fromConfig(next);
  const rates = tierRateChanges(live.config, next, nextKeys);
  controller.reconfigure(nextKeys, next);
  tenants?.reconfigure(nextKeys);
  // Live overrides stay on top of the new config values (nextKeys: the same keys, the new config's limits).
  live.limits = new LiveLimits(nextKeys, controller, telemetry?.overrides ?? null, log);
  live.limits.restore();
  live.config = next;
  log.level = next.log.level;
  // The I/O threads' keys are the shared table's, built at start; their config has no services (as at start), so
  // what the table cannot say of the new config, which buckets are dry runs (enforce: false), goes with it.
  threads.broadcast({ type: 'config', config: configForThreads(next), dryRun: nextKeys.dryRunFlags() });
  if (rates.length > 0 && tenants !== null) {
    const now = controller.table.nowMs();
    let changed = 0;
    for (const c of rates) changed += tenants.table.setTierRates(c, now);
    threads.broadcast({ type: 'tier-rates', tiers: rates });
    log.info({ tiers: rates.map((c) => nextKeys.key(c.tier)), tenants: changed }, 'tier rates reloaded');
  }
  const model = await controller.reloadModel();
  if (model.ok) telemetry?.registerModel(model.version, controller.modelPath);
  log.info({ model: model.version, model_ok: model.ok }, 'config reloaded');
  return { model: model.version };
}
