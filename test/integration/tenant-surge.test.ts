// Surge and abuse defence against a real daemon (2 I/O threads, 100 ms
// ticks, a real SQLite file): a tenant hammering while denied is classed
// attack and held at its tier's defensive limit, while another tenant's
// legitimate surge to twice its tier (it waits out retry_after) is classed
// surge and never limited; the limit lifts after the cool-down; every change is an audit
// row and a per-tier /metrics counter (no tenant in any label); STATUS shows
// per tier the tenants in each class and those defended, per tenant service
// its class, and never a tenant's name.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ATTACK } from '../../src/control/surge-detector.ts';
import { dbPath } from '../../src/storage/db.ts';
import { TenantTable } from '../../src/shm/tenant-table.ts';
import { RawClient, httpGet, startTestDaemon, type Reply } from '../fixtures/daemon.ts';
import { runCli, sleep, until } from '../fixtures/telemetry.ts';

const TIER_TPS = 20;
const DEFENSE = { tps_fraction: 0.1, cooldown_s: 1.5 };
interface TierStatus { key: string; kind: string; tenant_classes?: Record<string, number>; tenants_defended?: number; class?: string }

/** STATUS (op 3) over `c`: the tier's and the service's entries, and the snapshot's JSON. */
async function statusOf(c: RawClient, id: number): Promise<{ tier: TierStatus; service: TierStatus; json: string }> {
  const snap = (await c.call([3, id]))[3] as { keys: TierStatus[] };
  return { tier: snap.keys.find((k) => k.key === 'api/v1/~std')!, service: snap.keys.find((k) => k.key === 'api/v1')!, json: JSON.stringify(snap) };
}

const DASHBOARD = new URL('../../config/grafana-dashboard.json', import.meta.url);

/**
 * The dashboard's panel of classes and defended tenants, its queries run
 * against one /metrics body with the pool variable set to `pool` (a plain
 * selector per query: label matchers only, `=~` as a whole-value regex as in
 * PromQL; the instance matcher is the scrape's). Returns each series found: its labels and value.
 */
function classesPanel(metrics: string, pool: string): { labels: Record<string, string>; value: number }[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const panel = dash.panels.find((p) => /classes and defended tenants/i.test(p.title));
  assert.ok(panel !== undefined, 'a panel of tenant classes and defended tenants');
  const found: { labels: Record<string, string>; value: number }[] = [];
  for (const { expr } of panel.targets ?? []) {
    const sel = /^(tpsd_[a-z_]+)\{([^}]*)\}$/.exec(expr.replaceAll('$pool', pool));
    assert.ok(sel !== null, `a plain selector: ${expr}`);
    const matchers = [...sel[2].matchAll(/(\w+)(=~|=)"([^"]*)"/g)].filter((m) => m[1] !== 'instance');
    for (const line of metrics.split('\n')) {
      const m = new RegExp(`^${sel[1]}\\{([^}]*)\\} (\\S+)$`).exec(line);
      if (m === null) continue;
      const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
      const ok = matchers.every(([, name, op, v]) => (op === '=' ? labels[name] === v : new RegExp(`^(?:${v})$`).test(labels[name] ?? '')));
      if (ok) found.push({ labels: { __name__: sel[1], ...labels }, value: Number(m[2]) });
    }
  }
  return found;
}

const POOL = {
  name: 'api', capacity_tps: 5000, burst: 500,
  services: [{ name: 'v1', priority: 'HIGH', max_tps: 5000, burst: 500, tenants: {
    tiers: [{ name: 'std', priority: 'HIGH', tps: TIER_TPS, burst: 4, defense: DEFENSE }], max: 100, idle_s: 60 } }],
};

/** A client that honours retry_after: one acquire at a time, at `tps`, waiting retry_after_ms after a denial. */
async function politeClient(c: RawClient, key: string, tps: () => number, stop: () => boolean, log: Reply[]): Promise<void> {
  let id = 1_000_000;
  while (!stop()) {
    const r = await c.call([1, id++, key, 1, 0]);
    log.push(r);
    const retryMs = r[2] === 1 ? Number(r[4]) : 0; // DENIED: [1, id, 1, 0, retry_after_ms]
    await sleep(Math.max(1000 / tps(), retryMs));
  }
}

