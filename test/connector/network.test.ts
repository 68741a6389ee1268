/**
 * The connectors across real processes: three ledgers and two connectors, each a child process
 * on its own database, alice paying bob through both connectors.
 */
import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { credentials, Metadata, status as grpcStatus } from '@grpc/grpc-js';
import { durationFromMs, durationToMs } from '../../src/connector/client';
import { outgoingTransferId } from '../../src/connector/ids';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../../src/gen/grpc/health/v1/health';
import { RejectionReason, TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { createClient } from '../../src/platform/database';
import { decodeGrpcError } from '../../src/platform/errors';
import { stopAllProcesses, waitUntil } from '../support/processes';
import {
  allBooks,
  awaitOutcome,
  newCondition,
  prefixes,
  prepareFromAlice,
  startNetwork,
  waitForConnector,
  waitForLedger,
  type TestNetwork,
} from './network';

jest.setTimeout(90_000);

let network: TestNetwork;
const bob = `${prefixes.dfspB}bob`;
const connectorAddress = { a: 'private.central.connector-a', b: 'private.central.connector-b' };

beforeAll(async () => {
  network = await startNetwork();
});

afterAll(async () => {
  network?.close();
  await stopAllProcesses();
});

/** Metadata naming the caller (insecure mode). */
function principal(name: string): Metadata {
  const metadata = new Metadata();
  metadata.set('x-principal', name);
  return metadata;
}

/** Logs of every process, appended to a failing expectation's message. */
async function withLogs<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const logs = network
      .processes()
      .map((process) => process.logs())
      .join('\n');
    (error as Error).message += `\n--- process logs ---\n${logs}`;
    throw error;
  }
}

/** Quotes through connector A, by destination or source amount, from DFSP A. */
async function quote(fixed: { destinationAmount: bigint } | { sourceAmount: bigint }, destinationHoldMs?: number) {
  const common = {
    sourceLedgerPrefix: prefixes.dfspA,
    destinationAddress: bob,
    destinationHoldDuration: destinationHoldMs === undefined ? undefined : durationFromMs(destinationHoldMs),
  };
  const response =
    'destinationAmount' in fixed
      ? await network.connectors.a.quoting.quoteByDestinationAmount({
          ...common,
          destinationAmount: fixed.destinationAmount,
        })
      : await network.connectors.a.quoting.quoteBySourceAmount({ ...common, sourceAmount: fixed.sourceAmount });
  const result = response.quote;
  if (!result?.sourceHoldDuration || !result.destinationHoldDuration) throw new Error('a quote without holds');
  return { ...result, sourceHoldMs: durationToMs(result.sourceHoldDuration) };
}

/** Pays bob what `quoted` says, with bob acting as `behaviour`; resolves with alice's transfer outcome. */
async function pay(
  quoted: Awaited<ReturnType<typeof quote>>,
  behaviour: 'fulfil' | 'ignore' | { reject: { code: string; message: string } },
  traceParent?: string,
) {
  const { fulfillment, condition } = newCondition();
  network.receiver.set(
    condition.toString('hex'),
    behaviour === 'fulfil' ? { fulfil: fulfillment } : behaviour === 'ignore' ? 'ignore' : behaviour,
  );
  const id = await prepareFromAlice(network, {
    sourceAmount: quoted.sourceAmount,
    destination: quoted.destinationAddress,
    destinationAmount: quoted.destinationAmount,
    condition,
    holdMs: quoted.sourceHoldMs,
    traceParent,
  });
  const outcome = await awaitOutcome(network.alice, 'alice', id);
  return { id, outcome, fulfillment, centralId: outgoingTransferId('connector-a', prefixes.dfspA, id) };
}

/** Connector A's outgoing transfers on the central ledger. */
async function centralTransfersOfConnectorA() {
  const response = await network.ledgers.central.admin.listTransfers({
    account: 'connector-a',
    state: TransferState.TRANSFER_STATE_UNSPECIFIED,
    pageSize: 1000,
    pageToken: '',
  });
  return response.transfers;
}

