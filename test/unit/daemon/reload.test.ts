// restartNeeded: which reloaded configs need a restart, and the exact message
// the SIGHUP log shows (cli-start.test.ts checks one end to end); a key-set
// comparison over 100k keys stays linear.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../src/config/schema.ts';
import type { TpsdConfig } from '../../../src/config/types.ts';
import { restartNeeded } from '../../../src/daemon/reload.ts';

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

  it('lists added then removed keys, or "order" when only the order changed', () => {
    const a = config(['a', 'b', 'c']);
    assert.equal(restartNeeded(a, config(['a', 'd', 'c', 'e'])),
      'changing the key set (+api/d, +api/e, -api/b) needs a restart');
    assert.equal(restartNeeded(a, config(['c', 'b', 'a'])), 'changing the key set (order) needs a restart');
    assert.equal(restartNeeded(a, config(['a', 'b', 'c'], { tick_ms: 50 })), 'changing tick_ms needs a restart');
  });

  it('compares 100k keys in linear time', () => {
    const names = Array.from({ length: 100_000 }, (_, i) => `s${i}`);
    const a = config(names);
    const b = config([...names.slice(1), 'new']);
    const t0 = performance.now();
    assert.equal(restartNeeded(a, b), 'changing the key set (+api/new, -api/s0) needs a restart');
    const elapsedMs = performance.now() - t0;
    // Quadratic (Array.includes) took about 20 s on the dev machine; now about 0.3 s, most of it building the two key indexes.
    assert.ok(elapsedMs < 5000, `restartNeeded over 100k keys took ${elapsedMs.toFixed(0)} ms`);
  });
});
