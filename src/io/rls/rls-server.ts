// Envoy's rate limit service over gRPC (HTTP/2, plaintext) on rls.host:
// rls.port, with @grpc/grpc-js and the .proto files beside this module
// (Envoy's field numbers; loaded with @grpc/proto-loader). Each call is
// decided by rls-decide.ts through the I/O thread's own RequestHandler.
//
// Threads: one RlsServer, on I/O thread 0 only (io-worker.ts). Node's
// HTTP/2 server cannot share a port across threads the way uWS does
// (SO_REUSEPORT), so one thread serves the port; thread 0 is the natural one
// because it already has a RequestHandler, the bucket table and the lease
// table: the calls take tokens through the same rules as every client, and
// running them on the main thread instead would put them beside the tick.
// Everything here runs on that thread's event loop, synchronously per call.

import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import type { Logger } from '../../config/log.ts';
import type { TpsdConfig } from '../../config/types.ts';
import { MsgWriter } from '../../protocol/codec.ts';
import { Authenticator } from '../auth.ts';
import { bearerToken } from '../caller.ts';
import { decide, type RlsHost, type RlsRequest, type RlsResponse } from './rls-decide.ts';

const PROTO_DIR = fileURLToPath(new URL('.', import.meta.url));
const PROTO_FILE = fileURLToPath(new URL('./rls.proto', import.meta.url));

type RlsConfig = NonNullable<TpsdConfig['rls']>;

function loadService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { ratelimit: { v3: { RateLimitService: { service: grpc.ServiceDefinition } } } } };
  };
  return pkg.envoy.service.ratelimit.v3.RateLimitService.service;
}

export class RlsServer {
  private readonly server: grpc.Server;
  private auth: Authenticator;
  private rls: RlsConfig;
  private readonly w = new MsgWriter(1024);

  constructor(private readonly host: RlsHost, config: TpsdConfig, private readonly log: Logger) {
    this.rls = config.rls!;
    this.auth = new Authenticator(config.auth);
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': config.max_message_bytes });
    this.server.addService(loadService(), {
      ShouldRateLimit: (call: grpc.ServerUnaryCall<RlsRequest, RlsResponse>, done: grpc.sendUnaryData<RlsResponse>) => this.call(call, done),
    });
  }

  /** Binds rls.host:rls.port; resolves with the bound port (rls.port 0: a free one). */
  start(): Promise<number> {
    const { host, port } = this.rls;
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) { reject(err); return; }
        this.log.info({ host, port: bound }, `Envoy rate limit service (gRPC) listening on ${host}:${bound}`);
        resolve(bound);
      });
    });
  }

  /** A reloaded config: tokens and unknown_keys apply to the next call (host and port need a restart). */
  reconfigure(config: TpsdConfig): void {
    this.auth = new Authenticator(config.auth);
    if (config.rls !== null) this.rls = config.rls;
  }

  /** Closes the port and every connection at once (calls are answered synchronously: none is pending). */
  stop(): void {
    this.server.forceShutdown();
  }

  private call(call: grpc.ServerUnaryCall<RlsRequest, RlsResponse>, done: grpc.sendUnaryData<RlsResponse>): void {
    const header = call.metadata.get('authorization')[0];
    const secret = bearerToken(typeof header === 'string' ? header : undefined);
    let outcome;
    try {
      outcome = decide(this.host, this.auth, this.rls, call.request, secret, this.w);
    } catch (err) {
      // A bug must cost one call, never the thread.
      this.host.handler.out.reset();
      this.log.error({ err }, 'RLS call failed');
      done({ code: grpc.status.INTERNAL, details: 'internal error' });
      return;
    }
    if ('error' in outcome) done(outcome.error);
    else done(null, outcome.response);
  }
}