function expectNoHolds(books: Awaited<ReturnType<typeof allBooks>>) {
  expect(books.dfspA.accounts.alice.held).toBe(0n);
  expect(books.central.accounts['connector-a'].held).toBe(0n);
  expect(books.dfspB.accounts['connector-b'].held).toBe(0n);
  for (const book of Object.values(books)) expect(book.conserved).toBe(true);
}

test('forward, execute, pass back: a quote by destination amount is exactly what arrives', () =>
  withLogs(async () => {
    const before = await allBooks(network);
    const quoted = await quote({ destinationAmount: 1000n });
    expect(quoted).toMatchObject({
      sourceLedgerPrefix: prefixes.dfspA,
      connectorAccount: 'connector-a',
      destinationAmount: 1000n,
      connectors: [connectorAddress.a, connectorAddress.b],
    });
    // 10.00 EUR at DFSP B needs 10.0201 EUR on the central ledger, 11.16 USD (0.9 EUR/USD, 0.2 % per hop).
    expect(quoted.sourceAmount).toBe(1116n);
    // The default destination hold plus one 500 ms window per connector.
    expect(quoted.sourceHoldMs).toBe(6000);

    const traceId = randomBytes(16).toString('hex');
    const { outcome, fulfillment, centralId } = await pay(
      quoted,
      'fulfil',
      `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
    );
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    expect(Buffer.from(outcome.fulfillment).equals(fulfillment)).toBe(true);
    // One payment, one trace: both connectors prepared their transfers in alice's trace.
    const toBob = [...network.received.values()].find((event) =>
      Buffer.from(event.transfer?.executionCondition ?? []).equals(
        outcome.transfer?.executionCondition ?? Buffer.alloc(1),
      ),
    );
    expect(outcome.transfer?.traceParent).toContain(traceId);
    expect(
      (await network.ledgers.central.admin.getTransfer({ transferId: centralId })).transfer?.traceParent,
    ).toContain(traceId);
    expect(toBob?.transfer?.traceParent).toContain(traceId);

    const central = await network.ledgers.central.admin.getTransfer({ transferId: centralId });
    // 11.16 USD × 0.9 × 0.998 = 10.0239... EUR: what connector A forwards, rounded down.
    expect(central.transfer).toMatchObject({
      amount: 100_239n,
      state: TransferState.TRANSFER_STATE_EXECUTED,
      creditAccount: 'connector-b',
    });

    const after = await allBooks(network);
    expect(after.dfspA.accounts.alice.balance).toBe(before.dfspA.accounts.alice.balance - 1116n);
    expect(after.dfspA.accounts['connector-a'].balance).toBe(before.dfspA.accounts['connector-a'].balance + 1116n);
    expect(after.central.accounts['connector-a'].balance).toBe(
      before.central.accounts['connector-a'].balance - 100_239n,
    );
    expect(after.central.accounts['connector-b'].balance).toBe(
      before.central.accounts['connector-b'].balance + 100_239n,
    );
    expect(after.dfspB.accounts['connector-b'].balance).toBe(before.dfspB.accounts['connector-b'].balance - 1000n);
    expect(after.dfspB.accounts.bob.balance).toBe(before.dfspB.accounts.bob.balance + 1000n);
    expectNoHolds(after);
  }));

test('a quote by source amount is what forwarding sends: bob gets the quoted destination amount', () =>
  withLogs(async () => {
    const before = await allBooks(network);
    const quoted = await quote({ sourceAmount: 2500n }, 3000);
    // 25.00 USD → 22.455 EUR on the central ledger → 22.41 EUR at DFSP B (rounded down).
    expect(quoted.destinationAmount).toBe(2241n);
    expect(quoted.sourceHoldMs).toBe(4000);
    const { outcome, id } = await pay(quoted, 'fulfil');
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    const toBob = [...network.received.values()].find(
      (event) =>
        event.transfer?.executionCondition &&
        Buffer.from(event.transfer.executionCondition).equals(outcome.transfer?.executionCondition ?? Buffer.alloc(0)),
    );
    expect(toBob?.transfer?.amount).toBe(2241n);
    // Each hop expires one window before the one before it: bob's hold is the quoted 3 s.
    const aliceExpiry = outcome.transfer?.expiryTime?.getTime() ?? 0;
    expect(aliceExpiry - (toBob?.transfer?.expiryTime?.getTime() ?? 0)).toBe(1000);
    const after = await allBooks(network);
    expect(after.dfspA.accounts.alice.balance).toBe(before.dfspA.accounts.alice.balance - 2500n);
    expect(after.dfspB.accounts.bob.balance).toBe(before.dfspB.accounts.bob.balance + 2241n);
    expectNoHolds(after);
    expect(id).toBeDefined();
  }));

test('bob rejects: the error travels back with each connector in forwarded_by, and every hold returns', () =>
  withLogs(async () => {
    const before = await allBooks(network);
    const quoted = await quote({ destinationAmount: 500n });
    const { outcome, centralId } = await pay(quoted, {
      reject: { code: 'F99', message: 'bob does not know this invoice' },
    });
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(outcome.transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_CANCELLED);
    expect(outcome.transfer?.ilpError).toMatchObject({
      code: 'F99',
      message: 'bob does not know this invoice',
      triggeredBy: bob,
      forwardedBy: [connectorAddress.b, connectorAddress.a],
    });
    const central = await network.ledgers.central.admin.getTransfer({ transferId: centralId });
    expect(central.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    const after = await allBooks(network);
    expect(after).toEqual(before);
    expectNoHolds(after);
  }));

test('an outgoing transfer expires: the incoming transfers are rejected with R00 and every hold returns', () =>
  withLogs(async () => {
    const before = await allBooks(network);
    const quoted = await quote({ destinationAmount: 700n }, 1000);
    const { outcome, centralId } = await pay(quoted, 'ignore');
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    // Connector B saw bob's transfer expire and raised R00; connector A relayed it in time.
    expect(outcome.transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_CANCELLED);
    expect(outcome.transfer?.ilpError).toMatchObject({
      code: 'R00',
      triggeredBy: connectorAddress.b,
      forwardedBy: [connectorAddress.a],
    });
    const central = await network.ledgers.central.admin.getTransfer({ transferId: centralId });
    expect(central.transfer?.ilpError?.code).toBe('R00');
    const toBob = [...network.received.values()].find((event) => event.transfer?.amount === 700n);
    const bobsTransfer = await network.ledgers.dfspB.admin.getTransfer({ transferId: toBob?.transfer?.id ?? '' });
    expect(bobsTransfer.transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
    const after = await allBooks(network);
    expect(after).toEqual(before);
    expectNoHolds(after);
  }));

test('errors before forwarding: F02 for an unknown destination, T04 when the last connector lacks liquidity', () =>
  withLogs(async () => {
    const before = await allBooks(network);
    // Quotes refuse both, with the ILP code in the ErrorInfo.
    const quoteError = async (destinationAddress: string, destinationAmount: bigint) => {
      try {
        await network.connectors.a.quoting.quoteByDestinationAmount({
          sourceLedgerPrefix: prefixes.dfspA,
          destinationAddress,
          destinationAmount,
        });
      } catch (error) {
        return decodeGrpcError(error as grpc.ServiceError);
      }
      throw new Error('the quote succeeded');
    };
    expect(await quoteError('private.dfsp-c.carol', 100n)).toMatchObject({
      code: grpcStatus.NOT_FOUND,
      reason: 'DESTINATION_UNREACHABLE',
      domain: 'interclear.quoting.v1.QuotingService',
      metadata: { ilp_code: 'F02' },
    });
    expect(await quoteError(bob, 200_000n)).toMatchObject({
      code: grpcStatus.FAILED_PRECONDITION,
      reason: 'INSUFFICIENT_LIQUIDITY',
      metadata: { ilp_code: 'T04' },
    });

    // Paid anyway: connector A rejects F02 itself…
    const unknown = newCondition();
    const toNowhere = await prepareFromAlice(network, {
      sourceAmount: 100n,
      destination: 'private.dfsp-c.carol',
      destinationAmount: 1n,
      condition: unknown.condition,
      holdMs: 5000,
    });
    const unreachable = await awaitOutcome(network.alice, 'alice', toNowhere);
    expect(unreachable.transfer?.ilpError).toMatchObject({
      code: 'F02',
      name: 'Unreachable',
      triggeredBy: connectorAddress.a,
      forwardedBy: [],
    });

    // …and connector B cannot pay 2,000.00 EUR with its 1,000.00: T04, relayed by A.
    const large = newCondition();
    const tooLarge = await prepareFromAlice(network, {
      sourceAmount: 300_000n,
      destination: bob,
      destinationAmount: 200_000n,
      condition: large.condition,
      holdMs: 5000,
    });
    const illiquid = await awaitOutcome(network.alice, 'alice', tooLarge);
    expect(illiquid.transfer?.ilpError).toMatchObject({
      code: 'T04',
      triggeredBy: connectorAddress.b,
      forwardedBy: [connectorAddress.a],
    });
    const after = await allBooks(network);
    expect(after).toEqual(before);
  }));

test('the status RPC shows streams, balances, nothing in flight and no money lost', () =>
  withLogs(async () => {
    const status = await network.connectors.a.status.getStatus({});
    expect(status.name).toBe('connector-a');
    expect(status.ilpAddress).toBe(connectorAddress.a);
    const books = await allBooks(network);
    expect(
      status.ledgers.map((ledger) => [ledger.ledgerPrefix, ledger.account, ledger.streamConnected, ledger.balance]),
    ).toEqual([
      [prefixes.dfspA, 'connector-a', true, books.dfspA.accounts['connector-a'].balance],
      [prefixes.central, 'connector-a', true, books.central.accounts['connector-a'].balance],
    ]);
    expect(status.ledgers.every((ledger) => ledger.lastSequence > 0n && ledger.inFlightOutgoingAmount === 0n)).toBe(
      true,
    );
    expect(status.passBack).toEqual({ pending: 0n, retriesTotal: 0n, lostTotal: 0n });
    const routes = await network.connectors.a.status.listRoutes({});
    expect(routes.routes.map((route) => [route.targetPrefix, route.local, route.nextHopAccount])).toEqual([
      [prefixes.central, true, ''],
      [prefixes.dfspA, true, ''],
      [prefixes.dfspB, false, 'connector-b'],
    ]);
    const rates = await network.connectors.a.status.listRates({});
    expect(rates.rates.map((rate) => [rate.sourceCurrency, rate.destinationCurrency, rate.rate, rate.derived])).toEqual(
      [
        ['USD', 'EUR', '0.9', false],
        ['EUR', 'USD', '1.111111111111111111', true],
      ],
    );
    expect(rates.spread).toBe('0.002');
    const health = new HealthClient(network.connectors.a.address, credentials.createInsecure());
    for (const service of ['', 'interclear.quoting.v1.QuotingService', 'interclear.connector.v1.ConnectorService']) {
      const answer = await new Promise<HealthCheckResponse_ServingStatus>((resolve, reject) =>
        health.check({ service }, principal('admin'), (error, response) =>
          error ? reject(error) : resolve(response.status),
        ),
      );
      expect(answer).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
    health.close();
  }));

test('replayed notifications change nothing: connector A restarted from sequence 0 forwards nothing again', () =>
  withLogs(async () => {
    const connector = network.connectors.a;
    const before = await allBooks(network);
    const transfersBefore = await centralTransfersOfConnectorA();
    const statusBefore = await connector.status.getStatus({});
    await connector.process.kill('SIGKILL');
    const database = createClient(connector.databaseUrl);
    await database.connect();
    const states = async () =>
      (
        await database.query<{ state: string; count: bigint }>(
          'select state, count(*) as count from connector_payments group by state order by state',
        )
      ).rows;
    const statesBefore = await states();
    await database.query('update connector_cursors set sequence = 0');
    connector.process.restart();
    await waitForConnector(connector);
    // Wait until it has read everything again, then compare.
    await waitUntil(
      'connector A to replay both ledgers',
      async () => {
        const status = await connector.status.getStatus({});
        return status.ledgers.every((ledger, index) => ledger.lastSequence >= statusBefore.ledgers[index].lastSequence)
          ? true
          : undefined;
      },
      { processes: [connector.process] },
    );
    expect(await states()).toEqual(statesBefore);
    await database.end();
    expect((await centralTransfersOfConnectorA()).length).toBe(transfersBefore.length);
    expect(await allBooks(network)).toEqual(before);
    // And it still works.
    const { outcome } = await pay(await quote({ destinationAmount: 100n }), 'fulfil');
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
  }));

test('killed after the outgoing transfer executed, before the pass-back: the restart fulfils the incoming transfer once', () =>
  withLogs(async () => {
    const connector = network.connectors.a;
    await connector.process.kill('SIGKILL');
    // INTERCLEAR_TEST_HOLD_PASSBACK=1 makes the connector hold every pass-back, so the kill lands
    // between the outgoing transfer's execution (fulfillment stored) and the pass-back.
    connector.process.restart({ INTERCLEAR_TEST_HOLD_PASSBACK: '1' });
    await waitForConnector(connector);
    const before = await allBooks(network);
    const transfersBefore = await centralTransfersOfConnectorA();
    const quoted = await quote({ destinationAmount: 1234n }, 6000);
    const { fulfillment, condition } = newCondition();
    network.receiver.set(condition.toString('hex'), { fulfil: fulfillment });
    const mark = connector.process.mark();
    const id = await prepareFromAlice(network, {
      sourceAmount: quoted.sourceAmount,
      destination: bob,
      destinationAmount: 1234n,
      condition,
      holdMs: quoted.sourceHoldMs,
    });
    await connector.process.waitForLog(/pass-back held by test hook/, { since: mark });
    const centralId = outgoingTransferId('connector-a', prefixes.dfspA, id);
    expect((await network.ledgers.central.admin.getTransfer({ transferId: centralId })).transfer?.state).toBe(
      TransferState.TRANSFER_STATE_EXECUTED,
    );
    expect((await network.alice.getTransfer({ transferId: id })).transfer?.state).toBe(
      TransferState.TRANSFER_STATE_PREPARED,
    );

    await connector.process.kill('SIGKILL');
    connector.process.restart({ INTERCLEAR_TEST_HOLD_PASSBACK: undefined });
    const outcome = await awaitOutcome(network.alice, 'alice', id);
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    expect(Buffer.from(outcome.fulfillment).equals(fulfillment)).toBe(true);

    // Exactly one outgoing transfer for the payment; the books moved by the one payment only.
    const transfersAfter = await centralTransfersOfConnectorA();
    expect(transfersAfter.length).toBe(transfersBefore.length + 1);
    expect(transfersAfter.filter((transfer) => transfer.id === centralId)).toHaveLength(1);
    await waitForConnector(connector);
    const after = await allBooks(network);
    expect(after.dfspA.accounts.alice.balance).toBe(before.dfspA.accounts.alice.balance - quoted.sourceAmount);
    expect(after.dfspB.accounts.bob.balance).toBe(before.dfspB.accounts.bob.balance + 1234n);
    expectNoHolds(after);
    // The ledger reports the incoming transfer executed as soon as the fulfil commits; the
    // connector records the pass-back as done after its reply, so wait for that record.
    await waitUntil(
      'connector A to record the pass-back as done',
      async () => ((await connector.status.getStatus({})).passBack?.pending === 0n ? true : undefined),
      { processes: [connector.process] },
    );
    const status = await connector.status.getStatus({});
    expect(status.passBack).toMatchObject({ pending: 0n, lostTotal: 0n });
  }));

test('a ledger restart: the connectors reconnect from their cursors and payments flow again', () =>
  withLogs(async () => {
    const central = network.ledgers.central;
    await central.process.kill('SIGKILL');
    await waitUntil('connector A to notice the central ledger is gone', async () => {
      const status = await network.connectors.a.status.getStatus({});
      return status.ledgers.some((ledger) => !ledger.streamConnected) ? true : undefined;
    });
    central.process.restart();
    await waitForLedger(central);
    await Promise.all([waitForConnector(network.connectors.a), waitForConnector(network.connectors.b)]);
    const { outcome } = await pay(await quote({ destinationAmount: 321n }), 'fulfil');
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    expectNoHolds(await allBooks(network));
  }));
