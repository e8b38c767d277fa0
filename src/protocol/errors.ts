// One place for the protocol's error codes, one class per condition.
// test/unit/protocol/errors.test.ts checks these against docs/protocol.md.

import { CodedError } from './coded-error.ts';

export const ErrorCode = {
  BAD_REQUEST: 16,
  UNKNOWN_KEY: 17,
  UNAUTHORIZED: 18,
  UNKNOWN_LEASE: 19,
  OVERLOADED: 20,
  SHUTTING_DOWN: 21,
  TOKENS_EXCEED_BURST: 22,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

const NAMES = new Map<number, ErrorCodeName>(
  Object.entries(ErrorCode).map(([k, v]) => [v, k as ErrorCodeName]),
);

export function errorCodeName(code: number): string {
  return NAMES.get(code) ?? `CODE_${code}`;
}

/** An error reply from the daemon, as the SDK raises it; `code` is the protocol's number. */
export class TpsdError extends CodedError {
  override readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
    this.name = 'TpsdError';
  }
}
export class BadRequestError extends TpsdError {
  constructor(message: string) { super(ErrorCode.BAD_REQUEST, message); this.name = 'BadRequestError'; }
}
export class UnknownKeyError extends TpsdError {
  constructor(message: string) { super(ErrorCode.UNKNOWN_KEY, message); this.name = 'UnknownKeyError'; }
}
export class UnauthorizedError extends TpsdError {
  constructor(message: string) { super(ErrorCode.UNAUTHORIZED, message); this.name = 'UnauthorizedError'; }
}
export class UnknownLeaseError extends TpsdError {
  constructor(message: string) { super(ErrorCode.UNKNOWN_LEASE, message); this.name = 'UnknownLeaseError'; }
}
export class OverloadedError extends TpsdError {
  constructor(message: string) { super(ErrorCode.OVERLOADED, message); this.name = 'OverloadedError'; }
}
export class ShuttingDownError extends TpsdError {
  constructor(message: string) { super(ErrorCode.SHUTTING_DOWN, message); this.name = 'ShuttingDownError'; }
}
export class TokensExceedBurstError extends TpsdError {
  constructor(message: string) { super(ErrorCode.TOKENS_EXCEED_BURST, message); this.name = 'TokensExceedBurstError'; }
}

const CLASSES: Record<number, new (message: string) => TpsdError> = {
  [ErrorCode.BAD_REQUEST]: BadRequestError,
  [ErrorCode.UNKNOWN_KEY]: UnknownKeyError,
  [ErrorCode.UNAUTHORIZED]: UnauthorizedError,
  [ErrorCode.UNKNOWN_LEASE]: UnknownLeaseError,
  [ErrorCode.OVERLOADED]: OverloadedError,
  [ErrorCode.SHUTTING_DOWN]: ShuttingDownError,
  [ErrorCode.TOKENS_EXCEED_BURST]: TokensExceedBurstError,
};

/** The error class for a code received on the wire. */
export function errorFromReply(code: number, message: string): TpsdError {
  const Cls = CLASSES[code];
  return Cls ? new Cls(message) : new TpsdError(code, message);
}
