// The upstream's own rate-limit headers, read into RELEASE hints (numbers:
// limit, remaining, reset and window in ms, a 429's Retry-After in ms), so
// the daemon can learn the upstream's true limit without probing it.
//
// Pure; the caller supplies the clock (for reset times and Retry-After
// dates). Headers may be a fetch `Headers` (or anything with get(name), as
// axios' headers), or a plain object as Node's `IncomingMessage.headers`
// (lower-case names, a value or an array of values). Read, in this order of
// precedence (the IETF fields first, then the common X- ones):
// - `RateLimit: "policy";r=REMAINING;t=RESET_S` and
//   `RateLimit-Policy: "policy";q=LIMIT;w=WINDOW_S` (IETF draft 07 and later);
// - `RateLimit-Limit: LIMIT[, LIMIT;w=WINDOW_S]`, `RateLimit-Remaining`,
//   `RateLimit-Reset: RESET_S` (IETF drafts up to 06);
// - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (and
//   `X-Rate-Limit-*`), `X-RateLimit-Reset-After: RESET_S`;
// - `Retry-After: SECONDS | HTTP-date`, on a 429 or 503 only.
// A reset is seconds from now, unless it is too large for that: from 10^9 it
// is a Unix time in seconds (GitHub, Twitter), from 10^12 in milliseconds.
// A value that is not a number >= 0 is left out, never guessed at.

import type { ReleaseHints } from './types.ts';

/** Reset values from here on are Unix times in seconds (2001-09-09), not seconds from now. */
const EPOCH_S_FROM = 1e9;
/** Reset values from here on are Unix times in milliseconds. */
const EPOCH_MS_FROM = 1e12;

/** One header's value as a string, or undefined; a list of values is joined with ", " as HTTP does. */
export function headerValue(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const lower = name.toLowerCase();
  const h = headers as { get?: unknown } & Record<string, unknown>;
  const v = typeof h.get === 'function' ? (h.get as (n: string) => unknown).call(headers, lower) : (h[lower] ?? h[name]);
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(String).join(', ');
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/** A number >= 0 written as HTTP writes one (digits, maybe a fraction), else undefined; of a list (a header sent twice), the first. */
function number(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.split(',')[0].trim();
  if (!/^\d+(\.\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** A structured header `a;k=v;k2=v2, b;k=v, ...`: each item's leading value and parameters (quotes dropped). */
function items(s: string | undefined): { value: string; params: Map<string, string> }[] {
  if (s === undefined) return [];
  return s.split(',').map((item) => {
    const [head = '', ...rest] = item.split(';');
    const params = new Map<string, string>();
    for (const part of [head, ...rest]) {
      const eq = part.indexOf('=');
      if (eq > 0) params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
    }
    return { value: head.includes('=') ? '' : head.trim(), params };
  });
}

/** The first item's parameter `name` (the first policy's), looking in later items when the first has none. */
function param(list: { params: Map<string, string> }[], name: string): string | undefined {
  for (const it of list) {
    const v = it.params.get(name);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Milliseconds until a reset written as seconds from now, or as a Unix time in s or ms. */
function resetMs(v: number | undefined, nowMs: number): number | undefined {
  if (v === undefined) return undefined;
  if (v >= EPOCH_MS_FROM) return Math.max(0, Math.round(v - nowMs));
  if (v >= EPOCH_S_FROM) return Math.max(0, Math.round(v * 1000 - nowMs));
  return Math.round(v * 1000);
}

/** Retry-After in ms: delta seconds, or an HTTP date. */
export function retryAfterMs(s: string | undefined, nowMs: number): number | undefined {
  if (s === undefined) return undefined;
  const seconds = number(s);
  if (seconds !== undefined) return Math.round(seconds * 1000);
  if (!/[a-z]/i.test(s)) return undefined; // a date has a day or month name
  const at = Date.parse(s);
  return Number.isFinite(at) ? Math.max(0, Math.round(at - nowMs)) : undefined;
}

const ms = (seconds: number | undefined): number | undefined => (seconds === undefined ? undefined : Math.round(seconds * 1000));
const whole = (n: number | undefined): number | undefined => (n === undefined ? undefined : Math.floor(n));

/**
 * The rate-limit hints in a response's headers (with its HTTP `status`), or
 * undefined when there are none.
 */
export function readRateLimitHeaders(headers: unknown, status: number, nowMs: number = Date.now()): ReleaseHints | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const get = (name: string): string | undefined => headerValue(headers, name);
  const x = (suffix: string): string | undefined => get(`x-ratelimit-${suffix}`) ?? get(`x-rate-limit-${suffix}`);
  // Draft 07+: RateLimit carries r and t per policy; drafts 01-03 wrote limit=, remaining=, reset= in it.
  const combined = items(get('ratelimit'));
  const policy = items(get('ratelimit-policy'));
  // `RateLimit-Limit: 10, 10;w=1, 50;w=60`: the limit in force, then the policies (the window is the one of the same quota).
  const limitItems = items(get('ratelimit-limit'));
  const hints: ReleaseHints = {};
  // Every hint is a whole number >= 0 that the wire can carry (a header of 300 digits is not one).
  const put = (name: keyof ReleaseHints, v: number | undefined): void => {
    if (v !== undefined && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) hints[name] = v;
  };
  const limit = number(param(policy, 'q')) ?? number(limitItems[0]?.value) ?? number(policy[0]?.value)
    ?? number(param(combined, 'limit')) ?? number(x('limit'));
  put('limit', whole(limit));
  const remaining = number(param(combined, 'r')) ?? number(param(combined, 'remaining')) ?? number(get('ratelimit-remaining'))
    ?? number(x('remaining'));
  put('remaining', whole(remaining));
  const reset = ms(number(param(combined, 't'))) ?? ms(number(param(combined, 'reset'))) ?? resetMs(number(get('ratelimit-reset')), nowMs)
    ?? ms(number(x('reset-after'))) ?? resetMs(number(x('reset')), nowMs);
  put('resetMs', reset);
  const sameQuota = limitItems.find((it) => it.params.has('w') && number(it.value) === limit) ?? limitItems.find((it) => it.params.has('w'));
  const windowS = number(param(policy, 'w')) ?? number(sameQuota?.params.get('w'));
  put('windowMs', ms(windowS));
  if (status === 429 || status === 503) {
    put('retryAfterMs', retryAfterMs(get('retry-after'), nowMs));
  }
  return Object.keys(hints).length > 0 ? hints : undefined;
}
