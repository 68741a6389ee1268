/**
 * Clients of a connector's services — for the next connector on a route (multi-hop quotes), SPSP
 * services, tools and tests — and the gRPC form of {@link NextHopQuoter}.
 */
import type * as grpc from '@grpc/grpc-js';
import { credentials } from '@grpc/grpc-js';
import { Metadata, status } from '@grpc/grpc-js';
import { ConnectorServiceClient } from '../gen/interclear/connector/v1/connector';
import type { Duration } from '../gen/google/protobuf/duration';
import { QuotingServiceClient, type Quote as WireQuote } from '../gen/interclear/quoting/v1/quoting';
import { channelOptions, promiseClient, type ClientIdentity, type PromiseClient } from '../platform/client';
import { decodeGrpcError } from '../platform/errors';
import { remainingCallTimeMs } from '../platform/context';
import { injectContext } from '../platform/tracing';
import { isQuoteErrorCode, quoteFailure, type QuoteFailure } from './errors';
import type { NextHopQuoter, Quote, QuoteRequest } from './quoting';

/** A connector's QuotingService as promises. */
export type QuotingClient = PromiseClient<QuotingServiceClient> & { close(): void };

/** A connector's ConnectorService as promises. */
export type ConnectorClient = PromiseClient<ConnectorServiceClient> & { close(): void };

function withClose<Client extends grpc.Client>(
  raw: Client,
  identity: ClientIdentity,
): PromiseClient<Client> & { close(): void } {
  const unary = promiseClient(raw, identity);
  return new Proxy({ close: () => raw.close() } as PromiseClient<Client> & { close(): void }, {
    get(target, property) {
      if (property === 'close') return target.close;
      return (unary as unknown as Record<string | symbol, unknown>)[property];
    },
  });
}

/** Connects to the QuotingService at `address`. */
export function createQuotingClient(address: string, identity: ClientIdentity = {}): QuotingClient {
  const raw = new QuotingServiceClient(address, identity.credentials ?? credentials.createInsecure(), channelOptions);
  return withClose(raw, identity);
}

/** Connects to the ConnectorService at `address`. */
export function createConnectorClient(address: string, identity: ClientIdentity = {}): ConnectorClient {
  const raw = new ConnectorServiceClient(address, identity.credentials ?? credentials.createInsecure(), channelOptions);
  return withClose(raw, identity);
}

/** Milliseconds as a protobuf Duration. */
export function durationFromMs(milliseconds: number): Duration {
  return { seconds: BigInt(Math.floor(milliseconds / 1000)), nanos: (milliseconds % 1000) * 1_000_000 };
}

/** A protobuf Duration in whole milliseconds (rounded down). */
export function durationToMs(duration: Duration): number {
  return Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1_000_000);
}

/** A domain quote as sent on the wire. */
export function quoteToWire(quote: Quote): WireQuote {
  return {
    sourceLedgerPrefix: quote.sourceLedgerPrefix,
    connectorAccount: quote.connectorAccount,
    sourceAmount: quote.sourceAmount,
    destinationAddress: quote.destinationAddress,
    destinationAmount: quote.destinationAmount,
    sourceHoldDuration: durationFromMs(quote.sourceHoldMs),
    destinationHoldDuration: durationFromMs(quote.destinationHoldMs),
    connectors: quote.connectors,
  };
}

/** A wire quote as a domain quote. */
export function quoteFromWire(quote: WireQuote | undefined): Quote {
  return {
    kind: 'quote',
    sourceLedgerPrefix: quote?.sourceLedgerPrefix ?? '',
    connectorAccount: quote?.connectorAccount ?? '',
    sourceAmount: quote?.sourceAmount ?? 0n,
    destinationAddress: quote?.destinationAddress ?? '',
    destinationAmount: quote?.destinationAmount ?? 0n,
    sourceHoldMs: quote?.sourceHoldDuration ? durationToMs(quote.sourceHoldDuration) : 0,
    destinationHoldMs: quote?.destinationHoldDuration ? durationToMs(quote.destinationHoldDuration) : 0,
    connectors: quote?.connectors ?? [],
  };
}

/** Deadline of a quote asked of the next connector. */
const nextHopTimeoutMs = 5_000;

/**
 * Time kept, out of the deadline of the quote asked of this connector, to answer it: a next hop
 * that does not answer in time is reported as such (T01) to our caller before it gives up on us —
 * else a sender would blame its own connector for a hop further on.
 */
export const nextHopAnswerMarginMs = 500;

/**
 * Asks next connectors over gRPC, one client per endpoint. Their ILP errors (ErrorInfo metadata
 * `ilp_code`) come back as the same failures; no answer is T01.
 */
export function createGrpcNextHopQuoter(identity: ClientIdentity): NextHopQuoter & { close(): void } {
  const clients = new Map<string, QuotingClient>();
  const clientFor = (endpoint: string) => {
    let client = clients.get(endpoint);
    if (!client) clients.set(endpoint, (client = createQuotingClient(endpoint, identity)));
    return client;
  };
  return {
    async quote(endpoint: string, request: QuoteRequest): Promise<Quote | QuoteFailure> {
      const client = clientFor(endpoint);
      // The quote asked of us is part of the payment's trace: so is the one we ask.
      const metadata = new Metadata();
      injectContext(metadata);
      const remainingMs = remainingCallTimeMs();
      const timeoutMs =
        remainingMs === undefined ? nextHopTimeoutMs : Math.min(nextHopTimeoutMs, remainingMs - nextHopAnswerMarginMs);
      if (timeoutMs <= 0) {
        return quoteFailure('T01', `no time left to ask next hop ${endpoint} before the quote's deadline`);
      }
      const options = { timeoutMs, metadata };
      const destinationHoldDuration =
        request.destinationHoldMs === undefined ? undefined : durationFromMs(request.destinationHoldMs);
      try {
        const response =
          request.fixed.side === 'source'
            ? await client.quoteBySourceAmount(
                {
                  sourceLedgerPrefix: request.sourceLedgerPrefix,
                  destinationAddress: request.destinationAddress,
                  sourceAmount: request.fixed.amount,
                  destinationHoldDuration,
                },
                options,
              )
            : await client.quoteByDestinationAmount(
                {
                  sourceLedgerPrefix: request.sourceLedgerPrefix,
                  destinationAddress: request.destinationAddress,
                  destinationAmount: request.fixed.amount,
                  destinationHoldDuration,
                },
                options,
              );
        return quoteFromWire(response.quote);
      } catch (error) {
        const decoded = decodeGrpcError(error as grpc.ServiceError);
        const code = decoded.metadata.ilp_code;
        if (code && isQuoteErrorCode(code)) return quoteFailure(code, `next hop ${endpoint}: ${decoded.message}`);
        if (decoded.code === status.UNAVAILABLE || decoded.code === status.DEADLINE_EXCEEDED) {
          return quoteFailure('T01', `next hop ${endpoint} is unreachable: ${decoded.message}`);
        }
        return quoteFailure('F02', `next hop ${endpoint} refused the quote: ${decoded.message}`);
      }
    },
    close() {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}
