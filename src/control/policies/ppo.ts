// ppo: the trained model (../../ppo/model.ts) applied deterministically (the
// mean of its action distribution). Its scores per service become claims and
// the claims become shares of the effective capacity by priority
// water-filling. Synchronous on the thread that has the model (the simulator,
// training rollouts); the daemon computes the scores in a Piscina worker
// (../../ppo/ppo-pool.ts) and turns them into the allocation here.
//
// Only the services that can claim anything are scored: a service with no
// demand and no queue claims 0 whatever its scores (claimsFromScores: 0 x a
// finite headroom plus a drain share x 0), and the water-fill gives a claim
// of 0 exactly what it gives a NaN one (its cap stays at its guarantee). The
// model sees the pool with only those services (the daemon posts only them to
// its worker) and the pool's true service count; the rows it computes are the
// ones it computes for them in the whole pool (features.ts: the others add 0
// to every sum, and each row of the network is computed alone), so the
// allocation is the same to the last bit (test/unit/control/ppo-claimants.test.ts).
// An awake pool of 1 000 services with 10 moving then scores 10 rows, not 1 000.
import { ACTION_DIM, HEADROOM_SCALE, type PpoModel } from '../../ppo/model.ts';
import type { PoolObservation } from '../../ppo/observation.ts';
import type { PpoPool } from '../../ppo/ppo-pool.ts';
import { columnsOf, type ServiceColumns } from '../service-columns.ts';
import { waterFill } from '../water-fill.ts';
import type { AllocationPolicy, PpoSource } from './types.ts';

export class PpoPolicy implements AllocationPolicy {
  readonly name = 'ppo';
  constructor(readonly model: PpoModel) {}
  allocate(obs: PoolObservation): Float64Array {
    const c = columnsOf(obs.services);
    const rows = claimants(c);
    const scores = this.model.meanScores(scoredPart(obs, rows), obs.services.length);
    return allocationFromRows(obs, c, rows, scores, this.model.policy.outputSize);
  }
}

/**
 * Each pool's last proposal, by its bucket. An awake pool of 1 000 services
 * with 10 moving is often proposed the same figures again; it then gets the
 * very array of last time (nobody writes a proposal once made: the runner and
 * the controller keep it, pool-decisions.ts), so a tick allocates nothing for
 * it and the controller finds it unchanged by reference. One array per pool
 * evaluated, the ones the controller keeps anyway.
 */
export class LastProposals {
  private readonly byPool = new Map<number, Float64Array>();
  private scratch = new Float64Array(64);

  /** Where to water-fill the pool's next proposal (n long; valid until the next call). */
  buffer(n: number): Float64Array {
    if (this.scratch.length < n) this.scratch = new Float64Array(n);
    return this.scratch.subarray(0, n);
  }

  /** The proposal in `out` (from buffer()): the pool's last one when equal value for value, else a copy, kept. */
  settle(pool: number, out: Float64Array): Float64Array {
    const last = this.byPool.get(pool);
    if (last !== undefined && last.length === out.length) {
      let i = 0;
      while (i < out.length && last[i] === out[i]) i++;
      if (i === out.length) return last;
    }
    const made = out.slice();
    this.byPool.set(pool, made);
    return made;
  }
}

/** PPO proposals computed on this thread (the simulator, inference 'inline'). */
export function inlinePpo(model: PpoModel): PpoSource {
  const last = new LastProposals();
  return {
    version: model.version, fresh: true, infer: (obs) => {
      const c = columnsOf(obs.services);
      const rows = claimants(c);
      const scores = model.meanScores(scoredPart(obs, rows), obs.services.length);
      return allocationFromRows(obs, c, rows, scores, model.policy.outputSize, last);
    },
  };
}

/** PPO proposals from scores computed in the inference pool. */
export function pooledPpo(pool: PpoPool): PpoSource {
  const last = new LastProposals();
  return {
    get version() { return pool.version; },
    fresh: true,
    infer: async (obs) => {
      const rows = claimants(columnsOf(obs.services));
      const { scores, dim } = await pool.scores(scoredPart(obs, rows), obs.services.length);
      // Columns read again: an answer past the deadline lands after the next tick may have patched these (service-columns.ts).
      return allocationFromRows(obs, columnsOf(obs.services), rows, scores, dim, last);
    },
  };
}

/**
 * A service's claim from its two scores (a, b): last tick's demand times the
 * headroom exp(HEADROOM_SCALE * tanh(a)), plus the share max(0, tanh(b)) of
 * its queue to drain this tick. Scores of 0 claim exactly the demand, as fair
 * does; the network learns where more or less pays (it sees the forecast,
 * trend, queue, priority and the pool context). A waiting backlog is not
 * always worth draining at once: a lower-priority queue that stays is what
 * keeps every granted token in use when demand is noisy.
 */
export function claimsFromScores(obs: PoolObservation, scores: ArrayLike<number>, dim = ACTION_DIM): Float64Array {
  return Float64Array.from(obs.services, (s, i) => {
    const headroom = Math.exp(HEADROOM_SCALE * Math.tanh(scores[i * dim]));
    const drain = dim > 1 ? Math.max(0, Math.tanh(scores[i * dim + 1])) : 0;
    return s.demandTps * headroom + drain * s.queue;
  });
}

export function allocationFromScores(obs: PoolObservation, scores: ArrayLike<number>, dim = ACTION_DIM): Float64Array {
  return waterFill(obs, claimsFromScores(obs, scores, dim));
}

/** Reused scratch: the moving services' positions, then the claims (the functions here are synchronous on one thread). */
let moving = new Int32Array(64);
let claimScratch = new Float64Array(64);

/**
 * The positions of the services with demand or a queue (NaN counts as some), ascending: the only ones whose claim can
 * be above 0. Looked for among the moving services only (ServiceColumns.moving: every other one has 0 of both).
 */
export function claimants(c: ServiceColumns): Int32Array {
  if (moving.length < c.length) moving = new Int32Array(c.length);
  const m = c.movingPositions(moving);
  let k = 0; // kept in place: k <= j
  for (let j = 0; j < m; j++) if (c.demandTps[moving[j]] !== 0 || c.queue[moving[j]] !== 0) moving[k++] = moving[j];
  return moving.slice(0, k);
}

/** The pool as the model is shown it: only the services at `rows` (all of them: the observation itself). */
function scoredPart(obs: PoolObservation, rows: Int32Array): PoolObservation {
  if (rows.length === obs.services.length) return obs;
  return { ...obs, services: Array.from(rows, (i) => obs.services[i]) };
}

/**
 * allocationFromScores() given the scores of the services at `rows` only
 * (row k's at k x dim): each claims as claimsFromScores() says, every other
 * service 0. With `last`, the pool's last proposal when it is the same (LastProposals).
 */
export function allocationFromRows(obs: PoolObservation, c: ServiceColumns, rows: Int32Array, scores: ArrayLike<number>, dim: number,
  last: LastProposals | null = null): Float64Array {
  if (claimScratch.length < c.length) claimScratch = new Float64Array(c.length);
  const claims = claimScratch; // read by waterFill() during this call only
  claims.fill(0, 0, c.length);
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k];
    const headroom = Math.exp(HEADROOM_SCALE * Math.tanh(scores[k * dim]));
    const drain = dim > 1 ? Math.max(0, Math.tanh(scores[k * dim + 1])) : 0;
    claims[i] = c.demandTps[i] * headroom + drain * c.queue[i];
  }
  if (last === null) return waterFill(obs, claims, null, c);
  return last.settle(obs.bucket, waterFill(obs, claims, null, c, last.buffer(c.length)));
}
