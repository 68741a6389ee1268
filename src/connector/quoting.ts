/**
 * Quoting: what a payment costs through this connector and the connectors after it. The local
 * hop uses exactly the arithmetic of forwarding (rates.ts, forwarding.ts), so a quote's amounts
 * are what forwarding sends; the tail of a multi-hop path is quoted by the next connector.
 *
 * Rounding is in the connector's favour: a source amount rounds up, a destination amount down.
 * Holds add up backwards: the source hold is the next hop's source hold (or, at the last hop,
 * the destination hold) plus this connector's message window, refused (R02) above the maximum
 * hold time.
 */
import { InvalidAmountError, isValidIlpAddress, IlpError as IlpLibraryError } from '../ilp';
import type { FieldViolation } from '../platform/errors';
import { quoteFailure, type QuoteFailure } from './errors';
import { quoteSourceHold } from './expiry';
import type { ConnectorSettings, LedgerEndpoint, Route } from './model';
import { hopDestinationAmount, hopSourceAmount, type HopConversion, type RateSource } from './rates';
import { destinationAccount, type RoutingTable } from './routing';

/** A quote request, by source or by destination amount. */
export interface QuoteRequest {
  sourceLedgerPrefix: string;
  destinationAddress: string;
  /** The fixed side and its amount, in minor units of that side's ledger. */
  fixed: { side: 'source' | 'destination'; amount: bigint };
  /** How long the last transfer is held; the connector's default when undefined. */
  destinationHoldMs: number | undefined;
}

/** A quote. */
export interface Quote {
  kind: 'quote';
  sourceLedgerPrefix: string;
  /** This connector's account on the source ledger: the first transfer's credit account. */
  connectorAccount: string;
  sourceAmount: bigint;
  destinationAddress: string;
  destinationAmount: bigint;
  sourceHoldMs: number;
  destinationHoldMs: number;
  /** ILP addresses of the connectors on the path, this one first. */
  connectors: string[];
}

/** Asks the next connector on a route for the rest of the path. */
export interface NextHopQuoter {
  quote(quotingEndpoint: string, request: QuoteRequest): Promise<Quote | QuoteFailure>;
}

/** What the connector can pay out on a ledger now. */
export type Liquidity = { kind: 'ok'; available: bigint | null } | { kind: 'unknown'; message: string };

/** What quoting needs. */
export interface QuotingDependencies {
  settings: Pick<ConnectorSettings, 'ilpAddress' | 'spread' | 'messageWindowMs' | 'destinationHoldMs'>;
  ledgers: ReadonlyMap<string, LedgerEndpoint>;
  routing: RoutingTable;
  rates: RateSource;
  /** The longest hold on a ledger: the connector's maximum, capped by the ledger's. */
  maxHoldMs(ledgerPrefix: string): number;
  /** The largest amount a ledger takes (its precision, at most 2^63 - 1). */
  maxAmount(ledgerPrefix: string): bigint;
  /** The connector's available balance on a ledger (null: no lower limit). */
  liquidity(ledgerPrefix: string): Promise<Liquidity>;
  nextHop: NextHopQuoter;
}

/** Checks a request's fields; an empty list means valid. */
export function validateQuoteRequest(
  request: QuoteRequest,
  ledgers: ReadonlyMap<string, LedgerEndpoint>,
): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (!ledgers.has(request.sourceLedgerPrefix)) {
    violations.push({
      field: 'source_ledger_prefix',
      description: `must be one of this connector's ledgers: ${[...ledgers.keys()].join(', ')}`,
    });
  }
  if (!isValidIlpAddress(request.destinationAddress)) {
    violations.push({ field: 'destination_address', description: 'must be an ILP address like private.dfsp-b.bob' });
  }
  const field = request.fixed.side === 'source' ? 'source_amount' : 'destination_amount';
  if (request.fixed.amount <= 0n) violations.push({ field, description: 'must be greater than zero' });
  if (request.destinationHoldMs !== undefined && request.destinationHoldMs <= 0) {
    violations.push({ field: 'destination_hold_duration', description: 'must be longer than zero when set' });
  }
  return violations;
}

