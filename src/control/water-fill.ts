// Priority-ordered max-min water-filling (pure functions, main thread or a
// Piscina worker). Used by the fair policy, as the last stage of the PPO
// policy (which chooses the claims), by the safety layer for guarantees, and
// by the tier split (tier-split.ts), which may pass each member's value per
// request: then within a priority class the more valuable members' claims
// are filled first and they take a larger share of the class's slack
// (fillByValue, valueFactors). Without values, the fill is as it always was.
//
// Cost: the services' figures come from their columns (service-columns.ts:
// typed arrays, patched where observations moved, for the controller's
// pools), never from the observation objects, and every pass is a loop over
// typed arrays; scratch arrays are reused from one call to the next (the
// functions are synchronous, so no two calls on one thread overlap). Every
// sum is taken in the same order, over the same terms, as the first version
// of this file (kept in test/unit/control/water-fill-columns.test.ts, which
// compares both bit for bit), so the results are the same to the last bit.

import type { PoolObservation } from '../ppo/observation.ts';
import { columnsOf, type ServiceColumns } from './service-columns.ts';

/** Relative weight of each priority class (0 CRITICAL .. 3 LOW). */
export const PRIORITY_WEIGHTS = [8, 4, 2, 1] as const;
const CLASSES = PRIORITY_WEIGHTS.length;

/** True for a priority class 0 .. 3 (CRITICAL .. LOW). */
function isClass(priority: number): boolean {
  return priority === (priority | 0) && priority >= 0 && priority < CLASSES;
}

/** A priority's weight in the headroom: its class's, 1 for anything else. */
function weightOf(priority: number): number {
  return isClass(priority) ? PRIORITY_WEIGHTS[priority] : 1;
}

/** Reused Int32 scratch (index lists), grown on demand; slot s is one list. */
const intScratch: Int32Array[] = [];
function ints(slot: number, n: number): Int32Array {
  let a = intScratch[slot];
  if (a === undefined || a.length < n) a = intScratch[slot] = new Int32Array(Math.max(n, 64));
  return a;
}
/** Reused Float64 scratch, as ints(). */
const floatScratch: Float64Array[] = [];
function floats(slot: number, n: number): Float64Array {
  let a = floatScratch[slot];
  if (a === undefined || a.length < n) a = floatScratch[slot] = new Float64Array(Math.max(n, 64));
  return a;
}
const S_ACTIVE = 0, S_MEMBERS = 1, S_OPEN = 2, S_HEADROOM = 3; // ints() slots
const S_UPPER = 0, S_CAP = 1, S_WEIGHT = 2; // floats() slots

/**
 * min_tps of every active service (into `out` when given, c.length long), in priority order while capacity lasts:
 * a class that does not fit entirely shares what is left in proportion to
 * its members' minimums. One pass over the services' active flags, then the
 * active ones (the classes' wants, summed in service order, then the shares).
 */
export function guarantees(obs: PoolObservation, c: ServiceColumns = columnsOf(obs.services), out?: Float64Array): Float64Array {
  const n = c.length;
  const g = out === undefined ? new Float64Array(n) : out.fill(0);
  const active = ints(S_ACTIVE, n);
  let m = 0;
  for (let i = 0; i < n; i++) if (c.active[i] === 1 && isClass(c.priority[i])) active[m++] = i;
  if (m === 0) return g;
  const want = [0, 0, 0, 0];
  for (let k = 0; k < m; k++) want[c.priority[active[k]]] += c.minTps[active[k]];
  const share = [0, 0, 0, 0];
  let left = obs.effectiveTps;
  for (let p = 0; p < CLASSES; p++) {
    if (want[p] <= 0) continue;
    share[p] = Math.min(1, Math.max(0, left) / want[p]);
    left -= want[p] * share[p];
  }
  for (let k = 0; k < m; k++) {
    const i = active[k];
    const p = c.priority[i];
    if (!(want[p] <= 0)) g[i] = c.minTps[i] * share[p];
  }
  return g;
}

