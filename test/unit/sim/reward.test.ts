// The reward's value per request (src/sim/reward.ts): where an outcome gives
// a service a value per request, its served requests count at that value
// over the largest one given (the most valuable as CRITICAL) instead of its
// class weight; a service with no value (NaN) keeps its class weight, and an
// outcome without values is scored as before.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLASS_WEIGHTS, DEFAULT_REWARD, PAID_REWARD, THROUGHPUT_WEIGHT, tickReward, type TickOutcome } from '../../../src/sim/reward.ts';

const zeros = [0, 0, 0];
/** Three services (CRITICAL, HIGH, LOW) that served 100, 200, 300 requests in a 1 s tick of a 1000 tps pool. */
const outcome = (value?: number[]): TickOutcome => ({
  served: [100, 200, 300], throttled: zeros, queueGrowth: zeros, shortfall: zeros, priority: [0, 1, 3], ...(value ? { value } : {}),
});
const scored = (weights: number[]) => weights.reduce((r, w, i) => r + (w + THROUGHPUT_WEIGHT) * [100, 200, 300][i], 0) / 1000;

describe('reward with values per request', () => {
  it('scores an outcome without values by class weight, as before', () => {
    assert.equal(tickReward(outcome(), 1000, 1), scored([CLASS_WEIGHTS[0], CLASS_WEIGHTS[1], CLASS_WEIGHTS[3]]));
  });

  it('counts served requests at value / the largest value instead of the class weight', () => {
    // LOW is the most valuable (10): it counts as CRITICAL; CRITICAL at 5 counts half; HIGH has no value: its class weight.
    const r = tickReward(outcome([5, NaN, 10]), 1000, 1);
    assert.ok(Math.abs(r - scored([0.5, CLASS_WEIGHTS[1], 1])) < 1e-12, `${r}`);
    assert.ok(r > tickReward(outcome(), 1000, 1), 'the valuable LOW service\'s 300 requests are worth more than at LOW\'s weight');
  });
});

describe('the paid-upstream reward (REWARD_KINDS.paid)', () => {
  const one = (o: Partial<TickOutcome>): TickOutcome => ({ served: [0], throttled: [0], queueGrowth: [0], shortfall: [0], priority: [0], ...o });

  it('one 429 costs more than a CRITICAL request earns; the default reward is unchanged', () => {
    const o = one({ served: [1], throttled: [1] });
    assert.ok(tickReward(o, 1, 1, PAID_REWARD) < 0, 'served one CRITICAL, refused one: a loss on a paid upstream');
    assert.equal(tickReward(o, 1, 1), CLASS_WEIGHTS[0] + THROUGHPUT_WEIGHT - 1);
    assert.equal(tickReward(o, 1, 1, DEFAULT_REWARD), tickReward(o, 1, 1));
  });

  it('an answer beyond the SLO earns nothing and costs 0.25; a timeout costs as a 429', () => {
    assert.equal(tickReward(one({ served: [4], late: [4] }), 1, 1, PAID_REWARD), -1);
    assert.equal(tickReward(one({ timedOut: [1] }), 1, 1, PAID_REWARD), tickReward(one({ throttled: [1] }), 1, 1, PAID_REWARD));
    assert.equal(tickReward(one({ served: [4], late: [4], timedOut: [1] }), 1, 1), 4 * (CLASS_WEIGHTS[0] + THROUGHPUT_WEIGHT),
      'the default reward counts late answers as served and timeouts not at all');
  });
});
