// The TOPOLOGY region of shared memory (layout.ts): what a bucket table
// derives from the buckets' PARENT, DEPTH and GATE (each bucket's chain up to
// its pool, the state fields a take served from an allowance guards, which
// pools count on a window ring, each pool's services). It is the same in
// every thread and never changes after start, so it is computed once into
// shared memory instead of once per thread (about 5.5 MiB at 100 000 keys,
// docs/benchmarks.md, "idle keys").
//
// Threads: BucketTable.initialize (main thread, before any I/O thread starts)
// writes it; every thread's BucketTable views it. A table made on shared
// memory nobody initialized (tests, the simulator: one thread) computes it
// then, in its own thread.

import { BUCKET_FIELDS, CONCURRENCY_INDEX, DEPTH_INDEX, GATE_INDEX, GATE_WINDOW, PARENT_INDEX, TOPOLOGY_WORDS, WAITERS_ANY_INDEX, type ShmViews } from './layout.ts';

export const MAX_DEPTH = 3;
/** Fields read per take served from an allowance: WAITERS_ANY and CONCURRENCY of each level. */
export const GUARDS = 2 * MAX_DEPTH;

export interface Topology {
  /** chains[b * MAX_DEPTH + i]: i-th bucket from b up to its pool; -1 pads. */
  readonly chains: Int32Array;
  /** depthOf[b]: the length of b's chain (1 pool, 2 service, 3 endpoint); 0 until computed. */
  readonly depthOf: Uint8Array;
  /** hasChildren[b] = 1 when some bucket's chain runs through b. */
  readonly hasChildren: Uint8Array;
  /** guards[b * GUARDS + 2i], [.. + 2i + 1]: state indices of WAITERS_ANY and CONCURRENCY of the i-th bucket of b's chain (a short chain repeats its pool). */
  readonly guards: Int32Array;
  /** ordinal[b]: pool b's ring number (window-rings.ts), -1 for a bucket that is not a pool. */
  readonly ordinal: Int32Array;
  /** gateRing[b]: the ring number of b's pool when its gate is a window, else -1. */
  readonly gateRing: Int32Array;
  /** Pool p's services: serviceList[serviceFrom[p] .. + serviceCount[p]) (pool-loans.ts). */
  readonly serviceCount: Int32Array;
  readonly serviceFrom: Int32Array;
  readonly serviceList: Int32Array;
}

// Word counts of the Int32 arrays, in region order (they add up to TOPOLOGY_WORDS).
const WORDS = { chains: MAX_DEPTH, guards: GUARDS, gateRing: 1, serviceCount: 1, serviceFrom: 1, serviceList: 1, ordinal: 1 } as const;
if (Object.values(WORDS).reduce((a, b) => a + b, 0) !== TOPOLOGY_WORDS) throw new Error('broken invariant between constants: topology words');

function viewsOf(views: ShmViews): Topology {
  const n = views.layout.bucketCount;
  const { topology: words, topologyBytes: bytes } = views;
  const out: Record<string, Int32Array | Uint8Array> = {};
  let at = 0;
  for (const [name, per] of Object.entries(WORDS)) { out[name] = words.subarray(at, at + per * n); at += per * n; }
  return { ...(out as unknown as Omit<Topology, 'depthOf' | 'hasChildren'>), depthOf: bytes.subarray(0, n), hasChildren: bytes.subarray(n, 2 * n) };
}

/** The topology in shared memory; computed first when nobody has (depthOf[0] is 0 until then). */
export function topologyOf(views: ShmViews): Topology {
  const t = viewsOf(views);
  if (views.layout.bucketCount > 0 && t.depthOf[0] === 0) compute(views.state, t);
  return t;
}

/** (Re)computes the topology from the buckets' PARENT, DEPTH and GATE (main thread, after they are written). */
export function writeTopology(views: ShmViews): void {
  compute(views.state, viewsOf(views));
}

function compute(state: Int32Array, t: Topology): void {
  const size = t.depthOf.length;
  const { chains, depthOf, hasChildren, guards } = t;
  chains.fill(-1);
  hasChildren.fill(0);
  for (let b = 0; b < size; b++) {
    let cur = b;
    for (let i = 0; i < MAX_DEPTH && cur >= 0; i++) {
      chains[b * MAX_DEPTH + i] = cur;
      if (i > 0) hasChildren[cur] = 1;
      cur = state[cur * BUCKET_FIELDS + PARENT_INDEX];
    }
  }
  for (let b = 0; b < size; b++) {
    let base = 0;
    for (let i = 0; i < MAX_DEPTH; i++) {
      const level = chains[b * MAX_DEPTH + i];
      if (level >= 0) base = level * BUCKET_FIELDS;
      guards[b * GUARDS + 2 * i] = base + WAITERS_ANY_INDEX;
      guards[b * GUARDS + 2 * i + 1] = base + CONCURRENCY_INDEX;
    }
  }
  computeRings(state, t);
  computeServiceLists(t);
  // depthOf last: a non-zero depthOf[0] says the rest is written.
  for (let b = 0; b < size; b++) {
    let d = 0;
    while (d < MAX_DEPTH && chains[b * MAX_DEPTH + d] >= 0) d++;
    depthOf[b] = d;
  }
}

function computeRings(state: Int32Array, t: Topology): void {
  const size = t.ordinal.length;
  t.ordinal.fill(-1);
  let pools = 0;
  for (let b = 0; b < size; b++) if (state[b * BUCKET_FIELDS + DEPTH_INDEX] === 0) t.ordinal[b] = pools++;
  for (let b = 0; b < size; b++) {
    let top = b; // the last bucket of b's chain: its pool
    for (let i = 1; i < MAX_DEPTH && t.chains[b * MAX_DEPTH + i] >= 0; i++) top = t.chains[b * MAX_DEPTH + i];
    t.gateRing[b] = state[top * BUCKET_FIELDS + GATE_INDEX] === GATE_WINDOW ? t.ordinal[top] : -1;
  }
}

/** Each pool's services (the buckets of depth 2, whose chain's second bucket is the pool), listed pool by pool. */
function computeServiceLists(t: Topology): void {
  const { chains, serviceCount, serviceFrom, serviceList } = t;
  const size = serviceCount.length;
  const poolOf = (b: number): number => (chains[b * MAX_DEPTH + 1] >= 0 && chains[b * MAX_DEPTH + 2] < 0 ? chains[b * MAX_DEPTH + 1] : -1);
  serviceCount.fill(0);
  for (let b = 0; b < size; b++) { const p = poolOf(b); if (p >= 0) serviceCount[p]++; }
  for (let b = 0, at = 0; b < size; b++) { serviceFrom[b] = at; at += serviceCount[b]; }
  const listed = new Int32Array(size);
  for (let b = 0; b < size; b++) { const p = poolOf(b); if (p >= 0) serviceList[serviceFrom[p] + listed[p]++] = b; }
}