/** Max-min fill of `budget` into `alloc` over `members`, each up to its cap. Returns what is left. */
export function fillEqual(alloc: Float64Array, cap: Float64Array, members: ArrayLike<number>, budget: number): number {
  const open = new Int32Array(members.length);
  let m = 0;
  for (let k = 0; k < members.length; k++) if (cap[members[k]] - alloc[members[k]] > 1e-9) open[m++] = members[k];
  return fillOpen(alloc, cap, open, m, budget);
}

/**
 * fillEqual() over the first m entries of `open`: the members whose cap is not reached, in order (reordered and cut
 * as they fill). A member that reached its cap leaves the list as soon as it is filled (one pass a round: each
 * member's alloc moves only at its own turn, so this keeps the members a pass after the round would keep).
 */
function fillOpen(alloc: Float64Array, cap: Float64Array, open: Int32Array, m: number, budget: number): number {
  while (budget > 1e-9 && m > 0) {
    const share = budget / m;
    let used = 0;
    let w = 0;
    for (let k = 0; k < m; k++) {
      const i = open[k];
      const add = Math.min(share, cap[i] - alloc[i]);
      alloc[i] += add;
      used += add;
      if (cap[i] - alloc[i] > 1e-9) open[w++] = i;
    }
    budget -= used;
    m = w;
  }
  return budget;
}

/** Service i's upper bound: its guarantee `g`, or more up to max_tps and the safety layer's growth cap (step x limit, at least floor). */
function upperOf(c: ServiceColumns, i: number, g: number, step: number, floor: number): number {
  return Math.max(g, Math.min(c.maxTps[i], Math.max(c.limitTps[i] * step, floor)));
}

/** The most a service may get this tick: max_tps and the safety layer's growth cap. */
export function upperBounds(obs: PoolObservation, g: Float64Array, c: ServiceColumns = columnsOf(obs.services),
  out: Float64Array = new Float64Array(c.length)): Float64Array {
  for (let i = 0; i < c.length; i++) out[i] = upperOf(c, i, g[i], obs.stepCap, obs.stepFloorTps);
  return out;
}

/**
 * fillEqual() by value: members of the highest value first (max-min among
 * equal values), then the next value down, while the budget lasts.
 */
export function fillByValue(alloc: Float64Array, cap: Float64Array, members: ArrayLike<number>, values: ArrayLike<number>, budget: number): number {
  const list = Array.from(members);
  const order = [...new Set(list.map((i) => values[i]))].sort((a, b) => b - a);
  for (const v of order) {
    if (budget <= 1e-9) break;
    budget = fillEqual(alloc, cap, list.filter((i) => values[i] === v), budget);
  }
  return budget;
}

/**
 * Each member's weight within its priority class: its value over the mean
 * value of the class's members, so a class's members together weigh what
 * they would without values (the class weights still divide the slack
 * between classes) and the more valuable take more of it. A class whose
 * values are all 0 weighs 1 each.
 */
export function valueFactors(obs: PoolObservation, values: ArrayLike<number>, c: ServiceColumns = columnsOf(obs.services)): Float64Array {
  const sum = [0, 0, 0, 0];
  const count = [0, 0, 0, 0];
  for (let i = 0; i < c.length; i++) if (isClass(c.priority[i])) { sum[c.priority[i]] += values[i]; count[c.priority[i]]++; }
  const out = new Float64Array(c.length);
  for (let i = 0; i < c.length; i++) {
    const p = c.priority[i];
    out[i] = isClass(p) && sum[p] > 0 ? (values[i] * count[p]) / sum[p] : 1;
  }
  return out;
}

/**
 * Guarantees first; then each priority class in turn, max-min (by value
 * first, when `values` are given), up to its claim; then whatever is left as
 * headroom, by priority weight (times valueFactors()). Nobody gets more than
 * upperBounds(), so what a capped service cannot take this tick goes to the
 * next in line instead of being wasted. `c`: the services' columns, when the
 * caller has them; `out`: where to write the allocation (c.length long),
 * else a new array.
 */
