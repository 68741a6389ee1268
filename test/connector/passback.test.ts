/**
 * The pass-back when the incoming ledger is down, in one process for control over timing: a
 * connector between DFSP A (alice) and the central ledger (the receiver "hub" is the last hop).
 * The pass-back is retried until the ledger is back; when that is after the incoming transfer's
 * expiry, the connector reports the money lost: an error log and the status counter.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConnectorConfig } from '../../src/connector/config';
import type { ConnectorSettings } from '../../src/connector/model';
import { createConnectorClient } from '../../src/connector/client';
import { connectorInstanceLockKey } from '../../src/connector/persistence';
import { startConnector, type RunningConnector } from '../../src/connector/server';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { serializeIlpPayment } from '../../src/ilp';
import { createClient, findFreePort } from '../../src/platform/database';
import { silentLogger } from '../../src/platform/logger';
import { createTestDatabase } from '../support/database';
import { startTestLedger, type TestLedger } from '../support/ledger';
import { waitUntil } from '../support/processes';
import { awaitEvent, awaitOutcome, newCondition } from './network';

jest.setTimeout(60_000);

let dfspA: TestLedger;
let central: TestLedger;
let dfspAConfig: { listen: string; databaseUrl: string };
let connector: RunningConnector;
let connectorDatabaseUrl: string;
let settings: ConnectorSettings;
const logLines: string[] = [];

async function startDfspA(): Promise<TestLedger> {
  return startTestLedger({
    ...dfspAConfig,
    ilpPrefix: 'private.dfsp-a.',
    currencyCode: 'USD',
    scale: 2,
    logger: silentLogger,
  });
}

beforeAll(async () => {
  dfspAConfig = {
    listen: `127.0.0.1:${await findFreePort()}`,
    databaseUrl: (await createTestDatabase('passback_dfsp_a')).url,
  };
  dfspA = await startDfspA();
  central = await startTestLedger({ ilpPrefix: 'private.central.', currencyCode: 'USD', scale: 2 });
  const admin = [dfspA.client('admin'), central.client('admin')] as const;
  await admin[0].createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: false, disabled: false });
  await admin[0].createAccount({
    name: 'connector',
    owner: 'connector',
    minimumBalanceUnlimited: false,
    disabled: false,
  });
  await admin[1].createAccount({
    name: 'connector',
    owner: 'connector',
    minimumBalanceUnlimited: false,
    disabled: false,
  });
  await admin[1].createAccount({ name: 'hub', owner: 'hub', minimumBalanceUnlimited: false, disabled: false });
  await admin[0].deposit({ depositId: randomUUID(), account: 'alice', amount: 100_000n, externalReference: 'funding' });
  await admin[1].deposit({
    depositId: randomUUID(),
    account: 'connector',
    amount: 100_000n,
    externalReference: 'funding',
  });

  settings = parseConnectorConfig({
    name: 'connector',
    listen: '127.0.0.1:0',
    principal: 'connector',
    ilpAddress: 'private.central.connector',
    ledgers: [
      { prefix: 'private.dfsp-a.', address: dfspA.ledger.address, account: 'connector', currency: 'USD', scale: 2 },
      { prefix: 'private.central.', address: central.ledger.address, account: 'connector', currency: 'USD', scale: 2 },
    ],
    spread: '0',
    messageWindow: '500ms',
    maxHoldTime: '10s',
  });
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  connector = await startConnector({
    settings,
    databaseUrl: (connectorDatabaseUrl = (await createTestDatabase('passback_connector')).url),
    insecure: true,
    logger: pino({ level: 'info' }, sink),
    tuning: {
      backoff: { initialMs: 50, maximumMs: 200 },
      reconnect: { initialMs: 50, maximumMs: 200 },
      jobPollIntervalMs: 50,
    },
  });
  await waitUntil('the connector streams', async () => (connector.connector.isReady() ? true : undefined));
});

afterAll(async () => {
  await connector?.stop();
  await dfspA?.stop();
  await central?.stop();
});

/** Alice pays the hub 10.00 through the connector; the hub fulfils once dfsp-a has been stopped. */
async function payWhileDfspAIsDown(holdMs: number) {
  const { fulfillment, condition } = newCondition();
  const id = randomUUID();
  await dfspA.client('alice').prepareTransfer({
    transferId: id,
    debitAccount: 'alice',
    creditAccount: 'connector',
    amount: 1000n,
    executionCondition: condition,
    expiryTime: new Date(Date.now() + holdMs),
    ilpPacket: serializeIlpPayment({ account: 'private.central.hub', amount: 1000n, data: Buffer.alloc(0) }),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  const hub = central.client('hub');
  const prepared = await awaitEvent(
    hub,
    'hub',
    (event) =>
      event.transfer?.state === TransferState.TRANSFER_STATE_PREPARED &&
      event.transfer.executionCondition.length > 0 &&
      Buffer.from(event.transfer.executionCondition).equals(condition),
  );
  await dfspA.stop();
  await hub.fulfillTransfer({ transferId: prepared.transfer?.id ?? '', fulfillment });
  return { id, fulfillment };
}

test('a pass-back that fails while the incoming ledger is down is retried until it succeeds', async () => {
  const { id, fulfillment } = await payWhileDfspAIsDown(8000);
  await waitUntil('a failed pass-back attempt', async () =>
    (await connector.connector.status()).passBack.retriesTotal > 0n ? true : undefined,
  );
  dfspA = await startDfspA();
  const outcome = await awaitOutcome(dfspA.client('alice'), 'alice', id);
  expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
  expect(Buffer.from(outcome.fulfillment).equals(fulfillment)).toBe(true);
  // The connector learns of the execution from dfsp-a's stream, which reconnects on its own schedule.
  const status = await waitUntil('the pass-back to be confirmed', async () => {
    const current = await connector.connector.status();
    return current.passBack.pending === 0n ? current : undefined;
  });
  expect(status.passBack.lostTotal).toBe(0n);
  expect(logLines.some((line) => line.includes('connector lost money'))).toBe(false);
  // The fulfillment itself is never logged.
  expect(
    logLines.some(
      (line) => line.includes(fulfillment.toString('hex')) || line.includes(fulfillment.toString('base64')),
    ),
  ).toBe(false);
});

test('a pass-back still failing when the incoming transfer expires is money lost: logged loudly and counted', async () => {
  const { id } = await payWhileDfspAIsDown(2000);
  await waitUntil(
    'the connector to give the pass-back up',
    async () => ((await connector.connector.status()).passBack.lostTotal > 0n ? true : undefined),
    {
      timeoutMs: 15_000,
    },
  );
  const alarm = logLines
    .map((line) => JSON.parse(line))
    .find((entry) => String(entry.msg).startsWith('connector lost money'));
  expect(alarm).toMatchObject({ level: 50, incomingTransferId: id, incomingAmount: '1000', outgoingAmount: '1000' });
  dfspA = await startDfspA();
  const outcome = await awaitOutcome(dfspA.client('alice'), 'alice', id);
  expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
  expect((await connector.connector.status()).passBack).toMatchObject({ pending: 0n, lostTotal: 1n });
});

test('a database belongs to one connector: another name is refused, since transfer ids derive from it', async () => {
  await expect(
    startConnector({
      settings: { ...settings, name: 'renamed', listen: '127.0.0.1:0' },
      databaseUrl: connectorDatabaseUrl,
      insecure: true,
      logger: silentLogger,
    }),
  ).rejects.toThrow('this database belongs to connector "connector", not "renamed"');
});

test('one process per connector: a second one waits for the first to go, then gives up', async () => {
  await expect(
    startConnector({
      settings: { ...settings, listen: '127.0.0.1:0' },
      databaseUrl: connectorDatabaseUrl,
      insecure: true,
      logger: silentLogger,
      instanceLockTimeoutMs: 300,
    }),
  ).rejects.toThrow('another process is running this connector');
});

test('a connector whose instance lock another process takes (its connection was cut) stops at once', async () => {
  const other = createClient(connectorDatabaseUrl, 'passback-test');
  await other.connect();
  const client = createConnectorClient(connector.address, { principal: 'admin' });
  try {
    await expect(client.getStatus({})).resolves.toBeDefined();
    // Ends the lock's session and queues for the lock in one statement, ahead of the connector's retake.
    await other.query(
      `select pg_terminate_backend(pid), pg_advisory_lock($1)
         from pg_stat_activity where application_name = 'interclear-connector-lock' and datname = current_database()`,
      [connectorInstanceLockKey],
    );
    await waitUntil('the connector to stop serving', async () => {
      try {
        await client.getStatus({});
      } catch (error) {
        return (error as { code?: number }).code === 14 ? true : undefined;
      }
      return undefined;
    });
    expect(logLines.join('\n')).toContain('instance lock lost to another process');
  } finally {
    client.close();
    await other.end();
  }
});
