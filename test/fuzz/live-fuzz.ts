// Fuzzes a running daemon over real WebSockets, and checks it afterwards.
//
// Dirty connections send FrameFuzzer messages (keys of the `junk` pool only),
// each followed by a sentinel HELLO, a few messages in flight per connection.
// Each message's fate is predicted the way the protocol states it: 1009 when
// over max_message_bytes, 1002 when it is not valid MessagePack or holds a
// value that is not [uint, uint32, ...], else the connection stays open and
// the sentinel is answered. Any other outcome, a malformed reply, or no
// answer within 10 s is a violation. Text messages (1003) are mixed in.
//
// Clean connections meanwhile take and release leases on `acct/held`
// (concurrency 6) with well-formed requests, some waiting, and track every
// lease they hold. Each also tries to release the other's leases (answered
// UNKNOWN_LEASE, or nothing with id 0), and the dirty connections' RELEASEs
// carry clean leases now and then. Every few rounds the clean side stops at a
// barrier and checks, with STATUS and /metrics, that in_flight of `acct/held`
// equals the leases it holds, its queue is empty and exactly the releases it
// made of its own leases were counted; every request must be answered
// exactly once, and every RELEASE of its own lease must succeed.
//
// checkRecovered() is the after-check: once the junk leases' TTL has passed,
// every key's queue and in_flight are 0, each key with a concurrency limit
// grants exactly `concurrency` leases again, and HELLO/ACQUIRE/STATUS work.

import assert from 'node:assert/strict';
import { get } from 'node:http';
import { httpText } from '../../src/loadgen/http-text.ts';
import { MsgWriter, isUint, isUint32 } from '../../src/protocol/codec.ts';
import { RawClient, type Reply } from '../fixtures/daemon.ts';
import { FUZZ_POOLS, FrameFuzzer, JUNK_KEYS, Rng, decode, nestingDepth } from './frame-fuzzer.ts';

/**
 * startTestDaemon() overrides for live fuzzing. The fuzzer's junk acquires are
 * granted at about 1000/s here and never released; with a 5 s TTL an I/O
 * thread holds some 2500 of them at a time, more than its lease FIFO starts
 * with (1024 entries), so the FIFO grows and compacts while the clean
 * connections check their leases exactly: a lease lost there (as in the fixed
 * bug lease-fifo-compaction, regressions.test.ts) shows up as in_flight that
 * never drains. The test prints the junk grant rate.
 */
export const LIVE_CONFIG = {
  io_threads: 2, tick_ms: 100, lease_ttl_ms: 5000, max_message_bytes: 65_536, policy: { mode: 'static' }, pools: FUZZ_POOLS,
};
const ROUND_MS = 10;
const SENTINEL = 0xf0000000;
const ANSWER_MS = 10_000;

export interface LiveOptions { port: number; frames: number; seed: number; connections?: number; window?: number; includeKnownBugs?: boolean }

export interface LiveResult {
  frames: number;
  seconds: number;
  closes: Record<string, number>;
  cleanRequests: number;
  barriers: number;
  violations: string[];
  skipped: Record<string, number>;
  /** performance.now() when the last dirty connection closed: junk leases end by then + lease_ttl_ms. */
  dirtyDoneAt: number;
  /** RELEASEs a clean connection sent of the other one's lease (all must be refused). */
  foreignReleases: number;
  /** Clean leases handed to the dirty connections' fuzzers for their RELEASEs. */
  cleanLeasesToDirty: number;
}

interface Tracked { c: RawClient; sentinels: Map<number, () => void> }

/** Opens a connection whose replies are checked and whose sentinel replies wake their waiters. */
async function openTracked(port: number, onReply: (r: Reply) => void): Promise<Tracked> {
  const c = await RawClient.open(port);
  const t: Tracked = { c, sentinels: new Map() };
  c.ws.on('message', () => {
    for (const r of c.replies) {
      if (r[1] as number >= SENTINEL && r[0] === 0) { t.sentinels.get(r[1] as number)?.(); t.sentinels.delete(r[1] as number); }
      else onReply(r);
    }
    c.replies.length = 0;
    c.messages.length = 0;
  });
  c.ws.on('close', () => { for (const wake of t.sentinels.values()) wake(); t.sentinels.clear(); });
  return t;
}

function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'timeout'>((r) => { timer = setTimeout(r, ms, 'timeout'); })]).finally(() => clearTimeout(timer));
}

/**
 * The close code the protocol prescribes for a message: 1009, 1002 or 0 (stays
 * open); -1 when either 1002 or 0 is right: msgpackr recurses per nesting
 * level, so whether a deep message decodes depends on the stack left, which
 * differs between this thread and an I/O thread (and with JIT tiers).
 */
