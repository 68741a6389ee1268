import fc from 'fast-check';
import { serializeIlpPayment } from '../ilp';
import { parseConnectorConfig } from './config';
import type { QuoteFailure } from './errors';
import { exampleConnectorConfigs } from './example';
import { decideForward } from './forwarding';
import { createTransitionContext } from './payments';
import { createQuoting, validateQuoteRequest, type Liquidity, type Quote, type QuoteRequest } from './quoting';
import { createRoutingTable } from './routing';
import { createStaticRateSource } from './rates';
import type { ConnectorSettings } from './model';

const endpoints = {
  dfspALedger: '127.0.0.1:7101',
  centralLedger: '127.0.0.1:7100',
  dfspBLedger: '127.0.0.1:7201',
  connectorA: 'connector-a:1',
  connectorB: 'connector-b:1',
};
const configs = exampleConnectorConfigs(endpoints);
const settingsA = parseConnectorConfig(configs.a);
const settingsB = parseConnectorConfig(configs.b);

/** Available balances per connector and ledger; missing: plenty. 'unknown': unreachable. */
let liquidity: Record<string, bigint | 'unknown'> = {};

/** The largest amount per ledger prefix; missing: 2^63 - 1. */
let maxAmounts: Record<string, bigint> = {};

function quotingOf(settings: ConnectorSettings, next: () => ReturnType<typeof createQuoting> | undefined) {
  return createQuoting({
    settings,
    ledgers: new Map(settings.ledgers.map((ledger) => [ledger.prefix, ledger])),
    routing: createRoutingTable(settings.ledgers, settings.routes),
    rates: createStaticRateSource(settings.rates),
    maxHoldMs: () => settings.maxHoldMs,
    maxAmount: (prefix) => maxAmounts[prefix] ?? 2n ** 63n - 1n,
    async liquidity(prefix): Promise<Liquidity> {
      const available = liquidity[`${settings.name} ${prefix}`];
      if (available === 'unknown') return { kind: 'unknown', message: 'connection refused' };
      return { kind: 'ok', available: available ?? 10n ** 15n };
    },
    nextHop: {
      quote: async (_endpoint, request) => {
        const quoting = next();
        if (!quoting) throw new Error('no next hop in this test');
        return quoting.quote(request);
      },
    },
  });
}

// Connector A asks connector B for the tail, in memory.
const quotingB = quotingOf(settingsB, () => undefined);
const quotingA = quotingOf(settingsA, () => quotingB);

beforeEach(() => {
  liquidity = {};
  maxAmounts = {};
});

const bySource = (sourceLedgerPrefix: string, amount: bigint, destinationHoldMs?: number): QuoteRequest => ({
  sourceLedgerPrefix,
  destinationAddress: 'private.dfsp-b.bob',
  fixed: { side: 'source', amount },
  destinationHoldMs,
});
const byDestination = (sourceLedgerPrefix: string, amount: bigint, destinationHoldMs?: number): QuoteRequest => ({
  ...bySource(sourceLedgerPrefix, amount, destinationHoldMs),
  fixed: { side: 'destination', amount },
});

type Summary = [bigint, bigint, number, number, string[]] | string;
const summary = (result: Quote | QuoteFailure): Summary =>
  result.kind === 'failure'
    ? result.code
    : [result.sourceAmount, result.destinationAmount, result.sourceHoldMs, result.destinationHoldMs, result.connectors];

const A = 'private.central.connector-a';
const B = 'private.central.connector-b';

