// What an I/O thread keeps per WebSocket connection (one object per
// connection, owned by the thread that accepted it): its auth state, its
// waiting requests and the writer for replies that come later.

import type { AuthToken } from '../config/types.ts';
import type { MsgWriter } from '../protocol/codec.ts';

export interface Conn {
  readonly connId: number;
  token: AuthToken | null;
  authFailures: number;
  /** Waiting requests of this connection. */
  outstanding: number;
  closed: boolean;
  /** Deferred replies, created on first use. */
  out: MsgWriter | null;
  /** The name given in HELLO (for the audit trail of admin ops). */
  name?: string | null;
}
