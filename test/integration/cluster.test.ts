// Three daemons (real `tpsd start` processes) on loopback sharing one pool
// through a real redis-server, reached through a TCP proxy that can add
// latency. Each daemon gets saturating load from its own SDK client
// (64 acquires always waiting in its queue, up to 1 s each), and a
// sampler reads every daemon's granted-token counter (/metrics) four times a
// second, so the cluster's total grants per second are known over every
// window of about a second. In order:
//   1. saturated, the total stays within the capacity (+2 %) and above 90 %
//      (and /metrics and STATUS show the cluster);
//   2. with 300 ms added to every Redis round trip, the daemons stay
//      coordinated and acquires are answered at local speed;
//   3. killing one daemon (SIGKILL) returns its share to the other two
//      within lease_ms + 2 ticks; started again, it rejoins without a spike;
//   4. stopping Redis moves every daemon to `safe` within its lease, never
//      over capacity;
//   5. restarting Redis (a new run id, no state) goes through `learning`
//      back to `coordinated`, never over capacity.
// Times are counted in the daemons' own ticks (STATUS `tick`), not in the
// test's clock.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect, type TpsdClient } from '../../src/client/index.ts';
import { spawnDaemon, writeConfig, type CliDaemon } from '../fixtures/cli-daemon.ts';
import { DelayProxy, RedisServer, SKIP_WITHOUT_REDIS } from '../fixtures/redis-server.ts';

const CAPACITY = 600;
const TICK_MS = 100;
const LEASE_MS = 1500;
const KEY = 'shared/svc';
const LOOPS = 64;
const DASHBOARD = new URL('../../config/grafana-dashboard.json', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PoolCluster { nodes: number; share_tps: number; mode: string; lease_age_ms: number | null }
interface Status { tick: number; pools: { name: string; cluster?: PoolCluster }[] }

class Node {
  client: TpsdClient | null = null;
  private loops: Promise<void>[] = [];
  private running = false;
  constructor(readonly name: string, readonly daemon: CliDaemon, readonly port: number) {}

  static async start(name: string, configFile: string): Promise<Node> {
    const d = spawnDaemon(['--config', configFile]);
    return new Node(name, d, await d.port);
  }

  async status(): Promise<Status> {
    return await (await fetch(`http://127.0.0.1:${this.port}/v1/status`)).json() as Status;
  }

  async cluster(): Promise<PoolCluster & { tick: number }> {
    const s = await this.status();
    return { ...s.pools.find((p) => p.name === 'shared')!.cluster!, tick: s.tick };
  }

  async granted(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    const m = /^tpsd_granted_tokens_total\{key="shared",[^}]*\} (\d+)/m.exec(text);
    return m === null ? 0 : Number(m[1]);
  }

  /** LOOPS acquires outstanding at all times, each waiting up to 1 s: the daemon's queue holds a third of a second of its share, so a stalled client does not leave it idle. */
  async load(): Promise<void> {
    this.client = await connect(`ws://127.0.0.1:${this.port}`, { name: `load-${this.name}` });
    this.running = true;
    const client = this.client;
    this.loops = Array.from({ length: LOOPS }, async () => {
      while (this.running && !client.closed) {
        try {
          const p = await client.acquire(KEY, 1, { waitMs: 1000 });
          if (p.granted) client.release(p.lease, 0, 1000);
          else if (p.local) await sleep(20); // the daemon is gone: the failure mode answered
        } catch { await sleep(20); }
      }
    });
  }

  async stopLoad(): Promise<void> {
    this.running = false;
    await this.client?.close();
    await Promise.allSettled(this.loops);
  }

  kill(): Promise<unknown> {
    this.daemon.child.kill('SIGKILL');
    return this.daemon.exit;
  }
}

/**
 * Every daemon's granted counter, sampled together twenty times a second. A
 * daemon's count is read somewhere between the request and its answer, so
 * each is kept with both times: over a window, daemon n counted its grants
 * over an interval no longer than (answer at the end - request at the
 * start), and since no daemon admits more than its share in any interval,
 * the total over the longest of those intervals is what the capacity bounds.
 */
type Sample = { t: number; counts: Map<string, { count: number; sentMs: number; answeredMs: number }> };

/** Grants of every daemon between two samples, and the longest interval any daemon's count may span. */
function between(a: Sample, b: Sample): { total: number; longestMs: number } {
  let total = 0;
  let longestMs = 0;
  for (const [name, end] of b.counts) {
    const begin = a.counts.get(name);
    total += end.count - (begin?.count ?? 0);
    longestMs = Math.max(longestMs, end.answeredMs - (begin?.sentMs ?? a.t));
  }
  return { total, longestMs };
}

class GrantSampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly nodes: () => Node[]) {}

  start(): void {
    this.timer = setInterval(() => { void this.sample(); }, 50);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    const t = performance.now();
    const live = this.nodes();
    const reads = await Promise.all(live.map(async (n) => {
      const sentMs = performance.now();
      const count = await n.granted().catch(() => null);
      return { count, sentMs, answeredMs: performance.now() };
    }));
    const m = new Map<string, { count: number; sentMs: number; answeredMs: number }>();
    live.forEach((n, i) => { const r = reads[i]; if (r.count !== null) m.set(`${n.name}:${n.port}`, { ...r, count: r.count }); });
    this.samples.push({ t, counts: m });
  }

  /**
   * Total grants over each window that surely lasted at most 1 s on every
   * daemon (the longest interval its counts may span is at most 1000 ms) and
   * at least 900 ms by this clock: what the contract bounds ("in any second"),
   * with no allowance for how the counts were read.
   */
  inAnySecond(fromMs: number, toMs = Infinity): number[] {
    const s = this.samples.filter((x) => x.t >= fromMs && x.t <= toMs);
    const out: number[] = [];
    for (let i = 0; i < s.length; i++) {
      for (let j = i + 1; j < s.length && s[j].t - s[i].t <= 1000; j++) {
        if (s[j].t - s[i].t < 900) continue;
        const w = between(s[i], s[j]);
        if (w.longestMs <= 1000) out.push(w.total);
      }
    }
    return out;
  }

  /**
   * Total grants per second over each window of 1 to 1.3 s that starts at or
   * after `fromMs`, over the longest interval the counts may span (a daemon
   * that started inside a window counts from 0).
   */
  rates(fromMs: number, toMs = Infinity): number[] {
    const s = this.samples.filter((x) => x.t >= fromMs && x.t <= toMs);
    const out: number[] = [];
    for (let i = 0; i < s.length; i++) {
      for (let j = i + 1; j < s.length; j++) {
        if (s[j].t - s[i].t < 1000 || s[j].t - s[i].t > 1300) continue;
        const w = between(s[i], s[j]);
        out.push(w.total / (w.longestMs / 1000));
      }
    }
    return out;
  }
}

