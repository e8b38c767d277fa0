// The per-key limits in force (main thread; the controller owns them and is
// their only writer): min_tps, max_tps (a pool's capacity), priority, burst
// and concurrency. They start as the config's, from the KeyIndex's
// BucketSpecs, and change live (`tpsd limits set`: Controller.setLimits) and
// on SIGHUP (Controller.reconfigure). The BucketSpecs themselves stay as the
// config built them: a KeyIndex is read-only and may be shared.

import type { BucketSpec } from '../shm/key-index.ts';

/** One key's limits in force; mutable, written only by the Controller. */
export interface KeyLimits {
  minTps: number;
  maxTps: number;
  /** 0 CRITICAL .. 3 LOW; PRIORITY_NONE for pools. */
  priority: number;
  /** The bucket size the config gives the key, tokens. */
  burst: number;
  /** Max leases held at once; 0 means unlimited. */
  concurrency: number;
}

/** The config's limits of a key, as a copy the controller may change. */
export function configuredLimits(spec: BucketSpec): KeyLimits {
  return { minTps: spec.minTps, maxTps: spec.maxTps, priority: spec.priority, burst: spec.burst, concurrency: spec.concurrency };
}
