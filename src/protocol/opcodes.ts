// Wire protocol v1 opcodes and status codes. Shared by the daemon and the
// client SDK; this module must stay free of Node-only imports.

export const PROTOCOL_VERSION = 1;
export const WS_PATH = '/v1';

export const OP_HELLO = 0;
export const OP_ACQUIRE = 1;
export const OP_RELEASE = 2;
export const OP_STATUS = 3;
/** Admin: read or change live limits (issue: telemetry/limits). */
export const OP_LIMITS = 16;
/** Admin: a tenant's tier (get, set, rm, list). */
export const OP_TENANTS = 17;
/** Admin: changes held for approval by governance (list, approve, reject). */
export const OP_APPROVALS = 18;

export const STATUS_OK = 0;
/** ACQUIRE only: no tokens within wait_ms. */
export const STATUS_DENIED = 1;

export const OUTCOME_OK = 0;
export const OUTCOME_FAILED = 1;
export const OUTCOME_THROTTLED = 2;
/** The upstream gave no answer within the caller's deadline. */
export const OUTCOME_TIMED_OUT = 3;

/** WebSocket close codes the daemon uses. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_MESSAGE_TOO_BIG = 1009;
export const CLOSE_INTERNAL_ERROR = 1011;

export const MAX_KEY_BYTES = 256;
/** Longest wait an ACQUIRE may ask for (30 minutes): the daemon cuts longer waits to this, and so does the SDK. */
export const MAX_WAIT_MS = 1_800_000;
export const MAX_UINT32 = 0xffffffff;
