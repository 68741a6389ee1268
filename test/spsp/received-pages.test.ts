/**
 * ListIncomingPayments pages by bytes as well as by count: a page of the largest size asked
 * (1,000) of payments carrying SetupPayment's largest data (4,096 bytes) would exceed the 4 MiB a
 * gRPC message may carry; it ends early instead, and its next page token goes on from there.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { PaymentServiceService } from '../../src/gen/interclear/spsp/v1/spsp';
import { silentLogger } from '../../src/platform/logger';
import { startServer, type RunningServer } from '../../src/platform/server';
import { createPaymentClient } from '../../src/spsp/client';
import { createPaymentGrpcHandlers } from '../../src/spsp/grpc';
import { createReceivedPayments } from '../../src/spsp/received';
import { ReceiverBook } from '../../src/spsp/receivers';
import { openTestSpspStore } from './support';

let closeStore: () => Promise<void>;
let server: RunningServer;
const count = 1000;

beforeAll(async () => {
  const opened = await openTestSpspStore('spsp_received_pages');
  const store = opened.store;
  closeStore = opened.close;
  const at = Date.now();
  for (let i = 0; i < count; i += 1) {
    await store.recordIncoming({
      transferId: randomUUID(),
      receiver: 'bob',
      account: 'bob',
      amount: 10n,
      destinationAddress: 'private.dfsp-b.bob.' + 'x'.repeat(40),
      packetAmount: 10n,
      data: randomBytes(4096), // SetupPayment's maximum (maximumDataBytes)
      executionCondition: randomBytes(32),
      state: 'executed',
      ilpErrorCode: null,
      ilpErrorMessage: null,
      receivedAt: new Date(at + i),
    });
  }
  const received = createReceivedPayments({
    store,
    receivers: new ReceiverBook('dfsp-b', 'private.dfsp-b.', [{ name: 'bob', account: 'bob' } as never]),
  });
  server = await startServer({
    address: '127.0.0.1:0',
    services: [
      {
        definition: PaymentServiceService,
        implementation: createPaymentGrpcHandlers(
          {} as never,
          received,
          { currencyCode: 'USD', scale: 2 },
          silentLogger,
        ),
      },
    ],
  });
}, 120_000);

afterAll(async () => {
  await server?.stop(0);
  await closeStore();
});

test('a page of the largest size ends early rather than exceed a message; the pages together hold every payment, once, in order', async () => {
  const client = createPaymentClient(server.address, { principal: 'admin' });
  try {
    const seen: string[] = [];
    const sizes: number[] = [];
    let pageToken = '';
    do {
      const page = await client.listIncomingPayments({ receiver: '', state: 0, pageSize: 1000, pageToken });
      sizes.push(page.payments.length);
      seen.push(...page.payments.map((payment) => payment.receivedAt!.toISOString() + payment.transferId));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes[0]).toBeLessThan(1000);
    expect(seen).toHaveLength(count);
    expect(new Set(seen).size).toBe(count);
    expect([...seen].sort()).toEqual(seen);
  } finally {
    client.close();
  }
});
