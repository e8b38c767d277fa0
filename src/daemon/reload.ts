// What a reloaded config (SIGHUP) may change while the daemon runs. The
// shared-memory layout, the listen socket, the I/O threads, the database and
// the policy pipeline are built once at start; a change to any of them needs a
// restart. Everything per key (limits, bursts, concurrency, priorities), auth,
// lease TTL, queue and connection limits, log level apply live, and the
// model file is read again.

import { KeyIndex } from '../shm/key-index.ts';
import type { TpsdConfig } from '../config/types.ts';

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
    ['limits.idle_timeout_s', current.limits.idle_timeout_s, next.limits.idle_timeout_s],
  ];
  const changed = fixed.filter(([, a, b]) => !same(a, b)).map(([name]) => name);
  const before = KeyIndex.fromConfig(current).specs.map((s) => s.key);
  const after = KeyIndex.fromConfig(next).specs.map((s) => s.key);
  if (!same(before, after)) {
    // Sets, not includes(): a config may hold 100k keys.
    const beforeKeys = new Set(before);
    const afterKeys = new Set(after);
    const added = after.filter((k) => !beforeKeys.has(k));
    const removed = before.filter((k) => !afterKeys.has(k));
    changed.push(`the key set (${[...added.map((k) => `+${k}`), ...removed.map((k) => `-${k}`)].join(', ') || 'order'})`);
  }
  return changed.length === 0 ? null : `changing ${changed.join(', ')} needs a restart`;
}
