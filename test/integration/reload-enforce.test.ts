// A reload (SIGHUP: Daemon.reload, as cli/start.ts calls it) that flips
// `enforce` on a service or on a tenant tier applies on every I/O thread:
// once `enforce: false`, acquires over the limit are granted and counted as
// would_deny; once `enforce: true` again, they are denied and would_deny
// stops growing. Real daemon (2 I/O threads), connections on both threads
// (a lease id names its thread: id % 16). The change reaches a thread by
// message, between two of its messages, so each side waits for the new
// behaviour in a bounded poll (no timed assertion), then checks it on a
// fresh round.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/schema.ts';
import type { TpsdConfig } from '../../src/config/types.ts';
import type { Daemon } from '../../src/daemon/types.ts';
import { RawClient, httpGet, startTestDaemon, type Reply } from '../fixtures/daemon.ts';

/** A service of 5 tokens/s (burst 2) and a tier of 1 token/s (burst 1): a round of ROUND acquires is mostly over the limit. */
const POOL = {
  name: 'api', capacity_tps: 5000, burst: 500,
  services: [
    { name: 'dry', priority: 'LOW', max_tps: 5, burst: 2 },
    { name: 'trial', priority: 'LOW', max_tps: 1000, tenants: { tiers: [{ name: 'watch', priority: 'LOW', tps: 1, burst: 1 }] } },
  ],
};
const ROUND = 20;
const POLL_MS = 10_000;

/** The running config with `enforce` set on api/dry (service) or api/trial's tier watch. */
function withEnforce(config: TpsdConfig, where: 'service' | 'tier', enforce: boolean): TpsdConfig {
  const raw = JSON.parse(JSON.stringify(config)) as { pools: { services: { name: string; enforce?: boolean; tenants?: { tiers: { enforce?: boolean }[] } }[] }[] };
  const svc = raw.pools[0].services.find((s) => s.name === (where === 'service' ? 'dry' : 'trial'))!;
  if (where === 'service') svc.enforce = enforce;
  else svc.tenants!.tiers[0].enforce = enforce;
  return validateConfig(raw, {});
}

async function wouldDeny(d: Daemon, key: string): Promise<number> {
  const keys = (JSON.parse((await httpGet(d.port, '/v1/status')).body) as { keys: { key: string; would_deny: number }[] }).keys;
  return keys.find((k) => k.key === key)!.would_deny;
}

let nextId = 1;
/** ROUND acquires (1 token, wait 0) of `key` in one message; their replies. Grants are released. */
async function round(c: RawClient, key: string): Promise<Reply[]> {
  const reqs = Array.from({ length: ROUND }, () => [1, nextId++, key, 1, 0]);
  c.send(...reqs);
  const replies = await Promise.all(reqs.map((r) => c.reply(r[1] as number)));
  for (const r of replies) if (r[2] === 0) c.send([2, nextId++, r[3], 0, 0]);
  return replies;
}
const granted = (rs: Reply[]) => rs.filter((r) => r[2] === 0).length;

/** Rounds on `c` until `want` holds for one (at most POLL_MS). */
async function untilRound(c: RawClient, key: string, want: (rs: Reply[]) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + POLL_MS;
  for (;;) {
    const rs = await round(c, key);
    if (want(rs)) return;
    if (Date.now() > deadline) assert.fail(`${what}: last round ${granted(rs)} of ${ROUND} granted`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Connections until both I/O threads have one (a dry run grants, so each round names its thread). */
async function onBothThreads(d: Daemon, key: string): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  const threads = new Set<number>();
  while (clients.length < 64 && threads.size < 2) {
    const c = await RawClient.open(d.port);
    clients.push(c);
    const rs = await round(c, key);
    assert.equal(granted(rs), ROUND, 'a dry run grants every acquire');
    threads.add((rs[0][3] as number) % 16);
  }
  assert.equal(threads.size, 2, 'connections on both I/O threads');
  return clients;
}

async function flips(where: 'service' | 'tier'): Promise<void> {
  const [key, counted] = where === 'service' ? ['api/dry', 'api/dry'] : ['api/trial/w1', 'api/trial/~watch'];
  const d = await startTestDaemon({ pools: [POOL] });
  const clients: RawClient[] = [];
  try {
    await d.reload(withEnforce(d.config, where, false));
    // The first round of a connection may come before its thread has the reload: poll it, then count.
    const first = await RawClient.open(d.port);
    clients.push(first);
    await untilRound(first, key, (rs) => granted(rs) === ROUND, 'enforce: false by reload grants every acquire');
    clients.push(...await onBothThreads(d, key));

    await d.reload(withEnforce(d.config, where, true));
    for (const c of clients) await untilRound(c, key, (rs) => granted(rs) < ROUND / 2, `enforce: true by reload denies on every thread (${key})`);
    const before = await wouldDeny(d, counted);
    for (const c of clients) assert.ok(granted(await round(c, key)) < ROUND / 2, 'over the limit: denied');
    assert.equal(await wouldDeny(d, counted), before, 'nothing counted as would_deny while enforced');

    await d.reload(withEnforce(d.config, where, false));
    for (const c of clients) await untilRound(c, key, (rs) => granted(rs) === ROUND, `enforce: false again grants on every thread (${key})`);
    const dry = await wouldDeny(d, counted);
    for (const c of clients) assert.equal(granted(await round(c, key)), ROUND, 'over the limit: granted');
    assert.ok(await wouldDeny(d, counted) > dry, 'and counted as would_deny');
  } finally {
    for (const c of clients) c.close();
    await d.stop();
  }
}

describe('reload applies enforce (dry run) on every I/O thread', () => {
  it('on a service: over its limit, granted as would_deny, then denied, then granted again', () => flips('service'));
  it('on a tenant tier: over the tier\'s rate, granted as would_deny, then denied, then granted again', () => flips('tier'));
});
