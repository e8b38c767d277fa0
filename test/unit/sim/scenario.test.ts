// Scenario files are validated like config files (SCENARIOS.md additions):
// a misspelled field or an unknown value is refused with an error naming the
// field; the new optional fields have defaults; latency fields are accepted.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseScenario, ScenarioError } from '../../../src/sim/scenario.ts';

const base = (): Record<string, unknown> => ({
  name: 't', duration_s: 10, capacity_tps: 100,
  services: [{ name: 'a', priority: 'HIGH', demand: { kind: 'constant', tps: 50 } }],
});

function errors(raw: unknown): string[] {
  try {
    parseScenario(raw, 'x.json');
  } catch (e) {
    assert.ok(e instanceof ScenarioError);
    assert.equal(e.code, 'TPSD_SCENARIO_INVALID');
    return e.errors;
  }
  assert.fail('accepted');
}

test('the new fields default to what a scenario meant before', () => {
  const s = parseScenario(base());
  assert.equal(s.upstream_window, 'fixed_1s');
  assert.equal(s.upstream_hints, false);
  assert.equal(s.upstream_burst, null);
  assert.equal(s.upstream_latency, null);
  assert.equal(s.upstream_tps, 100);
});

test('a misspelled field is refused with the field named and a suggestion, at any depth', () => {
  assert.match(errors({ ...base(), upstream_windw: 'fixed_1s' }).join('\n'), /upstream_windw: .*unknown key "upstream_windw"; did you mean "upstream_window"/);
  assert.match(errors({ ...base(), upstream_hint: true }).join('\n'), /did you mean "upstream_hints"/);
  const svc = base();
  (svc.services as Record<string, unknown>[])[0].min_tp = 5;
  assert.match(errors(svc).join('\n'), /services\[0\]\.min_tp: .*did you mean "min_tps"/);
  const dem = base();
  (dem.services as Record<string, unknown>[])[0].demand = { kind: 'sine', base: 5, amplitude: 1, periods: 60 };
  const e = errors(dem).join('\n');
  assert.match(e, /services\[0\]\.demand\.periods: .*did you mean "period_s"/);
  assert.match(e, /services\[0\]\.demand\.period_s: expected a number > 0/, 'and the field it stands for is missing');
  assert.match(errors({ ...base(), upstream_latency: { base_ms: 40, knee_tp: 900, timeout_ms: 2000 } }).join('\n'), /upstream_latency\.knee_tp: .*did you mean "knee_tps"/);
});

test('an unknown value is refused with the field named', () => {
  assert.match(errors({ ...base(), upstream_window: 'sliding_5s' }).join('\n'),
    /upstream_window: expected one of fixed_1s, sliding_1s, token_bucket, found "sliding_5s"/);
  const dem = base();
  (dem.services as Record<string, unknown>[])[0].demand = { kind: 'wave', tps: 5 };
  assert.match(errors(dem).join('\n'), /services\[0\]\.demand\.kind: expected one of constant, sine, step, spike, trace, found "wave"/);
  assert.match(errors({ ...base(), upstream_hints: 'yes' }).join('\n'), /upstream_hints: expected true or false/);
  assert.match(errors({ ...base(), upstream_burst: 0 }).join('\n'), /upstream_burst: expected a number >= 1/);
  assert.match(errors({ ...base(), upstream_tps: [[0, 5], [10]] }).join('\n'), /upstream_tps: expected \[\[t_s, value\], \.\.\.\]/);
});

test('every problem is listed at once', () => {
  const bad = { name: 'x', duration_s: 10, capacity_tps: 10, upstream_window: 'x', services: [{ priority: 'URGENT', demand: { kind: 'wave' } }] };
  const e = errors(bad);
  assert.equal(e.length, 3, e.join('\n'));
});

test('latency fields (issue 14) are accepted, the new fields read', () => {
  const s = parseScenario({ ...base(), upstream_window: 'token_bucket', upstream_burst: 20, upstream_hints: true, slo_ms: 300,
    upstream_latency: { base_ms: 40, knee_tps: [[0, 80], [5, 60]], timeout_ms: 2000 } });
  assert.equal(s.upstream_window, 'token_bucket');
  assert.equal(s.upstream_burst, 20);
  assert.equal(s.upstream_hints, true);
  assert.equal(s.slo_ms, 300);
  assert.deepEqual(s.upstream_latency, { base_ms: 40, knee_tps: [[0, 80], [5, 60]], timeout_ms: 2000 });
});

test('every example scenario parses', () => {
  for (const d of ['../../fixtures/scenarios/', '../../fixtures/scenarios/throttling/']) {
    const dir = new URL(d, import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) parseScenario(JSON.parse(readFileSync(new URL(f, dir), 'utf8')), f);
  }
});
