// The SDK connection of the load generator (client "sdk"): one TpsdClient of
// src/client per connection, exactly as a service would use it. A "message"
// of the load loop is `batch` acquire() calls made in the same tick; the SDK
// itself decides how they go out (it batches calls of one tick into one
// WebSocket message). Nothing here touches the wire.
//
// Single-threaded: owned by one load worker thread.

import { connect, TpsdError, type Permit, type TpsdClient } from '../client/index.ts';
import type { Lane, LaneSink } from './engine.ts';
import type { LoadSpec } from './spec.ts';

/** One message's calls: created per message, methods on the prototype (no closure per call). */
class Message {
  constructor(private readonly sink: LaneSink, private left: number, private readonly intendedMs: number,
    private readonly releaseTo: TpsdClient | null) {}
  permit(p: Permit): void {
    // A permit the SDK made up (failure mode) is not the daemon's decision.
    if (p.local === true) this.sink.failures(this.intendedMs, 'answered by the SDK failure mode (daemon unreachable)', 1);
    else this.sink.replies(this.intendedMs, p.granted ? 0 : 1, 1);
    if (this.releaseTo !== null && p.lease !== 0) this.releaseTo.release(p.lease, 0, 0);
    if (--this.left === 0) this.sink.complete();
  }
  error(err: unknown): void {
    if (err instanceof TpsdError) this.sink.replies(this.intendedMs, err.code, 1);
    else this.sink.failures(this.intendedMs, (err as Error)?.name ?? 'error', 1);
    if (--this.left === 0) this.sink.complete();
  }
}

export async function openSdkLane(spec: LoadSpec, index: number, sink: LaneSink): Promise<Lane> {
  const client: TpsdClient = await connect(spec.url, {
    name: 'tpsd-bench', token: spec.token ?? undefined, failureMode: 'closed', timeoutMs: 10_000,
    maxOutstanding: Math.max(4096, spec.pipeline * spec.batch),
  });
  let closing = false;
  client.on('state', (state, reason) => { if (state === 'disconnected' && !closing) sink.lost(reason); });
  const keys = spec.keys;
  let cursor = index * spec.batch;
  const releaseTo = spec.release ? client : null;

  // Hot path: anonymous arrows only (tsx keeps the names of named closures
  // with a defineProperty call each time one is created).
  const lane: Lane = {
    submit(_seq, intendedMs) {
      const m = new Message(sink, spec.batch, intendedMs, releaseTo);
      for (let i = 0; i < spec.batch; i++) {
        client.acquire(keys[cursor++ % keys.length]).then((p) => m.permit(p), (e: unknown) => m.error(e));
      }
    },
    async close() {
      closing = true;
      await client.close();
    },
  };
  return lane;
}