describe('tenants: surge and abuse defence', () => {
  it('limits an attacker, not a tenant whose surge is legitimate, and lifts the limit after the cool-down', async (t) => {
    const d = await startTestDaemon({ policy: { mode: 'fair' }, pools: [POOL] });
    const guard = d.controller.guard!;
    assert.ok(guard, 'a daemon with tenants runs the defence');
    const table = new TenantTable(d.views);
    const service = d.keys.find('api/v1');
    const slotOf = (name: string) => table.findByName(service, new TextEncoder().encode(name));
    const [alice, mallory, admin] = await Promise.all([RawClient.open(d.port), RawClient.open(d.port), RawClient.open(d.port)]);
    let statusId = 1;
    try {
      // Alice: 4/s for 4 s (her baseline), then 40/s (a surge to twice her tier), waiting out every retry_after.
      let aliceTps = 4;
      let stopAlice = false;
      const aliceLog: Reply[] = [];
      const aliceRun = politeClient(alice, 'api/v1/alice', () => aliceTps, () => stopAlice, aliceLog);
      await sleep(4000);
      aliceTps = 2 * TIER_TPS;
      // Mallory: 30 acquires every 50 ms (600/s, 30x the tier), whatever the replies say.
      let id = 1;
      let hammer = true;
      const hammering = (async () => {
        while (hammer) {
          const reqs: unknown[][] = [];
          for (let k = 0; k < 30; k++) reqs.push([1, id++, 'api/v1/mallory', 1, 0]);
          mallory.send(...reqs);
          await sleep(50);
        }
      })();
      await until(() => slotOf('mallory') >= 0 && guard.detector.classOf(slotOf('mallory')) === ATTACK, 10_000, 'mallory classed attack');
      const m = slotOf('mallory');
      await until(() => table.rateMilli(m) === TIER_TPS * DEFENSE.tps_fraction * 1000, 3000, 'mallory held at its defensive rate');
      // STATUS, from an I/O thread, after the main thread's next figures: counts per tier and the service's class, no tenant.
      let held = await statusOf(admin, statusId++);
      await until(async () => {
        held = await statusOf(admin, statusId++);
        return held.tier.tenants_defended === 1 && held.service.class === 'attack';
      }, 3000, `STATUS shows the defended tenant and the service under attack: ${JSON.stringify([held.tier, held.service])}`);
      assert.ok((held.tier.tenant_classes?.attack ?? 0) >= 1, JSON.stringify(held.tier));
      assert.deepEqual(Object.keys(held.tier.tenant_classes!), ['normal', 'surge', 'attack']);
      assert.doesNotMatch(held.json, /mallory|alice/, 'no tenant in STATUS');
      // The dashboard's panel, on this daemon's /metrics: the defended tenant and the attacker's class, per tier.
      let series = classesPanel((await httpGet(d.port, '/metrics')).body, 'api');
      await until(async () => {
        series = classesPanel((await httpGet(d.port, '/metrics')).body, 'api');
        return series.some((x) => x.labels.__name__ === 'tpsd_tenants_defended' && x.labels.tier === 'api/v1/~std' && x.value === 1);
      }, 3000, `the panel shows one defended tenant: ${JSON.stringify(series)}`);
      assert.ok(series.some((x) => x.labels.class === 'attack' && x.labels.tier === 'api/v1/~std' && x.value >= 1), JSON.stringify(series));
      assert.deepEqual(new Set(series.map((x) => Object.keys(x.labels).sort().join())), new Set(['__name__,class,tier', '__name__,tier']),
        'tier and class labels only');
      assert.deepEqual(classesPanel((await httpGet(d.port, '/metrics')).body, 'other'), [], 'the pool variable filters the tiers');
      // While held, mallory is granted about the defensive rate (2/s), not its tier's 20/s.
      const grantedBefore = mallory.replies.filter((r) => r[2] === 0).length;
      const t0 = performance.now();
      await sleep(1000);
      const heldS = (performance.now() - t0) / 1000;
      const grantedHeld = mallory.replies.filter((r) => r[2] === 0).length - grantedBefore;
      assert.ok(grantedHeld <= 4 + Math.ceil(2 * (heldS + 0.5)), `${grantedHeld} grants in ${heldS.toFixed(2)} s held at 2/s (burst 4)`);
      assert.ok(aliceLog.some((r) => r[2] === 1), 'alice was denied too: her surge pressed her tier');
      const al = slotOf('alice');
      t.diagnostic(`alice at the end of her surge: asks ${guard.detector.rateTps(al).toFixed(1)}/s, ` +
        `own-bucket denial ratio ${guard.detector.denialRatio(al).toFixed(2)} (tier ${TIER_TPS}/s); mallory ${guard.detector.rateTps(m).toFixed(0)}/s`);
      hammer = false;
      await hammering;
      stopAlice = true;
      await aliceRun;

      const a = slotOf('alice');
      assert.notEqual(guard.detector.classOf(a), ATTACK);
      assert.equal(table.rateMilli(a), TIER_TPS * 1000, 'alice keeps her tier\'s rate');
      // The limit lifts once mallory has sent nothing as an attacker for cooldown_s.
      await until(() => table.rateMilli(m) === TIER_TPS * 1000, 8000, 'mallory\'s limit lifted');
      await sleep(300); // the tick that lifted it is written
      let lifted = await statusOf(admin, statusId++);
      await until(async () => (lifted = await statusOf(admin, statusId++)).tier.tenants_defended === 0, 3000,
        `STATUS shows no defended tenant after the lift: ${JSON.stringify(lifted.tier)}`);

      const metrics = (await httpGet(d.port, '/metrics')).body;
      assert.match(metrics, /tpsd_tenant_class_changes_total\{tier="api\/v1\/~std",class="attack"\} 1\n/);
      assert.match(metrics, /tpsd_tenant_class_changes_total\{tier="api\/v1\/~std",class="surge"\} [1-9]/);
      assert.match(metrics, /tpsd_tenant_defenses_total\{tier="api\/v1\/~std",action="applied"\} 1\n/);
      assert.match(metrics, /tpsd_tenant_defenses_total\{tier="api\/v1\/~std",action="lifted"\} 1\n/);
      assert.match(metrics, /tpsd_tenants_defended\{tier="api\/v1\/~std"\} 0\n/);
      assert.doesNotMatch(metrics, /mallory|alice/, 'no tenant in any label');
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
      if (!promtool.error) assert.equal(promtool.status, 0, `promtool: ${promtool.stdout}${promtool.stderr}`);

      const dbFile = dbPath(d.config.data_dir);
      await d.stop();
      const db = new Database(dbFile, { readonly: true });
      const rows = db.prepare("SELECT action, key, field, old_value, new_value, actor, detail FROM limit_audit WHERE actor = 'tpsd detector' ORDER BY id")
        .all() as { action: string; key: string; field: string; old_value: string; new_value: string; detail: string }[];
      db.close();
      const of = (key: string) => rows.filter((r) => r.key === key).map((r) => `${r.action} ${r.field} ${r.old_value}->${r.new_value}`);
      assert.ok(of('api/v1/mallory').includes('classify class "normal"->"attack"') || of('api/v1/mallory').includes('classify class "surge"->"attack"'),
        JSON.stringify(of('api/v1/mallory')));
      assert.ok(of('api/v1/mallory').includes('defend rate_tps 20->2'), JSON.stringify(of('api/v1/mallory')));
      assert.ok(of('api/v1/mallory').includes('lift rate_tps 2->20'), JSON.stringify(of('api/v1/mallory')));
      assert.ok(of('api/v1/alice').some((r) => r.endsWith('->"surge"')), `alice's surge: ${JSON.stringify(of('api/v1/alice'))}`);
      assert.ok(!of('api/v1/alice').some((r) => r.includes('attack') || r.startsWith('defend')), JSON.stringify(of('api/v1/alice')));
      const evidence = JSON.parse(rows.find((r) => r.key === 'api/v1/mallory' && r.action === 'defend')!.detail) as Record<string, number | string>;
      assert.equal(evidence.tier, 'api/v1/~std');
      assert.ok((evidence.rate_tps as number) > 3 * TIER_TPS && (evidence.denial_ratio as number) > 0.6, JSON.stringify(evidence));
      assert.ok(of('api/v1').some((r) => r.endsWith('->"attack"')), `the service under attack: ${JSON.stringify(of('api/v1'))}`);
      const cli = await runCli(['decisions', '--data', d.config.data_dir, '--kind', 'limits', '--limit', '0']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /LIMIT DEFEND {2}api\/v1\/mallory {2}rate_tps 20 -> 2 \(\{"tier":"api\/v1\/~std",[^\n]*\) {2}by tpsd detector\n/);
      assert.match(cli.stdout, /LIMIT LIFT {2}api\/v1\/mallory {2}rate_tps 2 -> 20 \(\{"tier":"api\/v1\/~std",[^\n]*\) {2}by tpsd detector\n/);
    } finally {
      alice.close();
      mallory.close();
      admin.close();
      await d.stop();
    }
  });
});
