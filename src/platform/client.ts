/**
 * Client side of every Interclear service: channel credentials, the caller's metadata, and
 * promise-returning wrappers around ts-proto's callback clients.
 */
import * as grpc from '@grpc/grpc-js';
import { principalHeader } from './principal';

/** How a client identifies itself. */
export interface ClientIdentity {
  /** Insecure development mode: the principal sent in the x-principal header. */
  principal?: string;
  /** TLS channel credentials (mTLS with the client's certificate); plaintext when absent. */
  credentials?: grpc.ChannelCredentials;
}

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds until the call fails with DEADLINE_EXCEEDED. */
  timeoutMs?: number;
  /** Extra metadata (e.g. trace context). */
  metadata?: grpc.Metadata;
}

type UnaryCallback<Response> = (error: grpc.ServiceError | null, response: Response) => void;

/** The promise form of every unary method of a ts-proto grpc-js client. */
export type PromiseClient<Client> = {
  [
    Method in keyof Client as Client[Method] extends UnaryMethod<infer _Request, infer _Response> ? Method : never
  ]: Client[Method] extends UnaryMethod<infer Request, infer Response>
    ? (request: Request, options?: CallOptions) => Promise<Response>
    : never;
};

/** The full overload of a ts-proto unary client method. */
type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: UnaryCallback<Response>,
) => grpc.ClientUnaryCall;

/** The metadata every call of `identity` carries. */
export function identityMetadata(identity: ClientIdentity, extra?: grpc.Metadata): grpc.Metadata {
  const metadata = extra ? extra.clone() : new grpc.Metadata();
  if (identity.principal) metadata.set(principalHeader, identity.principal);
  return metadata;
}

/** Channel options shared by every client: bounded messages, keepalive, fast reconnects. */
export const channelOptions: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
};

/** Wraps a ts-proto client so that each unary method returns a promise. */
export function promiseClient<Client extends grpc.Client>(
  client: Client,
  identity: ClientIdentity,
): PromiseClient<Client> {
  return new Proxy({} as PromiseClient<Client>, {
    get(_target, property) {
      const method = (client as unknown as Record<string | symbol, unknown>)[property];
      if (typeof method !== 'function') return undefined;
      return (request: unknown, options: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const callOptions: Partial<grpc.CallOptions> = {};
          if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
          (method as (...args: unknown[]) => unknown).call(
            client,
            request,
            identityMetadata(identity, options.metadata),
            callOptions,
            (error: grpc.ServiceError | null, response: unknown) => (error ? reject(error) : resolve(response)),
          );
        });
    },
  });
}

/**
 * Status codes that say nothing final about a call: the command may or may not have been
 * applied, so the caller retries it (every mutating RPC is idempotent) rather than giving up.
 */
export const uncertainOutcomeCodes: ReadonlySet<number> = new Set<number>([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.CANCELLED,
]);
