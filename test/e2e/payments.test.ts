/**
 * End to end across real processes (SPEC.md §2): alice at DFSP A (USD) pays bob at DFSP B (XOF)
 * through DFSP A's ledger, connector A, the central ledger (EUR), connector B and DFSP B's
 * ledger — the network `interclear network` runs, started by the same code. After every test,
 * every ledger still holds exactly the money deposited into it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import * as ilpPacket from 'ilp-packet';
import { durationFromMs } from '../../src/connector/client';
import { RejectionReason, TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { FixedAmount, PaymentState, type PayRequest } from '../../src/gen/interclear/spsp/v1/spsp';
import { createLedgerClient } from '../../src/ledger/client';
import { interclearBinary } from '../../src/network/launcher';
import { waitUntil } from '../support/processes';
import { failure } from '../spsp/support';
import { followLedger, pskFulfillment, sourceHoldMs, startE2eNetwork, type E2eNetwork } from './support';

// five-bells-condition ships no type declarations; these are the parts the test calls.
interface FiveBellsFulfillment {
  setPreimage(preimage: Buffer): void;
  getCondition(): { getHash(): Buffer };
  getConditionUri(): string;
  serializeUri(): string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fiveBells = require('five-bells-condition') as {
  PreimageSha256: new () => FiveBellsFulfillment;
  fromFulfillmentBinary(binary: Buffer): FiveBellsFulfillment;
  validateFulfillment(fulfillmentUri: string, conditionUri: string): boolean;
};

jest.setTimeout(60_000);

let net: E2eNetwork;

beforeAll(async () => {
  net = await startE2eNetwork();
}, 120_000);

afterAll(async () => {
  await net?.stop();
});

afterEach(async () => {
  // Without a network (its start failed, and said why) there is nothing to check.
  if (net) await net.checkConservation();
});

function pay(overrides: Partial<PayRequest> = {}) {
  return net.payments['dfsp-a'].pay({
    paymentId: randomUUID(),
    senderAccount: 'alice',
    receiver: 'bob@dfsp-b',
    amount: { $case: 'destinationAmount', value: 10_000n },
    data: Buffer.alloc(0),
    ...overrides,
  });
}

function delta(before: Record<string, bigint>, after: Record<string, bigint>): Record<string, bigint> {
  return Object.fromEntries(Object.keys(before).map((key) => [key, after[key] - before[key]]));
}

/**
 * Restarts connector B and waits until a quote through connector A reaches it again: connector
 * A's channel to B may still be backing off from the refused connections of the outage.
 */
async function restartConnectorB(): Promise<void> {
  await net.network.restartService('dfsp-b-connector');
  await waitUntil('connector A to reach connector B again', async () => {
    await net.quoting['dfsp-a'].quoteByDestinationAmount({
      sourceLedgerPrefix: net.ledger('dfsp-a').prefix,
      destinationAddress: 'private.dfsp-b.bob',
      destinationAmount: 100n,
    });
    return true;
  });
}

/**
 * Sets up a payment to bob with DFSP B and quotes it through connector A, as DFSP A's payment
 * service would, so that a test can send the first transfer itself.
 */
async function setUpAndQuote(destinationAmount: bigint, expiryMs?: number) {
  const { paymentRequest } = await net.spsp['dfsp-b'].setupPayment({
    receiver: 'bob@dfsp-b',
    destinationAmount,
    data: Buffer.from('e2e'),
    expiryDuration: expiryMs === undefined ? undefined : durationFromMs(expiryMs),
  });
  const { quote } = await net.quoting['dfsp-a'].quoteByDestinationAmount({
    sourceLedgerPrefix: net.ledger('dfsp-a').prefix,
    destinationAddress: 'private.dfsp-b.bob',
    destinationAmount,
    destinationHoldDuration: durationFromMs(2_000),
  });
  return { request: paymentRequest!, quote: quote! };
}

