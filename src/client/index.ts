// tpsd client SDK (`tpsd/client`). Runs in Node >= 20 (with the `ws`
// package) and in browsers (global WebSocket). Imports only src/protocol/.

export { connect, TpsdClient } from './client.ts';
export type { ConnectOptions } from './options.ts';
export type { ReconnectOptions } from './backoff.ts';
export type { LocalRate } from './local-bucket.ts';
export type { WebSocketCtor, WireSocket } from './socket.ts';
export type { AcquireOptions, ConnectionState, FailureMode, Outcome, Permit, ReleaseHints, ServerInfo, WithPermitOptions } from './types.ts';
export {
  TpsdClientError,
  PermitDeniedError,
  DisconnectedError,
  CallTimeoutError,
  ClientClosedError,
  ConnectError,
  isUpstreamThrottle,
  isUpstreamTimeout,
} from './errors.ts';
export { readRateLimitHeaders } from './rate-limit-headers.ts';
export {
  ErrorCode,
  TpsdError,
  BadRequestError,
  UnknownKeyError,
  UnauthorizedError,
  UnknownLeaseError,
  OverloadedError,
  ShuttingDownError,
  TokensExceedBurstError,
} from '../protocol/errors.ts';
export { OUTCOME_OK, OUTCOME_FAILED, OUTCOME_THROTTLED, OUTCOME_TIMED_OUT, MAX_WAIT_MS } from '../protocol/opcodes.ts';
