// The surge and abuse detector (control/surge-detector.ts) on the labelled
// synthetic set of sim/tenant-traffic.ts: precision and recall above the
// bars docs/tenants.md justifies, at the default 1 s tick and at 100 ms; and
// the evaluation is able to fail (a looser attack rule, which catches polite
// clients pressing their tier, falls below the precision bar).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ATTACK, DEFAULT_DETECTOR, NORMAL, SURGE, SurgeDetector } from '../../../src/control/surge-detector.ts';
import { DEFAULT_SET, evaluateDetector, type ClassScore } from '../../../src/sim/tenant-traffic.ts';
import { Rng } from '../../../src/ppo/rng.ts';

function poissonCount(rng: Rng, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  for (let p = rng.next(); p > limit; p *= rng.next()) k++;
  return k;
}

const pr = (s: ClassScore): string => `precision ${s.precision.toFixed(3)} recall ${s.recall.toFixed(3)} (tp ${s.tp}, fp ${s.fp}, fn ${s.fn})`;

describe('surge and abuse detector: labelled synthetic set', () => {
  for (const dtS of [1, 0.1]) {
    it(`scores above the bars at ${dtS} s ticks (seed ${DEFAULT_SET.seed})`, (t) => {
      const e = evaluateDetector({ ...DEFAULT_SET, dtS, durationS: dtS < 1 ? 600 : DEFAULT_SET.durationS });
      t.diagnostic(`attack tenants: ${pr(e.attackTenants)}`);
      t.diagnostic(`attack ticks:   ${pr(e.attackTicks)}`);
      t.diagnostic(`surge tenants:  ${pr(e.surgeTenants)}`);
      t.diagnostic(`surge ticks:    ${pr(e.surgeTicks)}`);
      t.diagnostic(`median attack delay ${e.medianAttackDelayS} s; missed ${JSON.stringify(e.missed)}`);
      assert.ok(e.attackTenants.precision >= 0.95, `attack precision ${pr(e.attackTenants)}`);
      assert.ok(e.attackTenants.recall >= 0.95, `attack recall ${pr(e.attackTenants)}`);
      assert.ok(e.attackTicks.precision >= 0.99, `attack tick precision ${pr(e.attackTicks)}`);
      assert.ok(e.surgeTenants.precision >= 0.9, `surge precision ${pr(e.surgeTenants)}`);
      assert.ok(e.surgeTenants.recall >= 0.8, `surge recall ${pr(e.surgeTenants)}`);
      assert.ok(e.medianAttackDelayS <= 5, `median delay ${e.medianAttackDelayS} s`);
    });
  }

  it('fails a detector whose attack rule catches polite clients (the bars can fail)', () => {
    const loose = evaluateDetector(DEFAULT_SET, { ...DEFAULT_DETECTOR, attackRateRatio: 0.9, attackDenialRatio: 0.05 });
    assert.ok(loose.attackTenants.precision < 0.95, `a loose rule still scores ${pr(loose.attackTenants)}`);
  });
});

describe('surge and abuse detector: one tenant', () => {
  const TPS = 40;
  it('never calls a polite client pressing its tier an attack; calls a hammering one after attackHoldS', () => {
    const d = new SurgeDetector(2);
    for (let k = 0; k < 120; k++) {
      // Polite at its limit: the tier's tps granted and about as many tries denied (one per retry_after).
      assert.notEqual(d.observe(0, 2 * TPS, TPS, 1, TPS), ATTACK, `tick ${k}`);
    }
    const classes: number[] = [];
    for (let k = 0; k < 5; k++) classes.push(d.observe(1, 10 * TPS, 9 * TPS, 1, TPS));
    assert.equal(classes[0], NORMAL, 'one tick is not enough');
    assert.equal(classes[4], ATTACK);
    assert.ok(d.denialRatio(1) > 0.85 && d.rateTps(1) > 9 * TPS);
  });

  it('does not call a new tenant\'s first minute at a steady rate a surge (no history is no band of zero width)', () => {
    for (const dtS of [1, 0.1]) {
      const n = 200;
      const d = new SurgeDetector(n);
      const rng = new Rng(5);
      let called = 0;
      for (let slot = 0; slot < n; slot++) {
        let surged = false;
        for (let t = 0; t < 60; t += dtS) {
          const asked = poissonCount(rng, 20 * dtS);
          if (t === 0 && asked === 0) continue;
          if (d.observe(slot, asked, 0, dtS, TPS) === SURGE) surged = true;
        }
        if (surged) called++;
      }
      assert.ok(called <= 2, `${called} of ${n} new tenants at 20/s called surge (${dtS} s ticks)`);
    }
  });

  it('calls a jump from a steady rate a surge, and forgets a slot on reset', () => {
    const d = new SurgeDetector(1);
    for (let k = 0; k < 120; k++) d.observe(0, 5 + (k % 3), 0, 1, TPS);
    assert.equal(d.classOf(0), NORMAL);
    let c = NORMAL;
    for (let k = 0; k < 5; k++) c = d.observe(0, 30, 0, 1, TPS);
    assert.equal(c, SURGE);
    assert.ok(d.zScore(0) >= DEFAULT_DETECTOR.surgeZ);
    d.reset(0);
    assert.equal(d.classOf(0), NORMAL);
    assert.equal(d.rateTps(0), 0);
    assert.equal(d.observe(0, 30, 0, 1, TPS), NORMAL, 'a new tenant has no history to surge from');
  });
});
