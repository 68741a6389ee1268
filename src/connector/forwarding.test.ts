import { serializeIlpPayment } from '../ilp';
import { parseConnectorConfig } from './config';
import { exampleConnectorConfigs } from './example';
import { decideForward, type ForwardDecision } from './forwarding';
import { createTransitionContext } from './payments';

const endpoints = {
  dfspALedger: '127.0.0.1:7101',
  centralLedger: '127.0.0.1:7100',
  dfspBLedger: '127.0.0.1:7201',
  connectorA: '127.0.0.1:7103',
  connectorB: '127.0.0.1:7203',
};
const configs = exampleConnectorConfigs(endpoints);
// Connector A: DFSP A (USD, scale 2) ↔ central (EUR, scale 4), 0.9 EUR per USD, spread 0.2 %.
const connectorA = createTransitionContext(parseConnectorConfig(configs.a), { jobLeaseMs: 1000 });
// Connector B: central (EUR, scale 4) ↔ DFSP B (EUR, scale 2), spread 0.2 %.
const connectorB = createTransitionContext(parseConnectorConfig(configs.b), { jobLeaseMs: 1000 });

const now = new Date('2030-01-01T00:00:00.000Z');
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const packet = (account: string, amount: bigint) => serializeIlpPayment({ account, amount, data: Buffer.from('memo') });

type Expected =
  { forward: { ledger: string; credit: string; amount: bigint; expiresInMs: number } } | { reject: string } | 'expired';

function summary(decision: ForwardDecision): Expected {
  if (decision.kind === 'expired') return 'expired';
  if (decision.kind === 'reject') return { reject: decision.error.code };
  return {
    forward: {
      ledger: decision.outgoing.ledgerPrefix,
      credit: decision.outgoing.creditAccount,
      amount: decision.outgoing.amount,
      expiresInMs: decision.outgoing.expiresAt.getTime() - now.getTime(),
    },
  };
}

describe('connector A forwards from DFSP A (USD/2) to the central ledger (EUR/4)', () => {
  test.each<[string, bigint, Buffer, number, Expected]>([
    // case, incoming amount, packet, incoming expiry (ms from now), decision
    [
      'to DFSP B through connector B: 100.00 USD × 0.9 × 0.998',
      10000n,
      packet('private.dfsp-b.bob', 8900n),
      10_000,
      { forward: { ledger: 'private.central.', credit: 'connector-b', amount: 898200n, expiresInMs: 9000 } },
    ],
    [
      'a cent is still 0.0089 EUR',
      1n,
      packet('private.dfsp-b.bob', 1n),
      10_000,
      { forward: { ledger: 'private.central.', credit: 'connector-b', amount: 89n, expiresInMs: 9000 } },
    ],
    [
      'the last hop pays exactly the packet amount',
      10000n,
      packet('private.central.connector-b', 500000n),
      10_000,
      { forward: { ledger: 'private.central.', credit: 'connector-b', amount: 500000n, expiresInMs: 9000 } },
    ],
    [
      'the last hop accepts a packet amount the incoming amount just covers',
      10000n,
      packet('private.central.connector-b', 898200n),
      10_000,
      { forward: { ledger: 'private.central.', credit: 'connector-b', amount: 898200n, expiresInMs: 9000 } },
    ],
    [
      'R01 when it does not cover it',
      10000n,
      packet('private.central.connector-b', 898201n),
      10_000,
      { reject: 'R01' },
    ],
    [
      'F03 for a zero packet amount at the last hop',
      10000n,
      packet('private.central.connector-b', 0n),
      10_000,
      { reject: 'F03' },
    ],
    ['F01 for a packet that does not parse', 10000n, Buffer.from([1, 2, 3]), 10_000, { reject: 'F01' }],
    ['F02 without a route', 10000n, packet('private.dfsp-c.carol', 1n), 10_000, { reject: 'F02' }],
    ['F02 back to the source ledger', 10000n, packet('private.dfsp-a.alice', 1n), 10_000, { reject: 'F02' }],
    ['F02 to the connector itself', 10000n, packet('private.central.connector-a', 1n), 10_000, { reject: 'F02' }],
    [
      'capped by the max hold time',
      10000n,
      packet('private.dfsp-b.bob', 1n),
      60_000,
      { forward: { ledger: 'private.central.', credit: 'connector-b', amount: 898200n, expiresInMs: 10_000 } },
    ],
    ['R02 with less than two windows left', 10000n, packet('private.dfsp-b.bob', 1n), 1999, { reject: 'R02' }],
    ['nothing when the incoming transfer has expired', 10000n, packet('private.dfsp-b.bob', 1n), 0, 'expired'],
    // An expired incoming transfer is left to expire, even with a bad packet.
    ['nothing for an expired transfer with a bad packet', 10000n, Buffer.from([1]), -1, 'expired'],
  ])('%s', (_case, amount, ilpPacket, expiresInMs, expected) => {
    const decision = decideForward(
      { amount, ilpPacket, expiresAt: at(expiresInMs) },
      'private.dfsp-a.',
      connectorA,
      now,
    );
    expect(summary(decision)).toEqual(expected);
  });
});