/** Polls until `cond` holds on every node's cluster status; returns each node's tick then. */
async function until(nodes: Node[], cond: (c: PoolCluster) => boolean, what: string, limitMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const cs = await Promise.all(nodes.map((n) => n.cluster()));
    if (cs.every(cond)) return cs.map((c) => c.tick);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(cs)}`);
    await sleep(25);
  }
}

const fmt = (xs: number[]) => `[${xs.map((x) => Math.round(x)).join(', ')}]`;
/** min / median / max of many windows, for the log. */
const spread = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length === 0 ? 'none' : `${v.length} windows, min ${Math.round(v[0])} median ${Math.round(v[v.length >> 1])} max ${Math.round(v[v.length - 1])}`;
};

/** No window of at most a second (GrantSampler.inAnySecond) saw more than the capacity (+2 %). */
function assertWithinCapacity(sampler: GrantSampler, fromMs: number): void {
  const totals = sampler.inAnySecond(fromMs);
  assert.ok(totals.length >= 5, `too few windows of at most 1 s: ${totals.length}`);
  assert.ok(Math.max(...totals) <= CAPACITY * 1.02, `over capacity in a second: ${spread(totals)}`);
}

describe('three daemons sharing a pool through Redis', { skip: SKIP_WITHOUT_REDIS }, () => {
  let redis: RedisServer;
  let proxy: DelayProxy;
  let nodes: Node[] = [];
  let files: string[] = [];
  const sampler = new GrantSampler(() => nodes);

  before(async () => {
    redis = await RedisServer.start();
    proxy = await DelayProxy.start(redis.port);
    files = ['a', 'b', 'c'].map((id) => writeConfig({
      listen: { host: '127.0.0.1', port: 0 }, io_threads: 1, tick_ms: TICK_MS, policy: { mode: 'fair' },
      log: { level: 'info' }, telemetry: { enabled: false },
      cluster: { redis: proxy.url, node_id: id, lease_ms: LEASE_MS, safe_share: 'even' },
      pools: [{ name: 'shared', capacity_tps: CAPACITY, shared: true, services: [{ name: 'svc', priority: 'HIGH' }] }],
    }));
    nodes = await Promise.all(['a', 'b', 'c'].map((id, i) => Node.start(id, files[i])));
    await until(nodes, (c) => c.mode === 'coordinated' && c.nodes === 3, 'three coordinated nodes');
    await Promise.all(nodes.map((n) => n.load()));
    sampler.start();
  });

  after(async () => {
    sampler.stop();
    await Promise.all(nodes.map((n) => n.stopLoad()));
    await Promise.all(nodes.map((n) => n.kill()));
    await proxy?.close();
    await redis?.close();
  });

  it('keeps the total grants per second within the capacity (+2 %) and above 90 % of it under saturating load', async () => {
    await sleep(1000); // shares settle on the demand
    const from = performance.now();
    await sleep(3000);
    const rates = sampler.rates(from);
    const shares = await Promise.all(nodes.map((n) => n.cluster()));
    console.log(`saturated: grants/s per window ${spread(rates)}; shares ${fmt(shares.map((c) => c.share_tps))}`);
    assert.ok(rates.length >= 5, `too few windows: ${rates.length}`);
    assertWithinCapacity(sampler, from);
    const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
    assert.ok(mean >= CAPACITY * 0.9, `below 90 % of capacity: mean ${mean}`);
    assert.ok(shares.every((c) => c.mode === 'coordinated' && c.nodes === 3));
  });

  it('shows the cluster on /metrics (promtool-clean, every cluster metric the dashboard queries) and in STATUS', async () => {
    const body = await (await fetch(`http://127.0.0.1:${nodes[0].port}/metrics`)).text();
    for (const re of [
      /^tpsd_cluster_nodes\{pool="shared"\} 3$/m, /^tpsd_cluster_share_tps\{pool="shared"\} [\d.]+$/m,
      /^tpsd_cluster_mode\{pool="shared",mode="coordinated"\} 1$/m, /^tpsd_cluster_mode\{pool="shared",mode="safe"\} 0$/m,
      /^tpsd_cluster_lease_age_seconds\{pool="shared"\} [\d.]+$/m, /^tpsd_cluster_store_calls_total [1-9]\d*$/m,
    ]) assert.match(body, re);
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const names = new Set(dash.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/\btpsd_cluster_[a-z_]+/g)].map((m) => m[0]))));
    assert.ok(names.size >= 5, `${names.size} cluster metrics on the dashboard`);
    for (const name of names) assert.match(body, new RegExp(`^${name}(\\{| )`, 'm'), `${name} is exported`);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    if (promtool.error === undefined) assert.equal(`${promtool.stdout}${promtool.stderr}`.trim(), '', 'promtool check metrics');
    const status = await nodes[0].status() as unknown as { keys: { key: string; cluster?: PoolCluster }[] };
    assert.equal(status.keys.find((k) => k.key === 'shared')?.cluster?.nodes, 3, 'the pool\'s key carries it too');
    assert.equal(status.keys.find((k) => k.key === KEY)?.cluster, undefined);
  });

  it('stays coordinated and answers acquires at local speed with 300 ms added to every Redis round trip', async () => {
    const probe = await connect(`ws://127.0.0.1:${nodes[0].port}`, { name: 'probe' });
    const latency = async (): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        await probe.acquire(KEY, 1, { waitMs: 0 });
        out.push(performance.now() - t0);
        await sleep(10);
      }
      return out.sort((a, b) => a - b);
    };
    const base = await latency();
    const metrics = async () => (await (await fetch(`http://127.0.0.1:${nodes[0].port}/metrics`)).text());
    const counter = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    const before = await metrics();
    const tickBefore = (await nodes[0].cluster()).tick;
    proxy.delayMs = 150;
    const from = performance.now();
    const modes = new Set<string>();
    const watch = (async () => {
      while (proxy.delayMs > 0) {
        for (const c of await Promise.all(nodes.map((n) => n.cluster()))) modes.add(c.mode);
        await sleep(50);
      }
    })();
    await sleep(500); // every node has a slow call out
    const slow = await latency();
    await sleep(1000);
    const afterText = await metrics();
    const tickAfter = (await nodes[0].cluster()).tick;
    proxy.delayMs = 0;
    await watch;
    await probe.close();
    const rates = sampler.rates(from);
    const answered = counter(afterText, 'tpsd_cluster_store_latency_seconds_count') - counter(before, 'tpsd_cluster_store_latency_seconds_count');
    const skipped = counter(afterText, 'tpsd_cluster_skipped_reports_total') - counter(before, 'tpsd_cluster_skipped_reports_total');
    const median = (xs: number[]) => xs[xs.length >> 1];
    console.log(`latency: acquire median ${median(base).toFixed(2)} ms before, ${median(slow).toFixed(2)} ms with +300 ms on Redis; `
      + `${tickAfter - tickBefore} ticks, ${answered} store answers, ${skipped} reports skipped; modes ${[...modes]}; grants/s ${spread(rates)}`);
    assert.deepEqual([...modes], ['coordinated'], 'a slow store is still within the lease');
    assert.ok(skipped > 0 && tickAfter - tickBefore >= 2 * answered, 'the tick went on while the store was slow');
    // An acquire that waited for Redis would take at least the 300 ms added to its round trip.
    assert.ok(median(slow) < 300, `acquires waited: ${fmt(slow)}`);
    assertWithinCapacity(sampler, from);
  });

  it('returns a killed daemon\'s share to the others within lease_ms + 2 ticks, and takes it back without a spike', async () => {
    const [a, b, c] = nodes;
    const ticksAtKill = (await Promise.all([a.cluster(), b.cluster()])).map((x) => x.tick);
    await c.stopLoad();
    await c.kill();
    const from = performance.now();
    nodes = [a, b];
    const ticksBack = await until([a, b], (x) => x.nodes === 2 && x.share_tps >= CAPACITY / 2 * 0.95, 'the killed share back');
    const elapsed = ticksBack.map((t, i) => t - ticksAtKill[i]);
    // lease_ms + 2 ticks, in ticks, + 1 because the kill falls inside a tick, + 1 because a snapshot's tick
    // (shared memory) may be one ahead of its cluster figures (posted after each tick).
    const limit = LEASE_MS / TICK_MS + 2 + 2;
    console.log(`kill: share back after ${elapsed.join(', ')} ticks (limit ${limit})`);
    assert.ok(elapsed.every((t) => t <= limit), `took ${elapsed} ticks`);
    await sleep(1200);
    const c2 = await Node.start('c', files[2]);
    nodes = [a, b, c2];
    await c2.load();
    await until(nodes, (x) => x.nodes === 3 && x.mode === 'coordinated' && x.share_tps >= CAPACITY / 3 * 0.9, 'c back in', 20_000);
    await sleep(1300);
    const rates = sampler.rates(from);
    console.log(`kill and rejoin: grants/s ${spread(rates)}`);
    assertWithinCapacity(sampler, from);
  });

  it('moves every daemon to safe within its lease when Redis stops, never over capacity', async () => {
    await redis.stop(); // resolves once the server has exited: no lease is renewed after this
    const ticks = (await Promise.all(nodes.map((n) => n.cluster()))).map((x) => x.tick);
    const from = performance.now();
    const safeAt = await until(nodes, (x) => x.mode === 'safe', 'safe mode');
    const elapsed = safeAt.map((t, i) => t - ticks[i]);
    console.log(`redis stopped: safe after ${elapsed.join(', ')} ticks (lease ${LEASE_MS / TICK_MS} ticks)`);
    // Within the lease, in ticks, + 1 because a snapshot's tick may be one ahead of its cluster figures.
    assert.ok(elapsed.every((t) => t <= LEASE_MS / TICK_MS + 1), `took ${elapsed} ticks`);
    await sleep(2 * LEASE_MS + 500); // past the peers' leases: the even share
    const shares = await Promise.all(nodes.map((n) => n.cluster()));
    const rates = sampler.rates(from);
    console.log(`safe: shares ${fmt(shares.map((x) => x.share_tps))}, grants/s ${spread(rates)}`);
    assert.ok(shares.every((x) => x.mode === 'safe' && Math.abs(x.share_tps - CAPACITY / 3) < 1), JSON.stringify(shares));
    assertWithinCapacity(sampler, from);
  });

  it('goes through learning back to coordinated when Redis comes back without its state', async () => {
    await redis.run();
    const from = performance.now();
    const seen = nodes.map(() => [] as string[]);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const cs = await Promise.all(nodes.map((n) => n.cluster()));
      cs.forEach((x, i) => { if (seen[i].at(-1) !== x.mode) seen[i].push(x.mode); });
      if (cs.every((x) => x.mode === 'coordinated' && x.nodes === 3)) break;
      if (Date.now() > deadline) throw new Error(`not coordinated again: ${JSON.stringify(seen)}`);
      await sleep(20);
    }
    await sleep(1300);
    const rates = sampler.rates(from);
    console.log(`redis restarted: modes ${JSON.stringify(seen)}, grants/s ${spread(rates)}`);
    for (const s of seen) assert.deepEqual(s.slice(-2), ['learning', 'coordinated'], JSON.stringify(seen));
    assertWithinCapacity(sampler, from);
  });
});