export function waterFill(obs: PoolObservation, claims: ArrayLike<number>, values: ArrayLike<number> | null = null,
  c: ServiceColumns = columnsOf(obs.services), out?: Float64Array): Float64Array {
  const n = c.length;
  const alloc = guarantees(obs, c, out);
  // One pass: upperBounds(), what the guarantees leave (summed in service order) and each cap.
  const upper = floats(S_UPPER, n);
  const cap = floats(S_CAP, n);
  const step = obs.stepCap;
  const floor = obs.stepFloorTps;
  let left = obs.effectiveTps;
  // And the members below their caps that fillClasses() fills (alloc is the guarantees until then).
  const below = ints(S_MEMBERS, n);
  let b = 0;
  for (let i = 0; i < n; i++) {
    const g = alloc[i];
    const u = upperOf(c, i, g, step, floor);
    upper[i] = u;
    left -= g;
    const capped = Math.max(g, Math.min(u, claims[i]));
    cap[i] = capped;
    if (capped - g > 1e-9 && isClass(c.priority[i])) below[b++] = i;
  }
  if (left > 1e-9) left = values === null ? fillClasses(c, alloc, cap, below, b, left) : fillClassesByValue(c, alloc, cap, values, left);
  if (left > 1e-9) headroom(obs, c, alloc, upper, values, left);
  return alloc;
}

/**
 * Each class in turn, while the budget lasts, max-min up to the caps
 * (fillEqual() of its members). Only a member below its cap takes part, and
 * one class's fill moves only its own members, so the members below their
 * caps are found in one pass for every class (waterFill()'s: below[0 .. b),
 * ascending).
 */
function fillClasses(c: ServiceColumns, alloc: Float64Array, cap: Float64Array, below: Int32Array, b: number, left: number): number {
  const open = ints(S_OPEN, b);
  for (let p = 0; p < CLASSES && left > 1e-9; p++) {
    let m = 0;
    for (let k = 0; k < b; k++) if (c.priority[below[k]] === p) open[m++] = below[k];
    left = fillOpen(alloc, cap, open, m, left);
  }
  return left;
}

/** fillClasses() by value (fillByValue() of each class's members). */
function fillClassesByValue(c: ServiceColumns, alloc: Float64Array, cap: Float64Array, values: ArrayLike<number>, left: number): number {
  const n = c.length;
  const members = ints(S_MEMBERS, n);
  for (let p = 0; p < CLASSES && left > 1e-9; p++) {
    let m = 0;
    for (let i = 0; i < n; i++) if (c.priority[i] === p) members[m++] = i;
    left = fillByValue(alloc, cap, members.subarray(0, m), values, left);
  }
  return left;
}

/** The rest, `left`, spread by priority weight (times valueFactors()) up to `upper`: a weighted water-fill. */
function headroom(obs: PoolObservation, c: ServiceColumns, alloc: Float64Array, upper: Float64Array,
  values: ArrayLike<number> | null, left: number): void {
  const n = c.length;
  const factor = values === null ? null : valueFactors(obs, values, c);
  const weight = floats(S_WEIGHT, n); // read only for the open members
  const open = ints(S_HEADROOM, n);
  let m = 0;
  // The open members' weights summed in member order as they are found, and again for those still open as each round
  // fills them (as fillOpen()): the sums a pass over the open members before each round takes, in the same order.
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    if (!(upper[i] - alloc[i] > 1e-9)) continue;
    open[m++] = i;
    const w = factor === null ? weightOf(c.priority[i]) : weightOf(c.priority[i]) * factor[i];
    weight[i] = w;
    wsum += w;
  }
  while (left > 1e-9 && m > 0) {
    if (!(wsum > 0)) { // only members of value 0 are left open: they share it evenly
      for (let k = 0; k < m; k++) weight[open[k]] = 1;
      wsum = m;
    }
    let used = 0;
    let w = 0;
    let next = 0;
    for (let k = 0; k < m; k++) {
      const i = open[k];
      const add = Math.min((left * weight[i]) / wsum, upper[i] - alloc[i]);
      alloc[i] += add;
      used += add;
      if (upper[i] - alloc[i] > 1e-9) { open[w++] = i; next += weight[i]; }
    }
    left -= used;
    m = w;
    wsum = next;
  }
}