/** Prepares the first transfer from alice on DFSP A's ledger, as DFSP A's SPSP principal. */
async function prepareFromAlice(input: {
  quote: Awaited<ReturnType<typeof setUpAndQuote>>['quote'];
  packet: Buffer;
  condition: Buffer;
}): Promise<string> {
  const client = createLedgerClient(net.ledger('dfsp-a').address, await net.network.identityFor('spsp-a'));
  const transferId = randomUUID();
  try {
    await client.prepareTransfer({
      transferId,
      debitAccount: 'alice',
      creditAccount: input.quote.connectorAccount,
      amount: input.quote.sourceAmount,
      executionCondition: input.condition,
      expiryTime: new Date(Date.now() + sourceHoldMs(input.quote)),
      ilpPacket: input.packet,
      memo: Buffer.alloc(0),
      traceParent: '',
    });
  } finally {
    client.close();
  }
  return transferId;
}

test('alice pays bob a fixed destination amount: three transfers execute, the quoted amounts move, the fulfillment proves it', async () => {
  const { quote } = await net.payments['dfsp-a'].quote({
    receiver: 'bob@dfsp-b',
    amount: { $case: 'destinationAmount', value: 10_000n },
  });
  const before = await net.balances();
  const { payment } = await pay();
  expect(payment).toMatchObject({
    state: PaymentState.PAYMENT_STATE_EXECUTED,
    fixedAmount: FixedAmount.FIXED_AMOUNT_DESTINATION,
    sourceAmount: quote!.sourceAmount,
    sourceCurrencyCode: 'USD',
    destinationAmount: 10_000n,
    destinationCurrencyCode: 'XOF',
    destinationScale: 0,
    connectorAccount: 'connector-a',
    connectors: ['private.central.connector-a', 'private.central.connector-b'],
  });
  expect(createHash('sha256').update(payment!.fulfillment).digest()).toEqual(payment!.executionCondition);
  const moved = delta(before, await net.balances());
  const source = quote!.sourceAmount;
  expect(moved['dfsp-a/alice']).toBe(-source);
  expect(moved['dfsp-a/connector-a']).toBe(source);
  expect(moved['dfsp-b/connector-b']).toBe(-10_000n);
  expect(moved['dfsp-b/bob']).toBe(10_000n);
  // On the central ledger connector A pays connector B the euros in between: 10,000 XOF is
  // 15.24 EUR at the parity, and it costs connector A no more than it was paid in dollars.
  const euros = moved['central/connector-b'];
  expect(moved['central/connector-a']).toBe(-euros);
  expect(euros).toBeGreaterThanOrEqual(1525n);
  expect(euros * 100n).toBeLessThanOrEqual(source * 92n);
  // One payment, one trace: the three transfers carry the trace the Pay call started.
  const traceIds = new Set<string>();
  for (const ledger of ['dfsp-a', 'central', 'dfsp-b']) {
    const { transfers } = await net.admin[ledger].listTransfers({
      account: '',
      state: TransferState.TRANSFER_STATE_UNSPECIFIED,
      pageSize: 10,
      pageToken: '',
      executionCondition: payment!.executionCondition,
    });
    expect(transfers).toHaveLength(1);
    traceIds.add(transfers[0].traceParent.split('-')[1]);
  }
  expect(traceIds.size).toBe(1);
  expect([...traceIds][0]).toMatch(/^[0-9a-f]{32}$/);
  await net.checkConservation({ settled: true });
});

test('alice pays a fixed source amount: exactly that leaves her account, the quoted amount reaches bob', async () => {
  const { quote } = await net.payments['dfsp-a'].quote({
    receiver: 'bob@dfsp-b',
    amount: { $case: 'sourceAmount', value: 2_000n },
  });
  const before = await net.balances();
  const { payment } = await pay({ amount: { $case: 'sourceAmount', value: 2_000n } });
  expect(payment).toMatchObject({
    state: PaymentState.PAYMENT_STATE_EXECUTED,
    fixedAmount: FixedAmount.FIXED_AMOUNT_SOURCE,
    sourceAmount: 2_000n,
    destinationAmount: quote!.destinationAmount,
  });
  // 20.00 USD is about 18.40 EUR, about 12,070 XOF before the connectors' spreads.
  expect(quote!.destinationAmount).toBeGreaterThan(11_900n);
  expect(quote!.destinationAmount).toBeLessThan(12_100n);
  const moved = delta(before, await net.balances());
  expect(moved['dfsp-a/alice']).toBe(-2_000n);
  expect(moved['dfsp-b/bob']).toBe(quote!.destinationAmount);
  await net.checkConservation({ settled: true });
});

