// GET /metrics of a real daemon under traffic: valid Prometheus text
// (`promtool check metrics`, when Debian's prometheus package is installed:
// apt-get install -y prometheus), the daemon's own figures (ticks, fallbacks,
// SQLite writes) after a tick, bounded labels, and every metric the Grafana
// dashboard in config/ queries.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Daemon } from '../../src/daemon/daemon.ts';
import { httpGet, startTestDaemon } from '../fixtures/daemon.ts';
import { runLoad, sleep, until } from '../fixtures/telemetry.ts';

const DASHBOARD = new URL('../../config/grafana-dashboard.json', import.meta.url);

function promtoolPath(): string | null {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'promtool' : null;
}

describe('/metrics', () => {
  let daemon: Daemon;
  let body = '';
  before(async () => {
    daemon = await startTestDaemon({ policy: { mode: 'fair' } });
    let stop = false;
    const load = runLoad(daemon.port, ['api/low', 'api/crit/slow'], () => stop, { throttleEvery: 7 });
    await sleep(600);
    stop = true;
    await load;
    await until(async () => /^tpsd_sqlite_writes?_seconds_count [1-9]/m.test((body = (await httpGet(daemon.port, '/metrics')).body)), 3000, 'daemon stats');
  });
  after(async () => { await daemon.stop(); });

  it('passes promtool check metrics', (t) => {
    const promtool = promtoolPath();
    if (promtool === null) { t.skip('promtool not installed'); return; }
    const r = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint warnings');
  });

  it('has the daemon\'s tick, policy and SQLite figures', () => {
    for (const re of [
      /^tpsd_ticks_total [1-9]\d*$/m, /^tpsd_tick_duration_seconds_count [1-9]\d*$/m, /^tpsd_tick_last_duration_seconds [\d.e-]+$/m,
      /^tpsd_policy_fallbacks_total\{kind="deadline"\} 0$/m, /^tpsd_policy_mode\{mode="fallback"\} 1$/m,
      /^tpsd_sqlite_enabled 1$/m, /^tpsd_sqlite_rows_written_total [1-9]\d*$/m, /^tpsd_sqlite_errors_total 0$/m,
      /^tpsd_pool_effective_capacity_tps\{pool="api"\} [\d.]+$/m,
      /^tpsd_releases_total\{key="api\/low",pool="api",kind="service",priority="LOW",outcome="throttled"\} [1-9]\d*$/m,
    ]) assert.match(body, re);
  });

  it('uses only config-bounded label values', () => {
    const keys = new Set(['api', 'api/crit', 'api/crit/slow', 'api/low']);
    for (const m of body.matchAll(/key="([^"]*)"/g)) assert.ok(keys.has(m[1]), `key label ${m[1]}`);
    const kinds = new Set([...body.matchAll(/\{kind="([^"]*)"\}/g)].map((m) => m[1]));
    assert.deepEqual([...kinds].sort(), ['busy', 'deadline', 'error', 'invalid_output', 'missing_model']);
  });

  it('serves every metric the Grafana dashboard queries', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } };
    const exprs = [...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dash.templating.list.map((v) => JSON.stringify(v.query ?? ''))];
    const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\btpsd_[a-z_]+/g)].map((m) => m[0])));
    assert.ok(names.size >= 20, `${names.size} metrics used`);
    // A daemon without a cluster section has no cluster figures: test/integration/cluster.test.ts checks those;
    // one without tenants has no tpsd_tenants nor the defence's tpsd_tenants_* series: test/integration/tenant-telemetry.test.ts checks those.
    for (const name of names) if (!name.startsWith('tpsd_cluster_') && !name.startsWith('tpsd_tenants')) assert.match(body, new RegExp(`^${name}(\\{| )`, 'm'), `${name} is exported`);
  });

  it('dashboard: an instance variable, and every query on one instance, so two daemons never merge in a panel', () => {
    type Var = { name: string; type: string; query?: { query?: string } | string; definition?: string; multi?: boolean; includeAll?: boolean };
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[]; templating: { list: Var[] } };
    const vars = dash.templating.list;
    const instance = vars.find((v) => v.name === 'instance');
    assert.ok(instance !== undefined, 'an instance template variable');
    const q = typeof instance.query === 'string' ? instance.query : instance.query?.query ?? '';
    const m = /^label_values\((tpsd_[a-z_]+), instance\)$/.exec(q);
    assert.ok(m !== null, `instance values come from a tpsd metric: ${q}`);
    assert.match(body, new RegExp(`^${m[1]}(\\{| )`, 'm'), `${m[1]} is exported`);
    assert.equal(instance.multi, false, 'one instance at a time: sums by pool never add two daemons');
    assert.equal(instance.includeAll, false);
    // Every selector of a tpsd metric, in every panel and in the other variables' queries, filters on the instance.
    const exprs: [string, string][] = [
      ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as [string, string])),
      ...vars.filter((v) => v.type === 'query' && v.name !== 'instance')
        .map((v) => [`variable ${v.name}`, typeof v.query === 'string' ? v.query : v.query?.query ?? ''] as [string, string]),
    ];
    let selectors = 0;
    for (const [where, expr] of exprs) {
      for (const sel of expr.matchAll(/\btpsd_[a-z_]+(\{[^}]*\})?/g)) {
        selectors++;
        assert.match(sel[1] ?? '', /[{,]instance=~"\$instance"[,}]/, `${where}: ${sel[0]} filters on instance=~"$instance"`);
      }
    }
    assert.ok(selectors >= 30, `${selectors} selectors checked`);
  });
});
