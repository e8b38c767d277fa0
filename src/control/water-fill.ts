// Priority-ordered max-min water-filling (pure functions, main thread or a
// Piscina worker). Used by the fair policy, as the last stage of the PPO
// policy (which chooses the claims), by the safety layer for guarantees, and
// by the tier split (tier-split.ts), which may pass each member's value per
// request: then within a priority class the more valuable members' claims
// are filled first and they take a larger share of the class's slack
// (fillByValue, valueFactors). Without values, the fill is as it always was.

import type { PoolObservation } from '../ppo/observation.ts';

/** Relative weight of each priority class (0 CRITICAL .. 3 LOW). */
export const PRIORITY_WEIGHTS = [8, 4, 2, 1] as const;

/** True for a priority class 0 .. 3 (CRITICAL .. LOW). */
function isClass(priority: number): boolean {
  return priority === (priority | 0) && priority >= 0 && priority < PRIORITY_WEIGHTS.length;
}

/**
 * min_tps of every active service, in priority order while capacity lasts:
 * a class that does not fit entirely shares what is left in proportion to
 * its members' minimums. Two passes over the services (the classes' wants,
 * then the shares; none when no service is active), each class's want summed
 * in service order.
 */
export function guarantees(obs: PoolObservation): Float64Array {
  const n = obs.services.length;
  const g = new Float64Array(n);
  const want = [0, 0, 0, 0];
  let anyActive = false;
  for (let i = 0; i < n; i++) {
    const s = obs.services[i];
    if (s.active && isClass(s.priority)) { want[s.priority] += s.minTps; anyActive = true; }
  }
  if (!anyActive) return g;
  const share = [0, 0, 0, 0];
  let left = obs.effectiveTps;
  for (let p = 0; p < PRIORITY_WEIGHTS.length; p++) {
    if (want[p] <= 0) continue;
    share[p] = Math.min(1, Math.max(0, left) / want[p]);
    left -= want[p] * share[p];
  }
  for (let i = 0; i < n; i++) {
    const s = obs.services[i];
    if (s.active && isClass(s.priority) && !(want[s.priority] <= 0)) g[i] = s.minTps * share[s.priority];
  }
  return g;
}

/** Max-min fill of `budget` into `alloc` over `members`, each up to its cap. Returns what is left. */
export function fillEqual(alloc: Float64Array, cap: Float64Array, members: number[], budget: number): number {
  let open = members.filter((i) => cap[i] - alloc[i] > 1e-9);
  while (budget > 1e-9 && open.length > 0) {
    const share = budget / open.length;
    let used = 0;
    for (const i of open) {
      const add = Math.min(share, cap[i] - alloc[i]);
      alloc[i] += add;
      used += add;
    }
    budget -= used;
    open = open.filter((i) => cap[i] - alloc[i] > 1e-9);
  }
  return budget;
}

/** The most a service may get this tick: max_tps and the safety layer's growth cap. */
export function upperBounds(obs: PoolObservation, g: Float64Array): Float64Array {
  return Float64Array.from(obs.services, (s, i) =>
    Math.max(g[i], Math.min(s.maxTps, Math.max(s.limitTps * obs.stepCap, obs.stepFloorTps))));
}

/**
 * fillEqual() by value: members of the highest value first (max-min among
 * equal values), then the next value down, while the budget lasts.
 */
export function fillByValue(alloc: Float64Array, cap: Float64Array, members: number[], values: ArrayLike<number>, budget: number): number {
  const order = [...new Set(members.map((i) => values[i]))].sort((a, b) => b - a);
  for (const v of order) {
    if (budget <= 1e-9) break;
    budget = fillEqual(alloc, cap, members.filter((i) => values[i] === v), budget);
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
export function valueFactors(obs: PoolObservation, values: ArrayLike<number>): Float64Array {
  const sum = [0, 0, 0, 0];
  const count = [0, 0, 0, 0];
  obs.services.forEach((s, i) => { if (isClass(s.priority)) { sum[s.priority] += values[i]; count[s.priority]++; } });
  return Float64Array.from(obs.services, (s, i) =>
    (isClass(s.priority) && sum[s.priority] > 0 ? (values[i] * count[s.priority]) / sum[s.priority] : 1));
}

/**
 * Guarantees first; then each priority class in turn, max-min (by value
 * first, when `values` are given), up to its claim; then whatever is left as
 * headroom, by priority weight (times valueFactors()). Nobody gets more than
 * upperBounds(), so what a capped service cannot take this tick goes to the
 * next in line instead of being wasted.
 */
export function waterFill(obs: PoolObservation, claims: ArrayLike<number>, values: ArrayLike<number> | null = null): Float64Array {
  const n = obs.services.length;
  const alloc = guarantees(obs);
  const upper = upperBounds(obs, alloc);
  let left = obs.effectiveTps;
  for (let i = 0; i < n; i++) left -= alloc[i];
  const cap = new Float64Array(n);
  for (let i = 0; i < n; i++) cap[i] = Math.max(alloc[i], Math.min(upper[i], claims[i]));
  for (let p = 0; p < PRIORITY_WEIGHTS.length && left > 1e-9; p++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (obs.services[i].priority === p) members.push(i);
    left = values === null ? fillEqual(alloc, cap, members, left) : fillByValue(alloc, cap, members, values, left);
  }
  if (left > 1e-9) {
    // Headroom: weighted water-fill of the rest up to max_tps.
    const weight = Float64Array.from(obs.services, (s) => PRIORITY_WEIGHTS[s.priority] ?? 1);
    if (values !== null) valueFactors(obs, values).forEach((f, i) => { weight[i] *= f; });
    cap.set(upper);
    let open: number[] = [];
    for (let i = 0; i < n; i++) if (cap[i] - alloc[i] > 1e-9) open.push(i);
    while (left > 1e-9 && open.length > 0) {
      let wsum = 0;
      for (const i of open) wsum += weight[i];
      if (!(wsum > 0)) { // only members of value 0 are left open: they share it evenly
        for (const i of open) weight[i] = 1;
        wsum = open.length;
      }
      let used = 0;
      for (const i of open) {
        const add = Math.min((left * weight[i]) / wsum, cap[i] - alloc[i]);
        alloc[i] += add;
        used += add;
      }
      left -= used;
      open = open.filter((i) => cap[i] - alloc[i] > 1e-9);
    }
  }
  return alloc;
}
