// fair: priority-ordered max-min water-filling of the effective capacity over
// last tick's demand, honouring min_tps and max_tps; what nobody asked for is
// spread as headroom by priority weight. Also the fallback of every mode.
// Demand is read from the services' columns (../service-columns.ts), not
// from each observation object.

import type { PoolObservation } from '../../ppo/observation.ts';
import { columnsOf } from '../service-columns.ts';
import { waterFill } from '../water-fill.ts';
import type { AllocationPolicy } from './types.ts';

export class FairPolicy implements AllocationPolicy {
  readonly name = 'fair';
  allocate(obs: PoolObservation): Float64Array {
    const c = columnsOf(obs.services);
    return waterFill(obs, c.demandTps, null, c);
  }
}
