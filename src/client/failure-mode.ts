// What acquire answers while the daemon is unreachable. Pure: the client
// supplies the clock, the time until its next reconnect attempt and, in
// 'local' mode, the limiter.

import type { FailureMode, Permit } from './types.ts';
import type { LocalLimiter } from './local-bucket.ts';

export interface FailureContext {
  mode: FailureMode;
  key: string;
  tokens: number;
  /** What is left of the caller's waitMs. */
  waitMs: number;
  now: number;
  /** Milliseconds until the client tries to reconnect. */
  untilReconnectMs: number;
  /** Required in 'local' mode. */
  limiter?: LocalLimiter;
}

export interface FailureDecision {
  permit: Permit;
  /** Resolve the permit after this many milliseconds (a local grant reserved ahead). */
  delayMs: number;
}

export function decideWhileUnreachable(ctx: FailureContext): FailureDecision {
  switch (ctx.mode) {
    case 'open':
      return { permit: { granted: true, lease: 0, remaining: 0, retryAfterMs: 0, local: true }, delayMs: 0 };
    case 'closed':
      return {
        permit: { granted: false, lease: 0, remaining: 0, retryAfterMs: Math.max(1, Math.ceil(ctx.untilReconnectMs)), local: true },
        delayMs: 0,
      };
    case 'local': {
      if (!ctx.limiter) throw new TypeError("tpsd: failureMode 'local' needs localRate");
      const d = ctx.limiter.take(ctx.key, ctx.tokens, ctx.waitMs, ctx.now);
      return {
        permit: { granted: d.granted, lease: 0, remaining: d.remaining, retryAfterMs: d.retryAfterMs, local: true },
        delayMs: d.delayMs,
      };
    }
  }
}
