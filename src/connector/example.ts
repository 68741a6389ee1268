/**
 * The configuration files of the two connectors of the standard network (SPEC.md §2): DFSP A's
 * ledger, the central ledger and DFSP B's ledger, connector A between the first two and
 * connector B between the last two. Used by the documentation, tools and tests as a starting
 * point; every value can be overridden.
 */

/** Where the services of the standard network listen. */
export interface ExampleEndpoints {
  dfspALedger: string;
  centralLedger: string;
  dfspBLedger: string;
  connectorA: string;
  connectorB: string;
}

/** The ledgers of the standard network: prefixes, currencies and scales. */
export const exampleLedgers = {
  dfspA: { prefix: 'private.dfsp-a.', currency: 'USD', scale: 2 },
  central: { prefix: 'private.central.', currency: 'EUR', scale: 4 },
  dfspB: { prefix: 'private.dfsp-b.', currency: 'EUR', scale: 2 },
} as const;

/** Connector A (USD on DFSP A ↔ EUR on the central ledger) and connector B (central ↔ DFSP B). */
export function exampleConnectorConfigs(endpoints: ExampleEndpoints): {
  a: Record<string, unknown>;
  b: Record<string, unknown>;
} {
  const { dfspA, central, dfspB } = exampleLedgers;
  return {
    a: {
      name: 'connector-a',
      listen: endpoints.connectorA,
      principal: 'connector-a',
      ilpAddress: `${central.prefix}connector-a`,
      ledgers: [
        {
          prefix: dfspA.prefix,
          address: endpoints.dfspALedger,
          account: 'connector-a',
          currency: dfspA.currency,
          scale: dfspA.scale,
        },
        {
          prefix: central.prefix,
          address: endpoints.centralLedger,
          account: 'connector-a',
          currency: central.currency,
          scale: central.scale,
        },
      ],
      routes: [
        {
          targetPrefix: dfspB.prefix,
          ledger: central.prefix,
          nextHop: { account: 'connector-b', quoting: endpoints.connectorB },
        },
      ],
      rates: [{ source: 'USD', destination: 'EUR', rate: '0.9' }],
      spread: '0.002',
      messageWindow: '1s',
      maxHoldTime: '10s',
    },
    b: {
      name: 'connector-b',
      listen: endpoints.connectorB,
      principal: 'connector-b',
      ilpAddress: `${central.prefix}connector-b`,
      ledgers: [
        {
          prefix: central.prefix,
          address: endpoints.centralLedger,
          account: 'connector-b',
          currency: central.currency,
          scale: central.scale,
        },
        {
          prefix: dfspB.prefix,
          address: endpoints.dfspBLedger,
          account: 'connector-b',
          currency: dfspB.currency,
          scale: dfspB.scale,
        },
      ],
      routes: [
        {
          targetPrefix: dfspA.prefix,
          ledger: central.prefix,
          nextHop: { account: 'connector-a', quoting: endpoints.connectorA },
        },
      ],
      rates: [],
      spread: '0.002',
      messageWindow: '1s',
      maxHoldTime: '10s',
    },
  };
}