test('bob pays alice back, the other way through the same connectors', async () => {
  const before = await net.balances();
  const { payment } = await net.payments['dfsp-b'].pay({
    paymentId: randomUUID(),
    senderAccount: 'bob',
    receiver: 'alice@dfsp-a',
    amount: { $case: 'destinationAmount', value: 500n },
    data: Buffer.from('refund'),
  });
  expect(payment!.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);
  const moved = delta(before, await net.balances());
  expect(moved['dfsp-a/alice']).toBe(500n);
  expect(moved['dfsp-b/bob']).toBe(-payment!.sourceAmount);
});

test('insufficient funds at the sender: nothing is prepared anywhere', async () => {
  const before = await net.balances();
  const error = await failure(pay({ amount: { $case: 'sourceAmount', value: before['dfsp-a/alice'] + 1n } }));
  expect(error).toMatchObject({
    code: status.FAILED_PRECONDITION,
    reason: 'INSUFFICIENT_FUNDS',
    domain: 'interclear.spsp.v1.PaymentService',
  });
  expect(await net.balances()).toEqual(before);
  await net.checkConservation({ settled: true });
});

test.each([
  ['an unknown receiver', 'nobody@dfsp-b', status.NOT_FOUND, 'RECEIVER_NOT_FOUND'],
  ['a DFSP nobody knows', 'bob@dfsp-z', status.NOT_FOUND, 'UNKNOWN_DFSP'],
])('paying %s fails with NOT_FOUND before any money moves', async (_case, receiver, code, reason) => {
  const before = await net.balances();
  expect(await failure(pay({ receiver }))).toMatchObject({ code, reason });
  expect(await net.balances()).toEqual(before);
});

test('the receiver rejects a transfer whose condition is not its packet’s: F05 travels back through both connectors', async () => {
  const { request, quote } = await setUpAndQuote(1_000n);
  const follower = await followLedger(net.admin['dfsp-a']);
  try {
    const before = await net.balances();
    const transferId = await prepareFromAlice({
      quote,
      packet: request.ilpPacket,
      condition: createHash('sha256').update('not the fulfillment').digest(),
    });
    const transfer = await follower.final(transferId);
    expect(transfer).toMatchObject({
      state: TransferState.TRANSFER_STATE_REJECTED,
      rejectionReason: RejectionReason.REJECTION_REASON_CANCELLED,
      ilpError: {
        code: 'F05',
        name: 'Wrong Condition',
        triggeredBy: 'private.dfsp-b.bob',
        forwardedBy: ['private.central.connector-b', 'private.central.connector-a'],
      },
    });
    expect(await net.balances()).toEqual(before);
  } finally {
    follower.close();
  }
  await net.checkConservation({ settled: true });
});

test('the receiver rejects a payment whose request has expired: R00', async () => {
  const { request, quote } = await setUpAndQuote(1_000n, 1_000);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const follower = await followLedger(net.admin['dfsp-a']);
  try {
    const transferId = await prepareFromAlice({
      quote,
      packet: request.ilpPacket,
      condition: request.executionCondition,
    });
    const transfer = await follower.final(transferId);
    expect(transfer.ilpError).toMatchObject({ code: 'R00', triggeredBy: 'private.dfsp-b.bob' });
  } finally {
    follower.close();
  }
  await net.checkConservation({ settled: true });
});

