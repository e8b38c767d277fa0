// What an I/O thread keeps per WebSocket connection (one object per
// connection, owned by the thread that accepted it): its auth state, its
// waiting requests and the writer for replies that come later.

import type { MsgWriter } from '../protocol/codec.ts';
import type { ScopedToken } from './auth.ts';

export interface Conn {
  readonly connId: number;
  token: ScopedToken | null;
  authFailures: number;
  /** The client address's key in the shared failure table (Authenticator.peerOf); absent or NO_PEER: not counted. */
  peer?: number;
  /** Waiting requests of this connection. */
  outstanding: number;
  closed: boolean;
  /** Deferred replies, created on first use. */
  out: MsgWriter | null;
  /** The name given in HELLO (for the audit trail of admin ops). */
  name?: string | null;
}