function predictClose(bytes: Uint8Array, max: number, values: unknown[], error: unknown): number {
  if (bytes.length > max) return 1009;
  if (nestingDepth(bytes) > 1000) return -1;
  if (error !== null) return 1002;
  for (const v of values) if (!Array.isArray(v) || v.length < 2 || !isUint(v[0]) || !isUint32(v[1])) return 1002;
  return 0;
}

export async function runLiveFuzz(o: LiveOptions): Promise<LiveResult> {
  const t0 = performance.now();
  const res: LiveResult = {
    frames: 0, seconds: 0, closes: {}, cleanRequests: 0, barriers: 0, violations: [], skipped: {}, dirtyDoneAt: 0, foreignReleases: 0, cleanLeasesToDirty: 0,
  };
  const fail = (what: string) => { if (res.violations.length < 30) res.violations.push(what); };
  const checkShape = (r: Reply) => {
    if (!Array.isArray(r) || r.length < 3 || !isUint(r[0]) || !isUint32(r[1]) || !isUint(r[2])) fail(`malformed reply ${JSON.stringify(r).slice(0, 100)}`);
  };
  let dirtyRunning = true;
  const clean = new CleanSide(o.port, o.seed, fail, res);
  const cleanLoop = clean.run(() => dirtyRunning);

  const dirty = async (k: number) => {
    const fz = new FrameFuzzer(o.seed + k * 7919, {
      keys: JUNK_KEYS, maxMessageBytes: LIVE_CONFIG.max_message_bytes, includeKnownBugs: o.includeKnownBugs, lease: () => clean.someLease(),
    });
    let t = await openTracked(o.port, checkShape);
    let sentinel = SENTINEL + k * 0x100000;
    const inFlight: Promise<void>[] = [];
    const reopen = async (code: number) => {
      res.closes[code] = (res.closes[code] ?? 0) + 1;
      inFlight.length = 0;
      t.c.close(); // when it is still open (a wrong prediction), its waiters must not outlive the run
      t = await openTracked(o.port, checkShape);
    };
    while (res.frames < o.frames && res.violations.length === 0) {
      const n = res.frames++;
      if (fz.rng.chance(0.002)) {
        t.c.ws.send('not binary');
        const code = await within(t.c.closed(ANSWER_MS), ANSWER_MS);
        if (code !== 1003) fail(`a text message closed with ${code}, expected 1003`);
        await reopen(1003);
        continue;
      }
      const f = fz.next();
      const { values, error } = f.decoded ?? (o.includeKnownBugs ? { values: [], error: null } : decode(f.bytes));
      const expect = predictClose(f.bytes, LIVE_CONFIG.max_message_bytes, values, error);
      t.c.sendBytes(f.bytes);
      if (expect > 0) {
        const code = await within(t.c.closed(ANSWER_MS).catch(() => 'timeout' as const), ANSWER_MS + 100);
        if (code !== expect) fail(`message ${n} (${f.kind}, ${f.bytes.length} bytes, seed ${o.seed}/${k}) closed with ${code}, expected ${expect}`);
        await reopen(expect);
        continue;
      }
      const id = sentinel++;
      const answered = new Promise<void>((wake) => t.sentinels.set(id, wake));
      const w = new MsgWriter(32);
      t.c.sendBytes(w.array(3).uint(0).uint(id).value({ v: 1 }).take());
      const conn = t;
      if (expect === -1) { // open or 1002: settle it before sending more on this connection
        if (await within(answered, ANSWER_MS) === 'timeout') fail(`no answer within ${ANSWER_MS} ms to message ${n} (${f.kind})`);
        if (conn.c.closeCode !== null && conn.c.closeCode !== 1002) fail(`message ${n} (${f.kind}) closed with ${conn.c.closeCode}, expected 1002 or none`);
        if (conn.c.closeCode !== null) await reopen(1002);
        continue;
      }
      inFlight.push(answered.then(() => {
        if (conn.c.closeCode !== null) fail(`connection closed with ${conn.c.closeCode} after message ${n} (${f.kind}), which should have kept it open`);
      }));
      if (inFlight.length >= (o.window ?? 4)) {
        if (await within(inFlight.shift()!, ANSWER_MS) === 'timeout') fail(`no answer within ${ANSWER_MS} ms around message ${n} (${f.kind})`);
        if (t.c.closeCode !== null) await reopen(t.c.closeCode);
      }
    }
    await Promise.all(inFlight.map((p) => within(p, ANSWER_MS)));
    for (const [key, v] of Object.entries(fz.skipped)) res.skipped[key] = (res.skipped[key] ?? 0) + v;
    t.c.close();
    await within(t.c.closed(ANSWER_MS).catch(() => 0), ANSWER_MS);
  };
  await Promise.all(Array.from({ length: o.connections ?? 6 }, (_, k) => dirty(k)));
  res.dirtyDoneAt = performance.now();
  dirtyRunning = false;
  await cleanLoop;
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}