describe('connector B forwards from the central ledger (EUR/4) to DFSP B (EUR/2)', () => {
  test.each<[string, bigint, Buffer, Expected]>([
    [
      'the last hop credits the first segment after the prefix',
      898200n,
      packet('private.dfsp-b.bob.invoice-42', 8964n),
      { forward: { ledger: 'private.dfsp-b.', credit: 'bob', amount: 8964n, expiresInMs: 4000 } },
    ],
    ['89.82 EUR less 0.2 % does not cover 89.65', 898200n, packet('private.dfsp-b.bob', 8965n), { reject: 'R01' }],
    ['0.0050 EUR buys no cent', 50n, packet('private.dfsp-b.bob', 1n), { reject: 'R01' }],
    ['F02 for an address that names no account', 898200n, packet('private.dfsp-b.bob~1', 1n), { reject: 'F02' }],
  ])('%s', (_case, amount, ilpPacket, expected) => {
    const decision = decideForward({ amount, ilpPacket, expiresAt: at(5000) }, 'private.central.', connectorB, now);
    expect(summary(decision)).toEqual(expected);
  });
});

test("a rejection is the connector's own ILP error: code, name, message, triggered by its address", () => {
  const decision = decideForward(
    { amount: 100n, ilpPacket: packet('private.dfsp-c.carol', 1n), expiresAt: at(5000) },
    'private.dfsp-a.',
    connectorA,
    now,
  );
  expect(decision).toEqual({
    kind: 'reject',
    error: {
      code: 'F02',
      name: 'Unreachable',
      message: 'no route to private.dfsp-c.carol',
      triggeredBy: 'private.central.connector-a',
      forwardedBy: [],
      triggeredAt: now,
      data: Buffer.alloc(0),
    },
  });
});

test("the outgoing ledger's own max hold caps the expiry", () => {
  const capped = { ...connectorA, maxHoldMs: () => 3000 };
  const decision = decideForward(
    { amount: 100n, ilpPacket: packet('private.dfsp-b.bob', 1n), expiresAt: at(10_000) },
    'private.dfsp-a.',
    capped,
    now,
  );
  expect(summary(decision)).toEqual({
    forward: { ledger: 'private.central.', credit: 'connector-b', amount: 8982n, expiresInMs: 3000 },
  });
});

test('an outgoing amount the outgoing ledger cannot carry is refused F03 before anything is stored or sent', () => {
  // What a poisoned notification was: the last hop's packet amount above 2^63 - 1 (a bigint
  // column) held the connector's whole stream of that ledger until the transfer expired.
  const oversize = decideForward(
    { amount: 2n * 10n ** 17n, ilpPacket: packet('private.central.hub', 10n ** 19n), expiresAt: at(10_000) },
    'private.dfsp-a.',
    connectorA,
    now,
  );
  expect(summary(oversize)).toEqual({ reject: 'F03' });
  // The ledger's own precision caps it further (here 10^6 - 1 minor units).
  const capped = { ...connectorA, maxAmount: () => 999_999n };
  const decide = (amount: bigint) =>
    summary(
      decideForward(
        { amount, ilpPacket: packet('private.dfsp-b.bob', 1n), expiresAt: at(10_000) },
        'private.dfsp-a.',
        capped,
        now,
      ),
    );
  expect(decide(11_133n)).toEqual({
    forward: { ledger: 'private.central.', credit: 'connector-b', amount: 999_966n, expiresInMs: 9000 },
  });
  expect(decide(11_134n)).toEqual({ reject: 'F03' });
});
