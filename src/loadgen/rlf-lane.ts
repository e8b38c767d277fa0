// The Redis connection of the load generator (client "rlf"): what a Node
// service would use instead of tpsd, rate-limiter-flexible's RateLimiterRedis
// over one ioredis client with auto-pipelining (calls made in the same tick go
// out in one write). A "message" of the load loop is `batch` consume() calls
// made in the same tick. Granted = consume() resolved; denied = it rejected
// with a RateLimiterRes; a rejection with an Error is an error.
//
// rate-limiter-flexible and ioredis are dev dependencies, loaded only when
// this client is used. Single-threaded: owned by one load worker thread.

import type { Lane, LaneSink } from './engine.ts';
import type { LoadSpec } from './spec.ts';

interface RedisLike {
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: string, fn: (...args: unknown[]) => void): unknown;
}
interface LimiterLike { consume(key: string, points?: number): Promise<unknown> }
type RedisCtor = new (options: Record<string, unknown>) => RedisLike;
type LimiterCtor = new (options: Record<string, unknown>) => LimiterLike;

let modules: Promise<{ Redis: RedisCtor; RateLimiterRedis: LimiterCtor }> | undefined;

function loadModules(): Promise<{ Redis: RedisCtor; RateLimiterRedis: LimiterCtor }> {
  modules ??= (async () => {
    try {
      const ioredis = await import('ioredis') as unknown as { default?: unknown; Redis?: unknown };
      const rlf = await import('rate-limiter-flexible') as unknown as { RateLimiterRedis?: unknown; default?: { RateLimiterRedis?: unknown } };
      return {
        Redis: (ioredis.Redis ?? ioredis.default) as RedisCtor,
        RateLimiterRedis: (rlf.RateLimiterRedis ?? rlf.default?.RateLimiterRedis) as LimiterCtor,
      };
    } catch (err) {
      throw new Error(`the rlf client needs the dev dependencies ioredis and rate-limiter-flexible (npm install): ${(err as Error).message}`);
    }
  })();
  return modules;
}

/** One message's calls (methods on the prototype: no named closure per call, see sdk-lane.ts). */
class Message {
  constructor(private readonly sink: LaneSink, private left: number, private readonly intendedMs: number) {}
  granted(): void { this.sink.replies(this.intendedMs, 0, 1); this.done(); }
  rejected(r: unknown): void {
    if (r instanceof Error) this.sink.failures(this.intendedMs, `redis: ${r.message}`, 1);
    else this.sink.replies(this.intendedMs, 1, 1);
    this.done();
  }
  private done(): void { if (--this.left === 0) this.sink.complete(); }
}

export async function openRlfLane(spec: LoadSpec, index: number, sink: LaneSink): Promise<Lane> {
  const { Redis, RateLimiterRedis } = await loadModules();
  const u = new URL(spec.url);
  const redis = new Redis({
    host: u.hostname, port: Number(u.port || 6379), lazyConnect: true, enableAutoPipelining: true,
    maxRetriesPerRequest: 0, connectTimeout: 10_000, retryStrategy: () => null,
  });
  let closing = false;
  redis.on('error', () => { /* 'end' follows; in-flight calls reject */ });
  redis.on('end', () => { if (!closing) sink.lost('redis connection ended'); });
  await redis.connect();
  const limiter = new RateLimiterRedis({
    storeClient: redis, points: spec.rlfPoints, duration: spec.rlfDurationS, keyPrefix: 'tpsd-bench',
  });
  const keys = spec.keys;
  let cursor = index * spec.batch;

  return {
    submit(_seq, intendedMs) {
      const m = new Message(sink, spec.batch, intendedMs);
      for (let i = 0; i < spec.batch; i++) limiter.consume(keys[cursor++ % keys.length], 1).then(() => m.granted(), (r: unknown) => m.rejected(r));
    },
    async close() {
      closing = true;
      try { await redis.quit(); } catch { redis.disconnect(); }
    },
  };
}