describe('quotes: amounts, holds and path', () => {
  test.each<[string, () => Promise<Quote | QuoteFailure>, Summary]>([
    // One hop (connector B, central EUR/4 → DFSP B EUR/2): 89.82 EUR less 0.2 % is 89.640036.
    [
      'B by source, rounded down',
      () => quotingB.quote(bySource('private.central.', 898200n)),
      [898200n, 8964n, 6000, 5000, [B]],
    ],
    // 89.64 EUR / 0.998 = 89.8196392… EUR: 898197 at scale 4, rounded up.
    [
      'B by destination, rounded up',
      () => quotingB.quote(byDestination('private.central.', 8964n)),
      [898197n, 8964n, 6000, 5000, [B]],
    ],
    [
      'B with a destination hold asked for',
      () => quotingB.quote(bySource('private.central.', 898200n, 3000)),
      [898200n, 8964n, 4000, 3000, [B]],
    ],
    // Two hops: 100.00 USD × 0.9 × 0.998 = 89.82 EUR on the central ledger, then as above.
    [
      'A by source, through B',
      () => quotingA.quote(bySource('private.dfsp-a.', 10000n)),
      [10000n, 8964n, 7000, 5000, [A, B]],
    ],
    // B asks 89.8197 EUR; 89.8197 / (0.9 × 0.998) = 99.99966… USD → 100.00 USD, rounded up.
    [
      'A by destination, through B',
      () => quotingA.quote(byDestination('private.dfsp-a.', 8964n)),
      [10000n, 8964n, 7000, 5000, [A, B]],
    ],
    [
      'A by destination, 1 cent',
      () => quotingA.quote(byDestination('private.dfsp-a.', 1n)),
      [2n, 1n, 7000, 5000, [A, B]],
    ],
    // A's last hop is the central ledger: exactly what the destination gets there.
    [
      'A to an account on the central ledger',
      () => quotingA.quote({ ...bySource('private.dfsp-a.', 10000n), destinationAddress: 'private.central.hub' }),
      [10000n, 898200n, 6000, 5000, [A]],
    ],
  ])('%s', async (_case, quote, expected) => {
    expect(summary(await quote())).toEqual(expected);
  });
});

describe('quote failures', () => {
  test.each<[string, () => Promise<Quote | QuoteFailure>, string]>([
    [
      'F02: no route',
      () => quotingA.quote({ ...bySource('private.dfsp-a.', 100n), destinationAddress: 'private.dfsp-c.carol' }),
      'F02',
    ],
    [
      'F02: the destination is on the source ledger',
      () => quotingA.quote({ ...bySource('private.dfsp-a.', 100n), destinationAddress: 'private.dfsp-a.alice' }),
      'F02',
    ],
    [
      'F02 from the tail: no such account format',
      () => quotingA.quote({ ...bySource('private.dfsp-a.', 100n), destinationAddress: 'private.dfsp-b.bob~x' }),
      'F02',
    ],
    // 1 cent → 0.0089 EUR at A → 0.00 EUR at B: rounds to zero at the tail.
    ['F03: rounds to zero at the next hop', () => quotingA.quote(bySource('private.dfsp-a.', 1n)), 'F03'],
    ['F03: rounds to zero at this hop', () => quotingB.quote(bySource('private.central.', 50n)), 'F03'],
    ['F03: beyond 2^64 - 1 after conversion', () => quotingA.quote(byDestination('private.dfsp-a.', 2n ** 63n)), 'F03'],
    // B needs 9 + 1 s, A another second: 11 s > 10 s.
    ['R02: holds add up beyond the max hold', () => quotingA.quote(bySource('private.dfsp-a.', 10000n, 9000)), 'R02'],
    [
      'R02: a destination hold shorter than a window',
      () => quotingB.quote(bySource('private.central.', 898200n, 500)),
      'R02',
    ],
  ])('%s', async (_case, quote, code) => {
    expect(summary(await quote())).toBe(code);
  });

  test('T04: the last connector cannot pay the destination amount', async () => {
    liquidity = { 'connector-b private.dfsp-b.': 8963n };
    const refused = await quotingA.quote(bySource('private.dfsp-a.', 10000n));
    expect(summary(refused)).toBe('T04');
    // Any authenticated caller may quote: the refusal does not say how much the connector holds.
    expect(refused.kind === 'failure' && refused.message).not.toContain('8963');
    liquidity = { 'connector-b private.dfsp-b.': 8964n };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toEqual([
      10000n,
      8964n,
      7000,
      5000,
      [A, B],
    ]);
  });

  test('T04: this connector cannot pay the next hop', async () => {
    liquidity = { 'connector-a private.central.': 898199n };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toBe('T04');
  });

  test('F03: an amount a ledger on the path cannot carry (its precision), on either side, at either hop', async () => {
    // 100.00 USD → 89.82 EUR on the central ledger (898200 at scale 4) → 89.64 EUR at DFSP B.
    maxAmounts = { 'private.dfsp-b.': 8963n };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toBe('F03');
    expect(summary(await quotingA.quote(byDestination('private.dfsp-a.', 8964n)))).toBe('F03');
    maxAmounts = { 'private.central.': 898199n };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toBe('F03');
    expect(summary(await quotingA.quote(byDestination('private.dfsp-a.', 8964n)))).toBe('F03');
    maxAmounts = { 'private.dfsp-a.': 9999n };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toBe('F03');
    expect(summary(await quotingA.quote(byDestination('private.dfsp-a.', 8964n)))).toBe('F03');
    maxAmounts = { 'private.dfsp-a.': 10000n, 'private.central.': 898200n, 'private.dfsp-b.': 8964n };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toEqual([
      10000n,
      8964n,
      7000,
      5000,
      [A, B],
    ]);
  });

  test('T01: the outgoing ledger cannot be asked', async () => {
    liquidity = { 'connector-a private.central.': 'unknown' };
    expect(summary(await quotingA.quote(bySource('private.dfsp-a.', 10000n)))).toBe('T01');
  });
});

