// Envoy's rate limit service (PROTOCOL.md "Envoy's rate limit service")
// against a real daemon, called by a real gRPC client (@grpc/grpc-js) whose
// messages are encoded and decoded here by hand with the field numbers of
// Envoy's own rls.proto and ratelimit.proto, independently of the .proto
// files the daemon ships: OK, OVER_LIMIT, hits_addend, unknown descriptors
// (allow and deny), UNAUTHENTICATED and the token's scope, and that a
// decision holds neither a lease nor a concurrency slot.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import grpc from '@grpc/grpc-js';
import { startTestDaemon } from '../fixtures/daemon.ts';

type Daemon = Awaited<ReturnType<typeof startTestDaemon>>;

const METHOD = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
const OK = 1;
const OVER_LIMIT = 2;
const SECOND = 1;

const POOL = {
  name: 'h', capacity_tps: 1000, burst: 100, services: [
    { name: 'fast', priority: 'HIGH', max_tps: 500, burst: 100 },
    { name: 'frozen', priority: 'HIGH', max_tps: 0.05, burst: 1 },
    { name: 'three', priority: 'HIGH', max_tps: 0.05, burst: 3 },
    { name: 'conc', priority: 'HIGH', max_tps: 1000, burst: 100, concurrency: 1 },
    { name: 'spare', priority: 'HIGH', max_tps: 0.05, burst: 5 },
  ],
};

// --- protobuf wire format, by hand -------------------------------------------

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}
const tagged = (field: number, wire: number) => varint((field << 3) | wire);
const lenField = (field: number, bytes: number[]) => [...tagged(field, 2), ...varint(bytes.length), ...bytes];
const strField = (field: number, s: string) => lenField(field, [...Buffer.from(s, 'utf8')]);
const intField = (field: number, n: number) => [...tagged(field, 0), ...varint(n)];

interface Descriptor { entries: [string, string][]; hits?: number }

/** RateLimitRequest: domain = 1, descriptors = 2 (entries = 1 {key = 1, value = 2}, hits_addend = 3 UInt64Value {value = 1}), hits_addend = 3. */
function encodeRequest(domain: string, descriptors: Descriptor[], hits = 0): Buffer {
  const out = [...strField(1, domain)];
  for (const d of descriptors) {
    const desc: number[] = [];
    for (const [k, v] of d.entries) desc.push(...lenField(1, [...strField(1, k), ...strField(2, v)]));
    if (d.hits !== undefined) desc.push(...lenField(3, intField(1, d.hits)));
    out.push(...lenField(2, desc));
  }
  if (hits > 0) out.push(...intField(3, hits));
  return Buffer.from(out);
}

type Fields = Map<number, (number | Buffer)[]>;

