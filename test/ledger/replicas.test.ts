/**
 * Two `interclear ledger` processes on one database behave as one ledger: a subscriber on one
 * sees the transfers prepared and executed on the other.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { spawnLedger } from '../../src/bench/ledger';
import { EventType, type SubscribeResponse } from '../../src/gen/interclear/ledger/v1/ledger';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import { createTestDatabase } from '../support/database';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let replicas: Array<Awaited<ReturnType<typeof spawnLedger>>> = [];
const clients: LedgerClient[] = [];

function client(replica: number, principal: string): LedgerClient {
  const created = createLedgerClient(replicas[replica].address, { principal });
  clients.push(created);
  return created;
}

beforeAll(async () => {
  database = await createTestDatabase('replicas');
  // The first replica migrates the database; the second starts on it as it is.
  replicas = [await spawnLedger(database.url)];
  replicas.push(await spawnLedger(database.url, ['--no-migrate']));
}, 60_000);

afterAll(async () => {
  for (const created of clients) created.close();
  await Promise.all(replicas.map((replica) => replica.stop()));
  await database.drop();
});

test('a subscriber on replica 2 sees a transfer prepared and executed on replica 1', async () => {
  const admin = client(0, 'admin');
  await admin.createAccount({ name: 'payer', owner: 'payer', minimumBalanceUnlimited: false, disabled: false });
  await admin.createAccount({ name: 'payee', owner: 'payee', minimumBalanceUnlimited: false, disabled: false });
  await admin.deposit({ depositId: randomUUID(), account: 'payer', amount: 100n, externalReference: 'seed' });

  const stream = client(1, 'payee').subscribe({ accounts: ['payee'] });
  const received: SubscribeResponse[] = [];
  let wake: () => void = () => undefined;
  // Cancelling at the end reports CANCELLED as an error event: expected, not a failure.
  stream.on('error', () => undefined);
  stream.on('data', (response: SubscribeResponse) => {
    received.push(response);
    wake();
  });
  const waitFor = async (predicate: () => boolean) => {
    const deadline = Date.now() + 15_000;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out with ${received.length} messages`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 250);
      });
    }
  };
  await waitFor(() => received.length > 0);

  const fulfillment = randomBytes(32);
  const transferId = randomUUID();
  await client(0, 'payer').prepareTransfer({
    transferId,
    debitAccount: 'payer',
    creditAccount: 'payee',
    amount: 40n,
    executionCondition: createHash('sha256').update(fulfillment).digest(),
    expiryTime: new Date(Date.now() + 20_000),
    ilpPacket: Buffer.alloc(0),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  await client(0, 'payee').fulfillTransfer({ transferId, fulfillment });
  const types = () =>
    received
      .filter((response) => response.kind?.$case === 'event' && response.kind.value.transfer?.id === transferId)
      .map((response) => (response.kind as { value: { type: EventType } }).value.type);
  await waitFor(() => types().length === 2);
  expect(types()).toEqual([EventType.EVENT_TYPE_TRANSFER_PREPARED, EventType.EVENT_TYPE_TRANSFER_EXECUTED]);
  (stream as grpc.ClientReadableStream<SubscribeResponse>).cancel();
  // Either replica reports the same balances.
  expect((await client(1, 'admin').getAccount({ name: 'payee' })).account?.balance).toBe(40n);
});
