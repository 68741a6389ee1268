/**
 * A next connector that does not answer a quote is reported as such (T01, NEXT_HOP_UNAVAILABLE)
 * before the caller's own deadline passes: the connector keeps part of the deadline it was given
 * to answer. With a fixed 5 s wait of its own, the sender's SPSP service (which also waits 5 s)
 * gave up first and blamed its own connector (CONNECTOR_UNAVAILABLE) for a hop further on.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { createQuotingClient, nextHopAnswerMarginMs } from '../../src/connector/client';
import { parseConnectorConfig } from '../../src/connector/config';
import { exampleConnectorConfigs } from '../../src/connector/example';
import { startConnector, type RunningConnector } from '../../src/connector/server';
import { QuotingServiceService, type QuotingServiceServer } from '../../src/gen/interclear/quoting/v1/quoting';
import { decodeGrpcError } from '../../src/platform/errors';
import { silentLogger } from '../../src/platform/logger';
import { createTestDatabase } from '../support/database';
import { startTestLedger, type TestLedger } from '../support/ledger';
import { waitUntil } from '../support/processes';

jest.setTimeout(30_000);

let dfspA: TestLedger;
let central: TestLedger;
let silentNextHop: grpc.Server;
let asked = 0;
let connector: RunningConnector;

beforeAll(async () => {
  dfspA = await startTestLedger({ ilpPrefix: 'private.dfsp-a.', currencyCode: 'USD', scale: 2 });
  central = await startTestLedger({ ilpPrefix: 'private.central.', currencyCode: 'EUR', scale: 4 });
  for (const ledger of [dfspA, central]) {
    const admin = ledger.client('admin');
    await admin.createAccount({
      name: 'connector-a',
      owner: 'connector-a',
      minimumBalanceUnlimited: false,
      disabled: false,
    });
    await admin.deposit({ depositId: randomUUID(), account: 'connector-a', amount: 10n ** 9n, externalReference: 'f' });
  }
  // Connector B, as a caller meets it when it hangs: it takes quotes and never answers them.
  silentNextHop = new grpc.Server();
  const hang: QuotingServiceServer = {
    quoteBySourceAmount: () => void (asked += 1),
    quoteByDestinationAmount: () => void (asked += 1),
  };
  silentNextHop.addService(QuotingServiceService, hang);
  const port = await new Promise<number>((resolve, reject) =>
    silentNextHop.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const configs = exampleConnectorConfigs({
    dfspALedger: dfspA.ledger.address,
    centralLedger: central.ledger.address,
    dfspBLedger: '127.0.0.1:1',
    connectorA: '127.0.0.1:0',
    connectorB: `127.0.0.1:${port}`,
  });
  connector = await startConnector({
    settings: parseConnectorConfig(configs.a),
    databaseUrl: (await createTestDatabase('next_hop_deadline')).url,
    insecure: true,
    logger: silentLogger,
  });
  await waitUntil('the connector streams', async () => (connector.connector.isReady() ? true : undefined));
});

afterAll(async () => {
  await connector?.stop();
  silentNextHop?.forceShutdown();
  await dfspA?.stop();
  await central?.stop();
});

test('a silent next hop is T01 NEXT_HOP_UNAVAILABLE, answered before the deadline of the quote asked', async () => {
  const client = createQuotingClient(connector.address, { principal: 'spsp-a' });
  const deadlineMs = 2_000;
  try {
    const outcome = await client
      .quoteByDestinationAmount(
        { sourceLedgerPrefix: 'private.dfsp-a.', destinationAddress: 'private.dfsp-b.bob', destinationAmount: 100n },
        { timeoutMs: deadlineMs },
      )
      .then(
        () => undefined,
        (error: grpc.ServiceError) => decodeGrpcError(error),
      );
    // The connector's own answer, within the caller's deadline (else the caller would see its own
    // DEADLINE_EXCEEDED): it waited for the next hop until its margin before that deadline.
    expect(asked).toBe(1);
    expect(outcome).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      reason: 'NEXT_HOP_UNAVAILABLE',
      metadata: { ilp_code: 'T01' },
    });
    expect(outcome?.message).toContain(`next hop 127.0.0.1:`);
  } finally {
    client.close();
  }
});

test('a deadline shorter than the margin is T01 at once, without asking the next hop', async () => {
  const client = createQuotingClient(connector.address, { principal: 'spsp-a' });
  const before = asked;
  try {
    const outcome = await client
      .quoteByDestinationAmount(
        { sourceLedgerPrefix: 'private.dfsp-a.', destinationAddress: 'private.dfsp-b.bob', destinationAmount: 100n },
        { timeoutMs: nextHopAnswerMarginMs - 200 },
      )
      .then(
        () => undefined,
        (error: grpc.ServiceError) => decodeGrpcError(error),
      );
    expect(outcome).toMatchObject({ reason: 'NEXT_HOP_UNAVAILABLE', metadata: { ilp_code: 'T01' } });
    expect(asked).toBe(before);
  } finally {
    client.close();
  }
});