function decodeFields(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let pos = 0;
  const readVarint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return Number(v);
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = readVarint();
    const field = tag >>> 3, wire = tag & 7;
    let value: number | Buffer;
    if (wire === 0) value = readVarint();
    else if (wire === 2) { const n = readVarint(); value = buf.subarray(pos, pos + n); pos += n; } else throw new Error(`wire type ${wire}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

interface Status { code: number; limit: { rpu: number; unit: number } | null; remaining: number; resetMs: number | null }
interface Response { overall: number; statuses: Status[] }

/** RateLimitResponse: overall_code = 1, statuses = 2 (code = 1, current_limit = 2 {requests_per_unit = 1, unit = 2}, limit_remaining = 3, duration_until_reset = 4 {seconds = 1, nanos = 2}). */
function decodeResponse(buf: Buffer): Response {
  const f = decodeFields(buf);
  const num = (m: Fields, k: number) => (m.get(k)?.[0] as number | undefined) ?? 0;
  const statuses = (f.get(2) ?? []).map((b) => {
    const s = decodeFields(b as Buffer);
    const lim = s.get(2)?.[0] as Buffer | undefined;
    const dur = s.get(4)?.[0] as Buffer | undefined;
    const l = lim === undefined ? null : decodeFields(lim);
    const d = dur === undefined ? null : decodeFields(dur);
    return {
      code: num(s, 1), remaining: num(s, 3),
      limit: l === null ? null : { rpu: num(l, 1), unit: num(l, 2) },
      resetMs: d === null ? null : num(d, 1) * 1000 + num(d, 2) / 1e6,
    };
  });
  return { overall: num(f, 1), statuses };
}

class RlsClient {
  private readonly client: grpc.Client;
  constructor(port: number) { this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()); }

  call(domain: string, descriptors: Descriptor[], o: { hits?: number; token?: string } = {}): Promise<Response> {
    const md = new grpc.Metadata();
    if (o.token !== undefined) md.set('authorization', `Bearer ${o.token}`);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(METHOD, (b: Buffer) => b, (b: Buffer) => decodeResponse(b), encodeRequest(domain, descriptors, o.hits), md,
        (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  close(): void { this.client.close(); }
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function keyStatus(port: number, key: string, token?: string): Promise<{ in_flight: number; remaining: number }> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const snap = await (await fetch(`http://127.0.0.1:${port}/v1/status`, { headers })).json() as { keys: { key: string; in_flight: number; remaining: number }[] };
  return snap.keys.find((k) => k.key === key)!;
}

async function grpcCode(p: Promise<unknown>): Promise<number> {
  try { await p; } catch (err) { return (err as grpc.ServiceError).code; }
  return assert.fail('the call succeeded');
}

const svc = (name: string): Descriptor => ({ entries: [['service', name]] });

async function startWithRls(extra: Record<string, unknown> = {}, rls: Record<string, unknown> = {}): Promise<{ daemon: Daemon; client: RlsClient; rlsPort: number }> {
  const rlsPort = await freePort();
  const daemon = await startTestDaemon({ pools: [POOL], policy: { mode: 'static' }, rls: { port: rlsPort, ...rls }, ...extra });
  return { daemon, client: new RlsClient(rlsPort), rlsPort };
}

describe('Envoy RLS, auth off, unknown_keys allow', () => {
  let daemon: Daemon;
  let client: RlsClient;
  before(async () => ({ daemon, client } = await startWithRls()));
  after(async () => { client.close(); await daemon.stop(); });

  it('OK: domain = pool, entry values = the key below it; current_limit per second, limit_remaining', async () => {
    const r = await client.call('h', [svc('fast')]);
    assert.equal(r.overall, OK);
    assert.equal(r.statuses.length, 1);
    assert.deepEqual(r.statuses[0].limit, { rpu: 500, unit: SECOND });
    assert.equal(r.statuses[0].code, OK);
    assert.ok(r.statuses[0].remaining >= 90 && r.statuses[0].remaining <= 99, `remaining ${r.statuses[0].remaining}`);
    assert.equal(r.statuses[0].resetMs, null);
  });

  it('OVER_LIMIT when a descriptor is denied, with duration_until_reset = the retry-after; the overall code is OVER_LIMIT if any is', async () => {
    assert.equal((await client.call('h', [svc('frozen')])).overall, OK);
    const r = await client.call('h', [svc('fast'), svc('frozen')]);
    assert.equal(r.overall, OVER_LIMIT);
    assert.equal(r.statuses[0].code, OK);
    assert.equal(r.statuses[1].code, OVER_LIMIT);
    assert.equal(r.statuses[1].remaining, 0);
    assert.ok(r.statuses[1].resetMs! > 1000 && r.statuses[1].resetMs! <= 20_000, `reset ${r.statuses[1].resetMs}`);
  });

  it('hits_addend: the request\'s for every descriptor, a descriptor\'s own first; more than the burst is OVER_LIMIT', async () => {
    const a = await client.call('h', [svc('three')], { hits: 2 });
    assert.equal(a.statuses[0].code, OK);
    assert.equal(a.statuses[0].remaining, 1);
    const b = await client.call('h', [{ entries: [['service', 'three']], hits: 1 }], { hits: 5 });
    assert.equal(b.statuses[0].code, OK);
    assert.equal(b.statuses[0].remaining, 0);
    const c = await client.call('h', [svc('fast')], { hits: 1000 });
    assert.equal(c.overall, OVER_LIMIT);
  });

  it('a descriptor naming no configured key is OK with no limit', async () => {
    const r = await client.call('h', [{ entries: [['service', 'nope']] }, svc('fast')]);
    assert.equal(r.overall, OK);
    assert.equal(r.statuses[0].code, OK);
    assert.equal(r.statuses[0].limit, null);
    assert.equal((await client.call('nopool', [svc('fast')])).statuses[0].limit, null);
  });

  it('a decision holds no lease and no concurrency slot; its tokens are taken', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await client.call('h', [svc('conc')])).overall, OK, `call ${i} found the slot free`);
    assert.equal((await keyStatus(daemon.port, 'h/conc')).in_flight, 0);
    assert.equal((await keyStatus(daemon.port, 'h/spare')).remaining, 5);
    assert.equal((await client.call('h', [svc('spare')])).overall, OK);
    const spare = await keyStatus(daemon.port, 'h/spare');
    assert.equal(spare.remaining, 4, 'the same buckets as every client');
    assert.equal(spare.in_flight, 0, 'no lease counted as held (a key without concurrency counts leases)');
  });

  it('a malformed call is INVALID_ARGUMENT: no domain, no descriptor', async () => {
    assert.equal(await grpcCode(client.call('', [svc('fast')])), grpc.status.INVALID_ARGUMENT);
    assert.equal(await grpcCode(client.call('h', [])), grpc.status.INVALID_ARGUMENT);
  });
});

describe('Envoy RLS, unknown_keys deny', () => {
  it('a descriptor naming no configured key is OVER_LIMIT', async () => {
    const { daemon, client } = await startWithRls({}, { unknown_keys: 'deny' });
    try {
      const r = await client.call('h', [{ entries: [['service', 'nope']] }, svc('fast')]);
      assert.equal(r.overall, OVER_LIMIT);
      assert.equal(r.statuses[0].code, OVER_LIMIT);
      assert.equal(r.statuses[1].code, OK);
    } finally {
      client.close();
      await daemon.stop();
    }
  });
});

describe('Envoy RLS, auth on', () => {
  let daemon: Daemon;
  let client: RlsClient;
  before(async () => ({ daemon, client } = await startWithRls({
    auth: { tokens: [{ token: 'envoy', keys: ['h/fast'] }] },
  })));
  after(async () => { client.close(); await daemon.stop(); });

  it('UNAUTHENTICATED without a valid bearer token in the metadata', async () => {
    assert.equal(await grpcCode(client.call('h', [svc('fast')])), grpc.status.UNAUTHENTICATED);
    assert.equal(await grpcCode(client.call('h', [svc('fast')], { token: 'wrong' })), grpc.status.UNAUTHENTICATED);
  });

  it('the token\'s scope applies: PERMISSION_DENIED outside it, OK inside', async () => {
    assert.equal(await grpcCode(client.call('h', [svc('conc')], { token: 'envoy' })), grpc.status.PERMISSION_DENIED);
    assert.equal((await client.call('h', [svc('fast')], { token: 'envoy' })).overall, OK);
  });
});

describe('Envoy RLS, start', () => {
  it('a daemon whose rls port is taken does not start, and says which address', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startTestDaemon({ pools: [POOL], rls: { port } }), (err: Error) => {
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        assert.match(err.message, /rls/);
        return true;
      });
    } finally {
      busy.close();
    }
  });
});
