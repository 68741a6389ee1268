/**
 * An incoming payment whose outgoing amount no ledger can carry (above 2^63 - 1 minor units, the
 * connector's and the ledgers' bigint columns) is rejected at once, F03. It once failed the
 * connector's write of its notification batch on every replay, holding every later notification
 * of that ledger — pass-backs included — until the payment expired: a sender with a credit line
 * could stall a connector and make it lose the money of payments in flight.
 */
import { randomUUID } from 'node:crypto';
import { parseConnectorConfig } from '../../src/connector/config';
import { startConnector, type RunningConnector } from '../../src/connector/server';
import pg from 'pg';
import { RejectionReason, TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { serializeIlpPayment } from '../../src/ilp';
import { silentLogger } from '../../src/platform/logger';
import { createTestDatabase } from '../support/database';
import { startTestLedger, type TestLedger } from '../support/ledger';
import { waitUntil } from '../support/processes';
import { awaitEvent, awaitOutcome, newCondition } from '../connector/network';

jest.setTimeout(60_000);

let dfspA: TestLedger;
let central: TestLedger;
let connector: RunningConnector;
let connectorDatabaseUrl: string;

beforeAll(async () => {
  dfspA = await startTestLedger({ ilpPrefix: 'private.dfsp-a.', currencyCode: 'USD', scale: 2 });
  central = await startTestLedger({ ilpPrefix: 'private.central.', currencyCode: 'EUR', scale: 4 });
  const [a, c] = [dfspA.client('admin'), central.client('admin')];
  // alice has a credit line (no lower limit): a DFSP's ordinary setup for a large customer.
  await a.createAccount({ name: 'alice', owner: 'alice', minimumBalanceUnlimited: true, disabled: false });
  await a.createAccount({ name: 'connector', owner: 'connector', minimumBalanceUnlimited: false, disabled: false });
  await c.createAccount({ name: 'connector', owner: 'connector', minimumBalanceUnlimited: false, disabled: false });
  await c.createAccount({ name: 'hub', owner: 'hub', minimumBalanceUnlimited: false, disabled: false });
  await a.deposit({ depositId: randomUUID(), account: 'connector', amount: 100_000n, externalReference: 'f' });
  await c.deposit({ depositId: randomUUID(), account: 'connector', amount: 10_000_000n, externalReference: 'f' });
  await c.deposit({ depositId: randomUUID(), account: 'hub', amount: 10_000_000n, externalReference: 'f' });
  const settings = parseConnectorConfig({
    name: 'connector',
    listen: '127.0.0.1:0',
    principal: 'connector',
    ilpAddress: 'private.central.connector',
    ledgers: [
      { prefix: 'private.dfsp-a.', address: dfspA.ledger.address, account: 'connector', currency: 'USD', scale: 2 },
      { prefix: 'private.central.', address: central.ledger.address, account: 'connector', currency: 'EUR', scale: 4 },
    ],
    rates: [{ source: 'USD', destination: 'EUR', rate: '0.9' }],
    spread: '0',
    messageWindow: '500ms',
    maxHoldTime: '10s',
  });
  connector = await startConnector({
    settings,
    databaseUrl: (connectorDatabaseUrl = (await createTestDatabase('oversize_connector')).url),
    insecure: true,
    logger: silentLogger,
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

async function alicePays(amount: bigint, packetAmount: bigint, condition: Buffer, holdMs = 3000): Promise<string> {
  const id = randomUUID();
  await dfspA.client('alice').prepareTransfer({
    transferId: id,
    debitAccount: 'alice',
    creditAccount: 'connector',
    amount,
    executionCondition: condition,
    expiryTime: new Date(Date.now() + holdMs),
    ilpPacket: serializeIlpPayment({ account: 'private.central.hub', amount: packetAmount, data: Buffer.alloc(0) }),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  return id;
}

test('a huge payment (outgoing amount > 2^63-1) is rejected by the connector, which keeps forwarding', async () => {
  // 2e17 cents at 0.9 USD->EUR, scale 2 -> 4: 1.8e19 deliverable; the packet asks 1e19 (< 2^64, > 2^63).
  const huge = await alicePays(2n * 10n ** 17n, 10n ** 19n, newCondition().condition, 9000);
  // An ordinary payment right after it.
  const { condition } = newCondition();
  await alicePays(1000n, 9000n, condition);
  const seen = await awaitEvent(
    central.client('hub'),
    'hub',
    (event) => Buffer.from(event.transfer?.executionCondition ?? []).equals(condition),
    2500,
  ).catch((error: Error) => error);
  expect(seen).not.toBeInstanceOf(Error);
  // The huge one is refused at once, not left hanging.
  const outcome = await awaitOutcome(dfspA.client('alice'), 'alice', huge, 2000);
  expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
  expect(outcome.transfer?.ilpError?.code).toBe('F03');
});

test('a huge payment in flight does not keep the connector from claiming the money it paid out', async () => {
  // Another huge payment from alice (held 9 s), which once held dfsp-a's stream ...
  await alicePays(2n * 10n ** 17n, 10n ** 19n, newCondition().condition, 9000);
  // ... while the hub pays alice through the connector (central -> dfsp-a), held 3 s.
  const { fulfillment, condition } = newCondition();
  const hub = central.client('hub');
  const incoming = randomUUID();
  await hub.prepareTransfer({
    transferId: incoming,
    debitAccount: 'hub',
    creditAccount: 'connector',
    amount: 10_000n,
    executionCondition: condition,
    expiryTime: new Date(Date.now() + 3000),
    ilpPacket: serializeIlpPayment({ account: 'private.dfsp-a.alice', amount: 100n, data: Buffer.alloc(0) }),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  const alice = dfspA.client('alice');
  const toAlice = await awaitEvent(
    alice,
    'alice',
    (event) =>
      event.transfer?.state === TransferState.TRANSFER_STATE_PREPARED &&
      Buffer.from(event.transfer.executionCondition).equals(condition),
  );
  const paid = await alice.fulfillTransfer({ transferId: toAlice.transfer!.id, fulfillment });
  expect(paid.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED); // the connector paid alice
  const claimed = await awaitOutcome(hub, 'hub', incoming, 8000);
  // Else the incoming transfer expires: the connector loses the 1.00 USD it paid out.
  expect(claimed.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
});

test('a notification the database refuses is stored alone and, if it only creates a payment, given up: later ones flow', async () => {
  // A fault of the connector's own database for one payment's row (here a trigger), as the
  // oversize amount once was: the batch holding it is refused whole, every time it is replayed.
  const database = new pg.Client({ connectionString: connectorDatabaseUrl });
  await database.connect();
  try {
    await database.query(`
      create function refuse_thirteen() returns trigger language plpgsql as $$
      begin
        if new.incoming_amount = 13 then raise exception 'refused by the test' using errcode = '22003'; end if;
        return new;
      end $$;
      create trigger refuse_thirteen before insert on connector_payments
        for each row execute function refuse_thirteen();
    `);
    const refused = await alicePays(13n, 100n, newCondition().condition, 2000);
    const { condition } = newCondition();
    await alicePays(1000n, 9000n, condition);
    // The payment after it is forwarded: the stream goes on.
    await awaitEvent(central.client('hub'), 'hub', (event) =>
      Buffer.from(event.transfer?.executionCondition ?? []).equals(condition),
    );
    // The refused one is not forwarded; its transfer expires and alice's hold returns.
    const outcome = await awaitOutcome(dfspA.client('alice'), 'alice', refused, 8000);
    expect(outcome.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(outcome.transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
    const stored = await database.query('select 1 from connector_payments where incoming_transfer_id = $1', [refused]);
    expect(stored.rowCount).toBe(0);
  } finally {
    await database.query('drop trigger if exists refuse_thirteen on connector_payments');
    await database.query('drop function if exists refuse_thirteen()');
    await database.end();
  }
});
