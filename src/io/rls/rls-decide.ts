// One ShouldRateLimit call of Envoy's rate limit service, decided by the I/O
// thread's own RequestHandler (PROTOCOL.md "Envoy's rate limit service"):
// the domain names the pool, each descriptor's entry values joined with '/'
// name a key below it, and each descriptor becomes an ACQUIRE of its
// hits_addend tokens (0: 1) with wait_ms 0, all of them in one protocol
// message, so the handler applies exactly the rules of every other client
// (auth scope, unknown keys, bursts, shutting down) and counts the demand.
//
// RLS has no release. A granted descriptor's lease is ended at once
// (endAtOnce): its concurrency slot, if the key has one, is freed in the same
// call, the lease leaves the table, and the grant is taken back out of the
// lease counter (tpsd_leases_granted_total, in-flight), since nothing was
// lent out; its tokens stay taken. So a key's concurrency limit only shows
// here as "no slot free right now" (OVER_LIMIT), never as a slot held.
//
// Threads: runs on I/O thread 0, which serves the gRPC port (rls-server.ts),
// inside one gRPC callback: no await between the handler's reply and the
// lease's end.

import { status as GrpcStatus } from '@grpc/grpc-js';
import type { TpsdConfig } from '../../config/types.ts';
import { MsgWriter, decodeAll } from '../../protocol/codec.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { connOwner } from '../lease-table.ts';
import { OP_ACQUIRE, STATUS_DENIED, STATUS_OK } from '../../protocol/opcodes.ts';
import type { BucketTable } from '../../shm/bucket-table.ts';
import type { KeyIndex } from '../../shm/key-index.ts';
import { C_GRANTS_INDEX } from '../../shm/layout.ts';
import type { Authenticator } from '../auth.ts';
import { CallerConn, callerOf } from '../caller.ts';
import type { RequestHandler } from '../request-handler.ts';

/** Descriptors one call may carry (Envoy sends a handful). */
export const MAX_DESCRIPTORS = 64;

/** The request as @grpc/proto-loader decodes it (keepCase, longs as strings). */
export interface RlsRequest {
  domain?: string;
  descriptors?: { entries?: { key?: string; value?: string }[]; hits_addend?: { value?: string | number } | null }[];
  hits_addend?: number;
}

export interface DescriptorStatus {
  code: 'OK' | 'OVER_LIMIT';
  current_limit?: { requests_per_unit: number; unit: 'SECOND' };
  limit_remaining: number;
  duration_until_reset?: { seconds: number; nanos: number };
}

export interface RlsResponse { overall_code: 'OK' | 'OVER_LIMIT'; statuses: DescriptorStatus[] }

/** A decision, or a gRPC error for the whole call. */
export type RlsOutcome = { response: RlsResponse } | { error: { code: GrpcStatus; details: string } };

export interface RlsHost {
  readonly handler: RequestHandler;
  readonly table: BucketTable;
  readonly keys: KeyIndex;
  /** After the handler took requests: the allowance flush. */
  readonly afterRequest: () => void;
}


const fail = (code: GrpcStatus, details: string): RlsOutcome => ({ error: { code, details } });

/** The key a descriptor names under `domain`. */
export function keyOf(domain: string, entries: readonly { value?: string }[]): string {
  return entries.length === 0 ? domain : `${domain}/${entries.map((e) => e.value ?? '').join('/')}`;
}

/** Tokens a descriptor takes: its own hits_addend, else the request's; 0 means 1. */
function tokensOf(requestHits: number, own: { value?: string | number } | null | undefined): number {
  const n = own !== undefined && own !== null ? Number(own.value ?? 0) : requestHits;
  return n === 0 ? 1 : n;
}