/** Well-formed traffic on acct/held with exact lease accounting (see the header). */
class CleanSide {
  private conns: RawClient[] = [];
  private readonly held = new Map<number, number>(); // lease -> connection index
  private readonly pending: Map<number, { op: number; lease?: number; foreign?: boolean; then?: (r: Reply) => void }>[] = [new Map(), new Map()];
  private nextId = 1;
  private readonly rng: Rng;
  /** For someLease(): called from the dirty side at any time, so apart from the rounds' sequence. */
  private readonly dirtyRng: Rng;
  /** RELEASEs of its own leases sent (replied or not): each must be counted once. */
  private ownReleases = 0;

  constructor(private readonly port: number, seed: number, private readonly fail: (s: string) => void, private readonly res: LiveResult) {
    this.rng = new Rng(seed ^ 0x2545f491);
    this.dirtyRng = new Rng(seed ^ 0x68e31da4);
  }

  /** A lease a clean connection holds, for a dirty connection's RELEASE (undefined now and then, or when none is held). */
  someLease(): number | undefined {
    if (this.held.size === 0 || this.dirtyRng.chance(0.5)) return undefined;
    this.res.cleanLeasesToDirty++;
    return [...this.held.keys()][this.dirtyRng.int(this.held.size)];
  }

  private onReply(i: number, r: Reply): void {
    const p = this.pending[i].get(r[1] as number);
    if (p === undefined) { this.fail(`clean connection: reply to no outstanding request ${JSON.stringify(r).slice(0, 80)}`); return; }
    this.pending[i].delete(r[1] as number);
    if (p.op !== r[0]) this.fail(`clean connection: reply op ${String(r[0])} to op ${p.op}`);
    if (p.foreign === true) {
      if (r[2] !== 19) this.fail(`RELEASE of the other clean connection's lease ${p.lease} answered ${JSON.stringify(r)}, not UNKNOWN_LEASE`);
    } else if (p.op === 1 && r[2] === 0) {
      if (this.held.has(r[3] as number)) this.fail(`lease ${String(r[3])} granted twice`);
      this.held.set(r[3] as number, i);
    } else if (p.op === 1 && r[2] !== 1) this.fail(`clean ACQUIRE answered ${JSON.stringify(r)}`);
    else if (p.op === 2 && r[2] !== 0) this.fail(`RELEASE of held lease ${p.lease} answered ${JSON.stringify(r)}`);
    else if ((p.op === 0 || p.op === 3) && r[2] !== 0) this.fail(`clean op ${p.op} answered ${JSON.stringify(r).slice(0, 80)}`);
    p.then?.(r);
  }

  private call(i: number, req: (w: MsgWriter, id: number) => void, op: number, lease?: number, then?: (r: Reply) => void, foreign = false): number {
    const id = this.nextId++;
    this.pending[i].set(id, { op, lease, then, foreign });
    const w = new MsgWriter(64);
    req(w, id);
    this.conns[i].sendBytes(w.take());
    this.res.cleanRequests++;
    return id;
  }

  /** One round on each connection: releases (its own, and tries of the other's), acquires (some waiting). */
  private round(): void {
    for (let i = 0; i < this.conns.length; i++) {
      for (const [lease, owner] of this.held) {
        if (owner !== i) {
          if (!this.rng.chance(0.2)) continue;
          this.res.foreignReleases++;
          const outcome = this.rng.int(3);
          if (this.rng.chance(0.3)) this.conns[i].sendBytes(new MsgWriter(32).array(5).uint(2).uint(0).uint(lease).uint(outcome).uint(10).take());
          else this.call(i, (w, id) => w.array(5).uint(2).uint(id).uint(lease).uint(outcome).uint(100), 2, lease, undefined, true);
          continue;
        }
        if (!this.rng.chance(0.5)) continue;
        this.held.delete(lease);
        this.ownReleases++;
        if (this.rng.chance(0.3)) this.conns[i].sendBytes(new MsgWriter(32).array(5).uint(2).uint(0).uint(lease).uint(0).uint(10).take());
        else this.call(i, (w, id) => w.array(5).uint(2).uint(id).uint(lease).uint(this.rng.int(3)).uint(100), 2, lease);
      }
      for (let k = this.rng.range(1, 4); k > 0; k--) {
        const wait = this.rng.chance(0.6) ? 0 : this.rng.range(1, 100);
        this.call(i, (w, id) => w.array(5).uint(1).uint(id).str('acct/held').uint(1).uint(wait), 1);
      }
    }
  }

