// The packed SDK against a running daemon, as a service uses it. Shared by
// smoke.mjs (the SDK loaded with `import`) and smoke.cjs (with `require`):
// `sdk` is the module as the caller loaded it. Resolves with what it saw;
// rejects at the first thing that is not as documented.
'use strict';

function expect(cond, what) {
  if (!cond) throw new Error(`client smoke: ${what}`);
}

module.exports = async function check(sdk, url, key) {
  const names = ['OUTCOME_OK', 'OUTCOME_FAILED', 'OUTCOME_THROTTLED', 'OUTCOME_TIMED_OUT'];
  expect(names.every((n, i) => sdk[n] === i), `outcome constants ${names.map((n) => sdk[n]).join(',')}`);
  const client = await sdk.connect(url, { name: 'client-smoke' });
  try {
    expect(client.connected && client.server && client.server.v === 1, 'HELLO answered');
    const permit = await client.acquire(key);
    expect(permit.granted && permit.lease > 0 && permit.local === undefined, `acquire granted by the daemon: ${JSON.stringify(permit)}`);
    client.release(permit.lease, sdk.OUTCOME_OK, 1000);
    // A response the guarded call returned, with status 429: reported as throttled, returned as it is.
    const upstream429 = { status: 429, headers: { 'retry-after': '1', 'ratelimit-limit': '100', 'ratelimit-remaining': '0' } };
    const returned = await client.withPermit(key, async () => upstream429);
    expect(returned === upstream429, 'withPermit returns what the call returned');
    let unknownKey = null;
    try {
      await client.acquire('no/such/key');
    } catch (err) {
      unknownKey = err;
    }
    expect(unknownKey instanceof sdk.UnknownKeyError && unknownKey instanceof sdk.TpsdError, `UnknownKeyError: ${unknownKey}`);
    const status = await client.status();
    expect(Array.isArray(status.keys) && status.keys.some((k) => k.key === key), 'STATUS lists the key');
    return { server: client.server.server, lease: permit.lease, unknownKeyCode: unknownKey.code, keys: status.keys.length };
  } finally {
    await client.close();
  }
};