test('a packet built by ilp-packet and a condition computed by five-bells-condition are accepted and fulfilled', async () => {
  const { request, quote } = await setUpAndQuote(3_000n);
  // An independent sender: the packet from ilp-packet, the condition from five-bells-condition,
  // the fulfillment from the receiver's secret by the PSK construction, none of it from src/ilp.
  const packet = ilpPacket.serializeIlpPayment({
    amount: request.destinationAmount.toString(),
    account: request.destinationAddress,
    data: Buffer.from('e2e'),
  });
  expect(packet).toEqual(Buffer.from(request.ilpPacket));
  const expectedFulfillment = pskFulfillment(net.secret('dfsp-b'), packet);
  const fulfillment = new fiveBells.PreimageSha256();
  fulfillment.setPreimage(expectedFulfillment);
  const condition = fulfillment.getCondition().getHash();
  expect(condition).toEqual(Buffer.from(request.executionCondition));

  const follower = await followLedger(net.admin['dfsp-a']);
  try {
    const transferId = await prepareFromAlice({ quote, packet, condition });
    const transfer = await follower.final(transferId);
    expect(transfer.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    const { fulfillment: proof } = await net.admin['dfsp-a'].getFulfillment({ transferId });
    expect(Buffer.from(proof)).toEqual(expectedFulfillment);
    const proofUri = (() => {
      const parsed = new fiveBells.PreimageSha256();
      parsed.setPreimage(Buffer.from(proof));
      return parsed.serializeUri();
    })();
    expect(fiveBells.validateFulfillment(proofUri, fulfillment.getConditionUri())).toBe(true);
  } finally {
    follower.close();
  }
  await net.checkConservation({ settled: true });
});

test('`interclear pay` sends a payment through the running network and shows each hop', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      interclearBinary,
      'pay',
      '--manifest',
      net.network.manifestFile,
      '--from',
      'alice@dfsp-a',
      '--to',
      'bob@dfsp-b',
      '--destination-amount',
      '1234',
      '--data',
      'invoice 7',
    ],
    { timeout: 30_000 },
  );
  for (const hop of [
    'transfer 1 prepared',
    'transfer 2 prepared',
    'transfer 3 prepared',
    'transfer 3 executed',
    'transfer 1 executed',
  ]) {
    expect(stdout).toContain(hop);
  }
  expect(stdout).toContain('executed: bob@dfsp-b received 1234 XOF');
  await net.checkConservation({ settled: true });
});

test('connector B down before a payment: the quote fails and nothing is held', async () => {
  await net.network.service('dfsp-b-connector').kill();
  try {
    const before = await net.balances();
    const error = await failure(pay());
    expect(error).toMatchObject({ reason: 'QUOTE_FAILED' });
    expect(await net.balances()).toEqual(before);
  } finally {
    await restartConnectorB();
  }
  await net.checkConservation({ settled: true });
});

test('connector B down mid-payment: every transfer expires or is rejected and every hold returns', async () => {
  const { request, quote } = await setUpAndQuote(2_000n);
  await net.network.service('dfsp-b-connector').kill();
  const before = await net.balances();
  const onCentral = await followLedger(net.admin.central);
  const onA = await followLedger(net.admin['dfsp-a']);
  try {
    const transferId = await prepareFromAlice({
      quote,
      packet: request.ilpPacket,
      condition: request.executionCondition,
    });
    // Connector A forwards to connector B's account on the central ledger; nobody is there to
    // forward further, so the second transfer expires, and with it the first.
    const second = await onCentral.prepared((transfer) =>
      Buffer.from(transfer.executionCondition).equals(Buffer.from(request.executionCondition)),
    );
    expect(second.creditAccount).toBe('connector-b');
    expect((await onCentral.final(second.id)).rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
    const first = await onA.final(transferId);
    expect(first.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(await net.balances()).toEqual(before);
    await net.checkConservation({ settled: true });
  } finally {
    onCentral.close();
    onA.close();
    await restartConnectorB();
  }
  // Back up, the network pays again.
  const { payment } = await pay({ amount: { $case: 'destinationAmount', value: 100n } });
  expect(payment!.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);
});