  /** Waits for every answer, then checks the daemon's gauges against the leases held. */
  private async barrier(): Promise<void> {
    const deadline = Date.now() + 3000;
    while (this.pending.some((m) => m.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const left = this.pending.reduce((s, m) => s + m.size, 0);
    if (left > 0) { this.fail(`${left} clean requests never answered`); return; }
    const answer = new Promise<Reply>((resolve) => this.call(0, (w, i) => w.array(2).uint(3).uint(i), 3, undefined, resolve));
    const reply = await within(answer, ANSWER_MS);
    if (reply === 'timeout') { this.fail('barrier: STATUS not answered'); return; }
    const key = ((reply[3] as { keys: { key: string; in_flight: number; queue: number }[] }).keys).find((k) => k.key === 'acct/held')!;
    if (key.in_flight !== this.held.size || key.queue !== 0) {
      this.fail(`barrier: acct/held in_flight ${key.in_flight} queue ${key.queue}, ${this.held.size} leases held`);
    }
    // Every RELEASE counts once (its latency), whatever its outcome: exactly the clean side's own releases.
    const counted = /^tpsd_release_latency_seconds_count\{key="acct\/held",[^}]*\} (\d+)$/m.exec(await httpText(this.port, '/metrics'));
    if (Number(counted?.[1]) !== this.ownReleases) this.fail(`barrier: ${counted?.[1]} releases of acct/held counted, ${this.ownReleases} made`);
    this.res.barriers++;
  }

  async run(busy: () => boolean): Promise<void> {
    for (let i = 0; i < 2; i++) {
      const c = await RawClient.open(this.port);
      c.ws.on('message', () => { for (const r of c.replies) this.onReply(i, r); c.replies.length = 0; c.messages.length = 0; });
      this.conns.push(c);
    }
    for (let n = 1; busy() || n % 20 !== 1; n++) {
      this.round();
      await new Promise((r) => setTimeout(r, ROUND_MS));
      if (n % 20 === 0) await this.barrier();
    }
    for (const [lease, i] of this.held) this.call(i, (w, id) => w.array(5).uint(2).uint(id).uint(lease).uint(0).uint(1), 2, lease);
    this.ownReleases += this.held.size;
    this.held.clear();
    await this.barrier();
    for (const c of this.conns) c.close();
  }
}

/** The after-check (see the header). Call once lease_ttl_ms has passed since res.dirtyDoneAt. */
export async function checkRecovered(port: number): Promise<void> {
  const c = await RawClient.open(port);
  const hello = await c.call([0, 1, { v: 1 }]);
  assert.deepEqual(hello.slice(0, 3), [0, 1, 0], 'HELLO answered');
  const status = await c.call([3, 2]);
  const keys = (status[3] as { keys: { key: string; queue: number; in_flight: number; concurrency: number }[] }).keys;
  for (const k of keys) {
    assert.equal(k.queue, 0, `${k.key}: queue`);
    assert.equal(k.in_flight, 0, `${k.key}: in_flight`);
  }
  const granted = await c.call([1, 3, 'junk/b', 1, 0]);
  assert.equal(granted[2], 0, 'ACQUIRE granted');
  assert.equal((await c.call([2, 4, granted[3] as number, 0, 1]))[2], 0, 'RELEASE');
  let id = 10;
  for (const k of keys.filter((x) => x.concurrency > 0)) {
    const leases: number[] = [];
    for (let i = 0; i < k.concurrency; i++) {
      const r = await c.call([1, ++id, k.key, 1, 0]);
      assert.equal(r[2], 0, `${k.key}: lease ${i + 1} of ${k.concurrency} granted (${JSON.stringify(r)})`);
      leases.push(r[3] as number);
    }
    assert.deepEqual((await c.call([1, ++id, k.key, 1, 0])).slice(2, 4), [1, 0], `${k.key}: lease ${k.concurrency + 1} denied`);
    const full = ((await c.call([3, ++id]))[3] as { keys: typeof keys }).keys.find((x) => x.key === k.key)!;
    assert.equal(full.in_flight, k.concurrency, `${k.key}: in_flight with every slot taken`);
    for (const lease of leases) assert.equal((await c.call([2, ++id, lease, 0, 1]))[2], 0, 'RELEASE');
    const after = ((await c.call([3, ++id]))[3] as { keys: typeof keys }).keys.find((x) => x.key === k.key)!;
    assert.equal(after.in_flight, 0, `${k.key}: in_flight after releasing them all`);
  }
  c.close();
  assert.equal(await healthz(port), 200);
}

/**
 * GET /healthz on a connection that is closed after the reply. (Stopping the
 * daemon while an HTTP keep-alive connection is open can abort the process;
 * reported, see test/fuzz/regressions.test.ts.)
 */
function healthz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/healthz', agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