/** Decides one ShouldRateLimit call. `secret`: the bearer token of its metadata. */
export function decide(host: RlsHost, auth: Authenticator, rls: NonNullable<TpsdConfig['rls']>, req: RlsRequest,
  secret: string | null, w: MsgWriter): RlsOutcome {
  const caller = callerOf(auth, secret);
  if (auth.enabled && caller.token === null) {
    return fail(GrpcStatus.UNAUTHENTICATED, secret === null ? 'send authorization: Bearer TOKEN metadata' : 'invalid token');
  }
  const domain = req.domain ?? '';
  const descriptors = req.descriptors ?? [];
  if (domain === '') return fail(GrpcStatus.INVALID_ARGUMENT, 'the domain (a pool) must not be empty');
  if (descriptors.length === 0) return fail(GrpcStatus.INVALID_ARGUMENT, 'at least one descriptor is needed');
  if (descriptors.length > MAX_DESCRIPTORS) return fail(GrpcStatus.INVALID_ARGUMENT, `at most ${MAX_DESCRIPTORS} descriptors per call`);
  const keys = descriptors.map((d) => keyOf(domain, d.entries ?? []));
  w.reset();
  descriptors.forEach((d, i) => {
    const tokens = tokensOf(req.hits_addend ?? 0, d.hits_addend);
    w.array(5).uint(OP_ACQUIRE).uint(i + 1).str(keys[i]);
    if (Number.isSafeInteger(tokens) && tokens >= 0) w.uint(tokens); else w.value(tokens);
    w.uint(0);
  });
  const replies = run(host, new CallerConn(caller, 'envoy-rls'), w.view());
  return answer(host, rls, keys, replies);
}

/** Feeds the ACQUIREs to the handler; their replies, in order, with every granted lease ended at once. */
function run(host: RlsHost, conn: CallerConn, bytes: Uint8Array): unknown[][] {
  const h = host.handler;
  h.handleMessage(conn, bytes);
  const replies = h.out.length > 0 ? decodeAll(h.out.view()) as unknown[][] : [];
  h.out.reset();
  for (const r of replies) if (r[0] === OP_ACQUIRE && r[2] === STATUS_OK) endAtOnce(host, r[3] as number, conn.connId);
  host.afterRequest();
  return replies;
}

/** Ends a lease the moment it is made: slot freed, lease gone, not counted as one (see the header). */
function endAtOnce(host: RlsHost, lease: number, owner: number): void {
  const leases = host.handler.leases;
  const b = leases.release(lease, connOwner(owner));
  if (b < 0) return;
  host.table.releaseSlots(b, leases.lastMask);
  host.table.count(b, C_GRANTS_INDEX, -1);
}

function answer(host: RlsHost, rls: NonNullable<TpsdConfig['rls']>, keys: string[], replies: unknown[][]): RlsOutcome {
  const statuses: DescriptorStatus[] = [];
  for (let i = 0; i < keys.length; i++) {
    const r = replies[i];
    if (r === undefined || r[1] !== i + 1) return fail(GrpcStatus.INTERNAL, 'a descriptor got no decision');
    const code = r[2] as number;
    const limit = () => currentLimit(host, keys[i]);
    if (code === STATUS_OK) statuses.push({ code: 'OK', current_limit: limit(), limit_remaining: r[4] as number });
    else if (code === STATUS_DENIED) {
      statuses.push({ code: 'OVER_LIMIT', current_limit: limit(), limit_remaining: 0, duration_until_reset: durationOf(r[4] as number) });
    } else if (code === ErrorCode.UNKNOWN_KEY) {
      statuses.push({ code: rls.unknown_keys === 'deny' ? 'OVER_LIMIT' : 'OK', limit_remaining: 0 });
    } else if (code === ErrorCode.TOKENS_EXCEED_BURST) {
      statuses.push({ code: 'OVER_LIMIT', current_limit: limit(), limit_remaining: 0 });
    } else return fail(grpcStatusOf(code), `${keys[i]}: ${String(r[3])}`);
  }
  const over = statuses.some((s) => s.code === 'OVER_LIMIT');
  return { response: { overall_code: over ? 'OVER_LIMIT' : 'OK', statuses } };
}

/** A whole-call error for a handler error code (a valid token is known here: UNAUTHORIZED is its scope). */
function grpcStatusOf(code: number): GrpcStatus {
  switch (code) {
    case ErrorCode.UNAUTHORIZED: return GrpcStatus.PERMISSION_DENIED;
    case ErrorCode.BAD_REQUEST: return GrpcStatus.INVALID_ARGUMENT;
    case ErrorCode.OVERLOADED: case ErrorCode.SHUTTING_DOWN: return GrpcStatus.UNAVAILABLE;
    default: return GrpcStatus.INTERNAL;
  }
}

function currentLimit(host: RlsHost, key: string): DescriptorStatus['current_limit'] {
  const b = host.keys.lookup(key);
  return { requests_per_unit: b < 0 ? 0 : Math.round(host.table.rateTps(b)), unit: 'SECOND' };
}

function durationOf(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
