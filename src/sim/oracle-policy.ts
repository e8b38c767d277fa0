// The oracle capacity policy (simulator only; issue 14 item 1): `baseline`'s
// split, fair's priority water-filling of demand, under a capacity that is
// not discovered but told. Each tick the simulator's controller asks it for
// the pool's capacity over the coming tick, and it answers the upstream's
// true limit over that tick (the 429 limit, and with upstream_latency the
// rate at which latency equals slo_ms, as the fluid bound counts it), times
// `scale`, never above capacity_tps. By default the limit's lowest point in
// the tick (simulator.ts lowestOverTick): the most a capacity held for the
// whole tick can take without a 429; the tick's mean (boundOverTick, the
// fluid bound's) overshoots a sliding window's ramp and met 1707 late 429s
// on periodic-throttle-hints, where it scored below baseline. Everything else is what every policy gets: the same safety
// layer, buckets, gate, tick of delay between an allocation and its traffic.
//
// It answers the question a learned capacity policy must face first: how
// much reward is there to win by knowing the upstream's limit, the one thing
// such a policy is allowed to choose? It is not in the policy registry, so
// no daemon can run it (it reads the scenario, which a daemon does not have):
// `tpsd sim --policy oracle`, `npm run sim:table` and oracle-headroom.ts
// build it through the simulator. Single thread: the simulator's.

import { waterFill } from '../control/water-fill.ts';
import type { AllocationPolicy } from '../control/policies/types.ts';
import type { PoolObservation } from '../ppo/observation.ts';

export const ORACLE = 'oracle';

export class OraclePolicy implements AllocationPolicy {
  readonly name = ORACLE;
  readonly capacityAbove = true;

  /**
   * `limitTps()`: the upstream's true limit over the tick about to start
   * (tokens/s); `scale`: the share of it to grant (1: all of it; a study of
   * margins runs others).
   */
  constructor(private readonly limitTps: () => number, private readonly scale = 1) {}

  capacityTps(obs: PoolObservation): number {
    return Math.max(0, Math.min(obs.capacityTps, this.limitTps() * this.scale));
  }

  allocate(obs: PoolObservation): Float64Array {
    return waterFill(obs, obs.services.map((s) => s.demandTps));
  }
}
