// The key space: every pool, service and endpoint of the config gets one
// bucket index, in config order (pool, then its services, each followed by its
// endpoints). Every thread builds the same index from the same config, so an
// index means the same key everywhere without sharing strings.

import type { PoolConfig, Priority, TpsdConfig } from '../config/types.ts';
import { PRIORITIES } from '../config/types.ts';
import { PRIORITY_NONE } from './layout.ts';

export interface BucketSpec {
  readonly index: number;
  readonly key: string;
  readonly depth: 0 | 1 | 2;
  readonly parent: number;
  /** Bucket index of the pool this key belongs to. */
  readonly pool: number;
  /** 0 CRITICAL .. 3 LOW; PRIORITY_NONE for pools. */
  readonly priority: number;
  readonly burst: number;
  readonly concurrency: number;
  /** The rate the bucket starts with, tokens/s, before the first tick. */
  readonly initialTps: number;
  /** The config entry: a pool, service or endpoint. */
  readonly minTps: number;
  readonly maxTps: number;
}

export function priorityIndex(p: Priority): number {
  return PRIORITIES.indexOf(p);
}

export function priorityName(i: number): Priority | null {
  return i >= 0 && i < PRIORITIES.length ? PRIORITIES[i] : null;
}

export class KeyIndex {
  readonly specs: readonly BucketSpec[];
  private readonly byKey: Map<string, number>;

  constructor(pools: readonly PoolConfig[]) {
    const specs: BucketSpec[] = [];
    for (const pool of pools) {
      const p = specs.length;
      specs.push({
        index: p, key: pool.name, depth: 0, parent: -1, pool: p, priority: PRIORITY_NONE,
        burst: pool.burst, concurrency: 0, initialTps: pool.capacity_tps,
        minTps: 0, maxTps: pool.capacity_tps,
      });
      for (const svc of pool.services) {
        const s = specs.length;
        const svcRate = Math.min(svc.max_tps, pool.capacity_tps);
        specs.push({
          index: s, key: `${pool.name}/${svc.name}`, depth: 1, parent: p, pool: p,
          priority: priorityIndex(svc.priority), burst: svc.burst, concurrency: svc.concurrency,
          initialTps: svcRate, minTps: svc.min_tps, maxTps: svc.max_tps,
        });
        for (const ep of svc.endpoints) {
          specs.push({
            index: specs.length, key: `${pool.name}/${svc.name}/${ep.name}`, depth: 2, parent: s, pool: p,
            priority: priorityIndex(svc.priority), burst: ep.burst, concurrency: ep.concurrency,
            initialTps: Math.min(ep.max_tps, svcRate), minTps: 0, maxTps: ep.max_tps,
          });
        }
      }
    }
    this.specs = specs;
    this.byKey = new Map(specs.map((s) => [s.key, s.index]));
  }

  static fromConfig(config: TpsdConfig): KeyIndex {
    return new KeyIndex(config.pools);
  }

  get size(): number { return this.specs.length; }

  /** Bucket index of a key, or -1. */
  lookup(key: string): number {
    const i = this.byKey.get(key);
    return i === undefined ? -1 : i;
  }
}
