// Token authentication for protocol connections. Pure functions, used by every
// I/O thread. Tokens are compared through their SHA-256 digests with
// timingSafeEqual, so neither the length nor the content of a configured token
// leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthToken, TpsdConfig } from '../config/types.ts';

export class Authenticator {
  private readonly entries: { digest: Buffer; token: AuthToken }[];

  constructor(auth: TpsdConfig['auth']) {
    this.entries = (auth?.tokens ?? []).map((t) => ({ digest: digest(t.token), token: t }));
  }

  get enabled(): boolean { return this.entries.length > 0; }

  /** The configured token matching `presented`, or null. Checks every entry. */
  check(presented: unknown): AuthToken | null {
    if (typeof presented !== 'string' || presented.length === 0 || presented.length > 4096) return null;
    const d = digest(presented);
    let found: AuthToken | null = null;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && found === null) found = e.token;
    return found;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** True when `token` may use `key` (its key list empty = every key). */
export function keyAllowed(token: AuthToken, key: string): boolean {
  if (token.keys.length === 0) return true;
  for (const prefix of token.keys) if (key.startsWith(prefix)) return true;
  return false;
}
