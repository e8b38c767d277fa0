// The one base class of the errors tpsd throws on purpose (daemon, CLI, SDK):
// one class per condition, each with a stable `code` a caller can test
// instead of matching the message (as nodejs/undici lib/core/errors.js and
// fastify lib/errors.js do). It sits in protocol/ so that the SDK, which must
// run in browsers and imports only client/ and protocol/, can extend it: it
// imports nothing and uses no Node API.
//
// `code` is a 'TPSD_...' string, one per class, listed with its meaning in
// docs/errors.md (test/unit/errors-codes.test.ts holds the classes and the
// docs together). The errors that carry a protocol error code from a daemon's
// reply (the SDK's TpsdError and its subclasses, the CLI's DaemonError, the
// daemon's LimitsError) keep that number as their `code`, as the SDK has always
// exposed it; docs/protocol.md "Errors" lists those numbers.
//
// The base leaves `name` alone: each class sets its own, as before.

export abstract class CodedError extends Error {
  /** Stable identifier of the condition: a 'TPSD_...' string, or a protocol error code. */
  abstract readonly code: string | number;
}
