// restartNeeded: which reloaded configs need a restart, and the exact message
// the SIGHUP log shows (cli-start.test.ts checks one end to end); a key-set
// comparison over 100k keys stays linear.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { keySetChange, restartNeeded } from '../../../src/daemon/reload.ts';

function config(services: string[], overrides: Record<string, unknown> = {}): TpsdConfig {
  return validateConfig({
    listen: { host: '127.0.0.1', port: 0 },
    pools: [{ name: 'api', capacity_tps: 1000, services: services.map((name) => ({ name, priority: 'LOW' })) }],
    ...overrides,
  }, {});
}

describe('restartNeeded', () => {
  it('is null for the same config and for live changes (limits, log level)', () => {
    const a = config(['a', 'b']);
    assert.equal(restartNeeded(a, config(['a', 'b'])), null);
    assert.equal(restartNeeded(a, config(['a', 'b'], { log: { level: 'debug' } })), null);
  });

  it('names every fixed setting that changed, in order', () => {
    const a = config(['a'], { io_threads: 2, tick_ms: 100 });
    assert.equal(restartNeeded(a, config(['a'], { io_threads: 3, tick_ms: 200 })),
      'changing io_threads, tick_ms needs a restart');
    assert.equal(restartNeeded(a, config(['a'], { io_threads: 2, tick_ms: 100, listen: { host: '127.0.0.1', port: 1 } })),
      'changing listen needs a restart');
  });

  it('needs a restart to change how a pool\'s upstream counts (its gate), not its SLO', () => {
    const pool = (upstream: Record<string, unknown>) => ({ pools: [{ name: 'api', capacity_tps: 1000, upstream,
      services: [{ name: 'a', priority: 'LOW' }] }] });
    const a = validateConfig({ listen: { host: '127.0.0.1', port: 0 }, ...pool({ window: 'sliding_1s' }) }, {});
    assert.equal(restartNeeded(a, validateConfig({ listen: { host: '127.0.0.1', port: 0 }, ...pool({ window: 'token_bucket' }) }, {})),
      'changing pools[].upstream.window needs a restart');
    assert.equal(restartNeeded(a, validateConfig({ listen: { host: '127.0.0.1', port: 0 }, ...pool({ slo_ms: 300 }) }, {})), null);
  });

  it('applies a tier\'s tps, burst, priority, defence and idle_s and a pool\'s SLO live; names a changed tier set, default_tier or max by path', () => {
    const tenants = (tier: Record<string, unknown>, slo: number | null = null, extra: Record<string, unknown> = {}, more: unknown[] = []) => validateConfig({
      listen: { host: '127.0.0.1', port: 0 },
      pools: [{ name: 'api', capacity_tps: 1000, ...(slo === null ? {} : { upstream: { slo_ms: slo } }), services: [
        { name: 'a', priority: 'LOW' },
        { name: 'b', priority: 'LOW', tenants: { tiers: [{ name: 'free', priority: 'LOW', tps: 5, burst: 5 }, { name: 'pro', priority: 'HIGH', ...tier }, ...more],
          max: 10, ...extra } }] }],
    }, {});
    const a = tenants({ tps: 50, burst: 10 });
    assert.equal(restartNeeded(a, tenants({ tps: 60, burst: 20 })), null);
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10, priority: 'CRITICAL' })), null);
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10, value_per_request: 3 })), null);
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10, defense: { tps_fraction: 0.5, cooldown_s: 5 } })), null);
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10 }, 250)), null);
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10 }, null, { idle_s: 30 })), null);
    assert.equal(restartNeeded(a, tenants({ name: 'gold', tps: 60, burst: 10 })),
      'changing pools[0].services[1].tenants.tiers[1] (tier "pro" replaced by "gold"), the key set (+api/b/~gold, -api/b/~pro) needs a restart');
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10 }, null, {}, [{ name: 'gold', priority: 'CRITICAL', tps: 100 }])),
      'changing pools[0].services[1].tenants.tiers[2] (tier "gold" added), the key set (+api/b/~gold) needs a restart');
    assert.equal(restartNeeded(a, tenants({ tps: 50, burst: 10 }, null, { default_tier: 'pro', max: 20 })),
      'changing pools[0].services[1].tenants.default_tier, pools[0].services[1].tenants.max needs a restart');
  });

  it('lists added then removed keys, or "order" when only the order changed', () => {
    const a = config(['a', 'b', 'c']);
    assert.equal(restartNeeded(a, config(['a', 'd', 'c', 'e'])),
      'changing the key set (+api/d, +api/e, -api/b) needs a restart');
    assert.equal(restartNeeded(a, config(['c', 'b', 'a'])), 'changing the key set (order) needs a restart');
    assert.equal(restartNeeded(a, config(['a', 'b', 'c'], { tick_ms: 50 })), 'changing tick_ms needs a restart');
  });

  it('finds the change among 100k keys (key-set comparison stays linear)', () => {
    const names = Array.from({ length: 100_000 }, (_, i) => `s${i}`);
    assert.equal(restartNeeded(config(names), config([...names.slice(1), 'new'])), 'changing the key set (+api/new, -api/s0) needs a restart');
    // No wall-clock limit here (the machine is shared): 400k keys each way,
    // linear is well under a second; a quadratic comparison (Array.includes,
    // ~20 s at 100k) would need about 16x that and run into the test timeout.
    const big = Array.from({ length: 400_000 }, (_, i) => `pool/s${i}`);
    assert.equal(keySetChange(big, [...big.slice(2), 'pool/x']), '+pool/x, -pool/s0, -pool/s1');
    assert.equal(keySetChange(big, [...big].reverse()), 'order');
  });
});