/** The quoting service's domain: one function, composing this hop with the tail. */
export function createQuoting(dependencies: QuotingDependencies) {
  const { settings, ledgers, routing, rates } = dependencies;

  function hopBetween(source: LedgerEndpoint, destination: LedgerEndpoint): HopConversion | QuoteFailure {
    const rate = rates.rate(source.currency, destination.currency);
    if (!rate) return quoteFailure('F02', `no exchange rate from ${source.currency} to ${destination.currency}`);
    return { rate, spread: settings.spread, sourceScale: source.scale, destinationScale: destination.scale };
  }

  async function checkLiquidity(ledgerPrefix: string, amount: bigint): Promise<QuoteFailure | undefined> {
    const liquidity = await dependencies.liquidity(ledgerPrefix);
    if (liquidity.kind === 'unknown')
      return quoteFailure('T01', `ledger ${ledgerPrefix} is unreachable: ${liquidity.message}`);
    if (liquidity.available !== null && liquidity.available < amount) {
      return quoteFailure(
        'T04',
        // Not how much it could pay: a connector's balances are its operator's (GetStatus).
        `the connector cannot pay ${amount} on ${ledgerPrefix} now`,
      );
    }
    return undefined;
  }

  function sourceHold(nextHoldMs: number, sourceLedgerPrefix: string): number | QuoteFailure {
    const maxHoldMs = dependencies.maxHoldMs(sourceLedgerPrefix);
    const hold = quoteSourceHold(nextHoldMs, { messageWindowMs: settings.messageWindowMs, maxHoldMs });
    if (hold.kind === 'too-long') {
      return quoteFailure(
        'R02',
        `the payment needs a hold of ${hold.holdMs} ms on ${sourceLedgerPrefix}, more than the ${maxHoldMs} ms allowed`,
      );
    }
    return hold.holdMs;
  }

  /** An amount no transfer on the ledger could carry: the quote would fail at its prepare. */
  function tooLarge(ledgerPrefix: string, amount: bigint): QuoteFailure | undefined {
    const maxAmount = dependencies.maxAmount(ledgerPrefix);
    if (amount <= maxAmount) return undefined;
    return quoteFailure('F03', `${amount} is more than ${ledgerPrefix} takes (at most ${maxAmount} minor units)`);
  }

  /** Quotes the last hop: this connector credits the destination account itself. */
  async function quoteLastHop(
    request: QuoteRequest,
    source: LedgerEndpoint,
    destination: LedgerEndpoint,
    hop: HopConversion,
  ): Promise<Quote | QuoteFailure> {
    const account = destinationAccount(request.destinationAddress, destination.prefix);
    if (account === undefined || account === destination.account) {
      return quoteFailure('F02', `${request.destinationAddress} does not name an account on ${destination.prefix}`);
    }
    const destinationHoldMs = request.destinationHoldMs ?? settings.destinationHoldMs;
    if (destinationHoldMs < settings.messageWindowMs) {
      return quoteFailure(
        'R02',
        `a destination hold of ${destinationHoldMs} ms is shorter than the message window of ${settings.messageWindowMs} ms`,
      );
    }
    const destinationMaxHoldMs = dependencies.maxHoldMs(destination.prefix);
    if (destinationHoldMs > destinationMaxHoldMs) {
      return quoteFailure(
        'R02',
        `a destination hold of ${destinationHoldMs} ms exceeds the ${destinationMaxHoldMs} ms allowed`,
      );
    }
    let sourceAmount: bigint;
    let destinationAmount: bigint;
    if (request.fixed.side === 'source') {
      sourceAmount = request.fixed.amount;
      destinationAmount = hopDestinationAmount(sourceAmount, hop);
      if (destinationAmount === 0n) {
        return quoteFailure('F03', `${sourceAmount} on ${source.prefix} buys nothing on ${destination.prefix}`);
      }
    } else {
      destinationAmount = request.fixed.amount;
      sourceAmount = hopSourceAmount(destinationAmount, hop);
    }
    const limit = tooLarge(source.prefix, sourceAmount) ?? tooLarge(destination.prefix, destinationAmount);
    if (limit) return limit;
    const liquidity = await checkLiquidity(destination.prefix, destinationAmount);
    if (liquidity) return liquidity;
    const sourceHoldMs = sourceHold(destinationHoldMs, source.prefix);
    if (typeof sourceHoldMs !== 'number') return sourceHoldMs;
    return {
      kind: 'quote',
      sourceLedgerPrefix: source.prefix,
      connectorAccount: source.account,
      sourceAmount,
      destinationAddress: request.destinationAddress,
      destinationAmount,
      sourceHoldMs,
      destinationHoldMs,
      connectors: [settings.ilpAddress],
    };
  }

  /** Quotes this hop and asks the next connector for the rest. */
  async function quoteThroughNextHop(
    request: QuoteRequest,
    route: Extract<Route, { local: false }>,
    source: LedgerEndpoint,
    destination: LedgerEndpoint,
    hop: HopConversion,
  ): Promise<Quote | QuoteFailure> {
    let sourceAmount: bigint;
    let forwardedAmount: bigint;
    let tail: Quote | QuoteFailure;
    if (request.fixed.side === 'source') {
      sourceAmount = request.fixed.amount;
      forwardedAmount = hopDestinationAmount(sourceAmount, hop);
      if (forwardedAmount === 0n) {
        return quoteFailure('F03', `${sourceAmount} on ${source.prefix} buys nothing on ${destination.prefix}`);
      }
      const limit = tooLarge(source.prefix, sourceAmount) ?? tooLarge(destination.prefix, forwardedAmount);
      if (limit) return limit;
      tail = await dependencies.nextHop.quote(route.nextHop.quotingEndpoint, {
        ...request,
        sourceLedgerPrefix: destination.prefix,
        fixed: { side: 'source', amount: forwardedAmount },
      });
      if (tail.kind === 'failure') return tail;
    } else {
      tail = await dependencies.nextHop.quote(route.nextHop.quotingEndpoint, {
        ...request,
        sourceLedgerPrefix: destination.prefix,
      });
      if (tail.kind === 'failure') return tail;
      sourceAmount = hopSourceAmount(tail.sourceAmount, hop);
      // Forwarding sends what the source amount buys: at least what the tail asks for.
      forwardedAmount = hopDestinationAmount(sourceAmount, hop);
      const limit = tooLarge(source.prefix, sourceAmount) ?? tooLarge(destination.prefix, forwardedAmount);
      if (limit) return limit;
    }
    const liquidity = await checkLiquidity(destination.prefix, forwardedAmount);
    if (liquidity) return liquidity;
    const sourceHoldMs = sourceHold(tail.sourceHoldMs, source.prefix);
    if (typeof sourceHoldMs !== 'number') return sourceHoldMs;
    return {
      kind: 'quote',
      sourceLedgerPrefix: source.prefix,
      connectorAccount: source.account,
      sourceAmount,
      destinationAddress: request.destinationAddress,
      destinationAmount: tail.destinationAmount,
      sourceHoldMs,
      destinationHoldMs: tail.destinationHoldMs,
      connectors: [settings.ilpAddress, ...tail.connectors],
    };
  }

  return {
    /** Quotes `request` (validated with {@link validateQuoteRequest} beforehand). */
    async quote(request: QuoteRequest): Promise<Quote | QuoteFailure> {
      const source = ledgers.get(request.sourceLedgerPrefix);
      if (!source) return quoteFailure('F02', `${request.sourceLedgerPrefix} is not a ledger of this connector`);
      const route = routing.find(request.destinationAddress);
      if (!route) return quoteFailure('F02', `no route to ${request.destinationAddress}`);
      if (route.ledgerPrefix === source.prefix) {
        return quoteFailure(
          'F02',
          `${request.destinationAddress} is on the source ledger ${source.prefix}: pay it directly`,
        );
      }
      const destination = ledgers.get(route.ledgerPrefix) as LedgerEndpoint;
      const hop = hopBetween(source, destination);
      if ('kind' in hop) return hop;
      try {
        return route.local
          ? await quoteLastHop(request, source, destination, hop)
          : await quoteThroughNextHop(request, route, source, destination, hop);
      } catch (error) {
        // An amount beyond 2^64 - 1 minor units after conversion.
        if (error instanceof InvalidAmountError || error instanceof IlpLibraryError)
          return quoteFailure('F03', error.message);
        throw error;
      }
    },
  };
}

export type Quoting = ReturnType<typeof createQuoting>;
