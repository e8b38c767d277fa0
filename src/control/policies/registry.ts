// The policy registry: the one place a policy name becomes an implementation
// (one switch, as envoyproxy/ratelimit's createLimiter). The controller's
// runner, the simulator, `npm run sim:table` and `tpsd sim` take their
// policies and the list of names from here. Pure; any thread.

import type { PpoModel } from '../../ppo/model.ts';
import { AimdPolicy } from './aimd.ts';
import { BaselinePolicy } from './baseline.ts';
import { FairPolicy } from './fair.ts';
import { PpoPolicy } from './ppo.ts';
import { ProportionalPolicy } from './proportional.ts';
import { StaticPolicy } from './static.ts';
import type { AllocationPolicy } from './types.ts';

/** Every policy, in the order the comparison tables list them. */
export const POLICY_NAMES = ['static', 'proportional', 'fair', 'aimd', 'baseline', 'ppo'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

/** The policy of that name; 'ppo' needs its model. */
export function createPolicy(name: PolicyName, model?: PpoModel): AllocationPolicy {
  switch (name) {
    case 'static': return new StaticPolicy();
    case 'proportional': return new ProportionalPolicy();
    case 'fair': return new FairPolicy();
    case 'aimd': return new AimdPolicy();
    case 'baseline': return new BaselinePolicy();
    case 'ppo':
      if (model === undefined) throw new Error('the ppo policy needs a model');
      return new PpoPolicy(model);
  }
}