test.each<[QuoteRequest, string[]]>([
  [bySource('private.dfsp-a.', 10n), []],
  [bySource('private.dfsp-c.', 10n), ['source_ledger_prefix']],
  [{ ...bySource('private.dfsp-a.', 0n), destinationAddress: 'bob' }, ['destination_address', 'source_amount']],
  [byDestination('private.dfsp-a.', 0n, 0), ['destination_amount', 'destination_hold_duration']],
])('validation %#', (request, fields) => {
  const ledgers = new Map(settingsA.ledgers.map((ledger) => [ledger.prefix, ledger]));
  expect(validateQuoteRequest(request, ledgers).map((violation) => violation.field)).toEqual(fields);
});

describe('a quote agrees with what forwarding sends (property)', () => {
  const contextA = createTransitionContext(settingsA, { jobLeaseMs: 1000 });
  const contextB = createTransitionContext(settingsB, { jobLeaseMs: 1000 });
  const now = new Date('2030-01-01T00:00:00.000Z');

  /** Pays `quote` through both connectors' forwarding decisions; what arrives at bob. */
  function forward(quote: Quote): { delivered: bigint; destinationHoldMs: number } | string {
    const ilpPacket = serializeIlpPayment({
      account: quote.destinationAddress,
      amount: quote.destinationAmount,
      data: Buffer.alloc(0),
    });
    const first = decideForward(
      { amount: quote.sourceAmount, ilpPacket, expiresAt: new Date(now.getTime() + quote.sourceHoldMs) },
      'private.dfsp-a.',
      contextA,
      now,
    );
    if (first.kind !== 'forward') return first.kind === 'reject' ? first.error.code : first.kind;
    const second = decideForward(
      { amount: first.outgoing.amount, ilpPacket, expiresAt: first.outgoing.expiresAt },
      'private.central.',
      contextB,
      now,
    );
    if (second.kind !== 'forward') return second.kind === 'reject' ? second.error.code : second.kind;
    return {
      delivered: second.outgoing.amount,
      destinationHoldMs: second.outgoing.expiresAt.getTime() - now.getTime(),
    };
  }

  test.each(['source', 'destination'] as const)('by %s amount', async (side) => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.integer({ min: 1000, max: 8000 }),
        async (amount, holdMs) => {
          const request =
            side === 'source'
              ? bySource('private.dfsp-a.', amount, holdMs)
              : byDestination('private.dfsp-a.', amount, holdMs);
          const quote = await quotingA.quote(request);
          if (quote.kind === 'failure') {
            // Only an amount too small to arrive at all (by source) may fail.
            expect(side === 'source' && quote.code === 'F03').toBe(true);
            return;
          }
          if (side === 'destination') expect(quote.destinationAmount).toBe(amount);
          expect(forward(quote)).toEqual({
            delivered: quote.destinationAmount,
            destinationHoldMs: quote.destinationHoldMs,
          });
        },
      ),
    );
  });
});
