/**
 * The gRPC face of the connector: ConnectorService and QuotingService map protobuf messages to
 * the domain and back, and nothing else. Quote failures become a status once, here, through
 * errors.ts's table (ErrorInfo reason, metadata ilp_code).
 */
import type { ConnectorServiceServer } from '../gen/interclear/connector/v1/connector';
import type { QuotingServiceServer } from '../gen/interclear/quoting/v1/quoting';
import { invalidArgument } from '../platform/errors';
import { unary } from '../platform/handlers';
import type { Logger } from '../platform/logger';
import { durationFromMs, durationToMs, quoteToWire } from './client';
import { connectorErrorDomain, quoteServiceError, quotingErrorDomain } from './errors';
import { validateQuoteRequest, type QuoteRequest } from './quoting';
import { formatRational } from './rates';
import type { Connector } from './service';

/** The ConnectorService implementation for grpc-js. */
export function createConnectorGrpcHandlers(connector: Connector, logger: Logger): ConnectorServiceServer {
  const handle = <Request, Response>(method: string, handler: (request: Request) => Promise<Response> | Response) =>
    unary<Request, Response>(connectorErrorDomain, logger, method, handler);
  return {
    getStatus: handle('GetStatus', async () => {
      const status = await connector.status();
      return {
        name: status.name,
        ilpAddress: status.ilpAddress,
        ledgers: status.ledgers.map((entry) => ({
          ledgerPrefix: entry.ledger.prefix,
          account: entry.ledger.account,
          endpoint: entry.ledger.endpoint,
          currencyCode: entry.ledger.currency,
          scale: entry.ledger.scale,
          streamConnected: entry.streamConnected,
          lastSequence: entry.lastSequence,
          balanceKnown: entry.account !== undefined,
          balance: entry.account?.balance ?? 0n,
          heldAmount: entry.account?.heldAmount ?? 0n,
          inFlightOutgoingAmount: entry.inFlightOutgoingAmount,
          inFlightIncomingAmount: entry.inFlightIncomingAmount,
          streamError: entry.streamConnected ? '' : (entry.streamError ?? ''),
        })),
        payments: status.payments,
        passBack: status.passBack,
        statusTime: status.time,
      };
    }),

    listRoutes: handle('ListRoutes', () => ({
      routes: connector.routes().map((route) => ({
        targetPrefix: route.targetPrefix,
        ledgerPrefix: route.ledgerPrefix,
        local: route.local,
        nextHopAccount: route.local ? '' : route.nextHop.account,
        nextHopQuotingEndpoint: route.local ? '' : route.nextHop.quotingEndpoint,
      })),
    })),

    listRates: handle('ListRates', () => ({
      rates: connector.rates().map((entry) => ({
        sourceCurrency: entry.source,
        destinationCurrency: entry.destination,
        rate: formatRational(entry.rate),
        rateNumerator: entry.rate.numerator.toString(),
        rateDenominator: entry.rate.denominator.toString(),
        derived: entry.derived,
      })),
      spread: formatRational(connector.settings.spread),
      messageWindow: durationFromMs(connector.settings.messageWindowMs),
      maxHoldDuration: durationFromMs(connector.settings.maxHoldMs),
    })),
  };
}

async function quote(connector: Connector, request: QuoteRequest) {
  const violations = validateQuoteRequest(request, connector.ledgers);
  if (violations.length > 0) throw invalidArgument(violations);
  const result = await connector.quote(request);
  if (result.kind === 'failure') throw quoteServiceError(result);
  return { quote: quoteToWire(result) };
}

/** The QuotingService implementation for grpc-js. */
export function createQuotingGrpcHandlers(connector: Connector, logger: Logger): QuotingServiceServer {
  const handle = <Request, Response>(method: string, handler: (request: Request) => Promise<Response> | Response) =>
    unary<Request, Response>(quotingErrorDomain, logger, method, handler);
  return {
    quoteBySourceAmount: handle('QuoteBySourceAmount', (request) =>
      quote(connector, {
        sourceLedgerPrefix: request.sourceLedgerPrefix,
        destinationAddress: request.destinationAddress,
        fixed: { side: 'source', amount: request.sourceAmount },
        destinationHoldMs: request.destinationHoldDuration ? durationToMs(request.destinationHoldDuration) : undefined,
      }),
    ),
    quoteByDestinationAmount: handle('QuoteByDestinationAmount', (request) =>
      quote(connector, {
        sourceLedgerPrefix: request.sourceLedgerPrefix,
        destinationAddress: request.destinationAddress,
        fixed: { side: 'destination', amount: request.destinationAmount },
        destinationHoldMs: request.destinationHoldDuration ? durationToMs(request.destinationHoldDuration) : undefined,
      }),
    ),
  };
}
