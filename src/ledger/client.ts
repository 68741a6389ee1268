/** A typed, promise-returning client of a ledger, for connectors, SPSP services, tools and tests. */
import * as grpc from '@grpc/grpc-js';
import { LedgerServiceClient, type SubscribeRequest, type SubscribeResponse } from '../gen/interclear/ledger/v1/ledger';
import {
  channelOptions,
  identityMetadata,
  promiseClient,
  type ClientIdentity,
  type PromiseClient,
} from '../platform/client';

/** The unary RPCs of a ledger as promises, plus Subscribe and close. */
export type LedgerClient = Omit<PromiseClient<LedgerServiceClient>, 'subscribe'> & {
  /** Opens a Subscribe stream. */
  subscribe(request: Partial<SubscribeRequest>, metadata?: grpc.Metadata): grpc.ClientReadableStream<SubscribeResponse>;
  /** Waits until the channel is connected or `timeoutMs` passes. */
  waitForReady(timeoutMs: number): Promise<void>;
  /** Closes the channel. */
  close(): void;
  /** The underlying grpc-js client. */
  raw: LedgerServiceClient;
};

/** Connects to the ledger at `address` as `identity`. */
export function createLedgerClient(address: string, identity: ClientIdentity): LedgerClient {
  const raw = new LedgerServiceClient(
    address,
    identity.credentials ?? grpc.credentials.createInsecure(),
    channelOptions,
  );
  const unary = promiseClient(raw, identity);
  const extras = {
    subscribe: (request: Partial<SubscribeRequest>, metadata?: grpc.Metadata) =>
      raw.subscribe({ accounts: [], eventTypes: [], ...request }, identityMetadata(identity, metadata)),
    waitForReady: (timeoutMs: number) =>
      new Promise<void>((resolve, reject) =>
        raw.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())),
      ),
    close: () => raw.close(),
    raw,
  };
  return new Proxy(extras as LedgerClient, {
    get(target, property) {
      if (property in target) return (target as unknown as Record<string | symbol, unknown>)[property];
      return (unary as unknown as Record<string | symbol, unknown>)[property];
    },
  });
}
