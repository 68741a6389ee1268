/**
 * Typed, promise-returning clients of an SPSP service: SpspService (for other DFSPs) and
 * PaymentService (for the DFSP's own systems, tools and tests).
 */
import * as grpc from '@grpc/grpc-js';
import {
  PaymentServiceClient as PaymentServiceGrpcClient,
  SpspServiceClient as SpspServiceGrpcClient,
  type WatchPaymentRequest,
  type WatchPaymentResponse,
} from '../gen/interclear/spsp/v1/spsp';
import {
  channelOptions,
  identityMetadata,
  promiseClient,
  type ClientIdentity,
  type PromiseClient,
} from '../platform/client';
import { tracingClientInterceptor } from '../platform/tracing';

/** SpspService as promises. */
export type SpspClient = PromiseClient<SpspServiceGrpcClient> & { close(): void };

/** PaymentService as promises, plus WatchPayment. */
export type PaymentClient = Omit<PromiseClient<PaymentServiceGrpcClient>, 'watchPayment'> & {
  /** Opens a WatchPayment stream. */
  watchPayment(request: WatchPaymentRequest, metadata?: grpc.Metadata): grpc.ClientReadableStream<WatchPaymentResponse>;
  close(): void;
};

/** Channel options of SPSP clients: the shared ones, and the caller's trace sent along. */
const spspChannelOptions: grpc.ClientOptions = { ...channelOptions, interceptors: [tracingClientInterceptor] };

function withExtras<Client extends grpc.Client, Extras extends object>(
  raw: Client,
  identity: ClientIdentity,
  extras: Extras,
): PromiseClient<Client> & Extras {
  const unary = promiseClient(raw, identity);
  return new Proxy(extras as PromiseClient<Client> & Extras, {
    get(target, property) {
      if (property in target) return (target as unknown as Record<string | symbol, unknown>)[property];
      return (unary as unknown as Record<string | symbol, unknown>)[property];
    },
  });
}

/** Connects to the SpspService at `address`. */
export function createSpspClient(address: string, identity: ClientIdentity = {}): SpspClient {
  const raw = new SpspServiceGrpcClient(
    address,
    identity.credentials ?? grpc.credentials.createInsecure(),
    spspChannelOptions,
  );
  return withExtras(raw, identity, { close: () => raw.close() });
}

/** Connects to the PaymentService at `address`. */
export function createPaymentClient(address: string, identity: ClientIdentity = {}): PaymentClient {
  const raw = new PaymentServiceGrpcClient(
    address,
    identity.credentials ?? grpc.credentials.createInsecure(),
    spspChannelOptions,
  );
  return withExtras(raw, identity, {
    watchPayment: (request: WatchPaymentRequest, metadata?: grpc.Metadata) =>
      raw.watchPayment(request, identityMetadata(identity, metadata)),
    close: () => raw.close(),
  }) as unknown as PaymentClient;
}
