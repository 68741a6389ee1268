/**
 * The reconciler judges an attempt abandoned (pending, no transfer recorded, for longer than the
 * abandonment time) from a read that can be old by the time it writes. An attempt that recorded
 * and sent its transfer in between must not be failed as PAYMENT_INTERRUPTED ("no money moved"):
 * its transfer's execution would be ignored, and a repeated Pay would send a second transfer,
 * charging the sender twice.
 *
 * The interleaving is forced with a gate on the reconciler's UPDATE (as pool contention or a slow
 * database would delay it); everything else is the real sending service on its real database,
 * with stand-ins for the ledger, the connector and the receiver's SPSP server.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createPaymentRequest, deriveFulfillment } from '../../src/ilp';
import { silentLogger } from '../../src/platform/logger';
import { PaymentNotifier } from '../../src/spsp/notifier';
import { createSendingService } from '../../src/spsp/payments';
import type { LedgerTransferView, PrepareTransferCommand } from '../../src/spsp/ports';
import { Directory } from '../../src/spsp/receivers';
import type { SpspStore } from '../../src/spsp/store';
import { openTestSpspStore } from './support';
import { waitUntil } from '../support/processes';

const receiverSecret = randomBytes(32);
const bobAddress = 'private.dfsp-b.bob';
const bob = {
  identifier: 'bob@dfsp-b',
  ilpAddress: bobAddress,
  name: 'Bob',
  currencyCode: 'XOF',
  scale: 0,
  minimumAmount: 1n,
  maximumAmount: null,
  destinationHoldMs: 5_000,
};

let closeStore: () => Promise<void>;
let store: SpspStore;

beforeAll(async () => {
  const opened = await openTestSpspStore('spsp_abandonment_race', 4);
  store = opened.store;
  closeStore = opened.close;
});

afterAll(async () => {
  await closeStore();
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('an attempt that sent its transfer is never failed as interrupted (and never paid twice)', async () => {
  let clockMs = Date.now();
  const quoteAsked = deferred();
  const quoteAnswer = deferred();
  const markFailedCalled = deferred();
  const gate = deferred();
  const prepared: PrepareTransferCommand[] = [];
  let gateArmed = true;

  const gatedStore = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'markFailed') {
        return async (...args: unknown[]) => {
          if (gateArmed) {
            markFailedCalled.resolve();
            await gate.promise;
          }
          return (value as (...p: unknown[]) => unknown).apply(target, args);
        };
      }
      return (value as (...p: unknown[]) => unknown).bind(target);
    },
  });

  const view = (command: PrepareTransferCommand): LedgerTransferView => ({
    id: command.transferId,
    debitAccount: command.debitAccount,
    creditAccount: command.creditAccount,
    amount: command.amount,
    executionCondition: command.executionCondition,
    expiresAt: command.expiresAt,
    state: 'prepared',
    rejectionReason: null,
    ilpError: null,
    ilpPacket: command.ilpPacket,
    preparedAt: new Date(clockMs),
    traceParent: null,
  });

  const sending = createSendingService({
    dfsp: 'dfsp-a',
    ledgerInfo: { ilpPrefix: 'private.dfsp-a.', currencyCode: 'USD', scale: 2, maxHoldMs: 60_000 },
    ledger: {
      getAccount: () => Promise.resolve(undefined),
      // The ledger takes the transfer; its answer arrives a little after the reconciler's write.
      prepareTransfer: async (command) => {
        prepared.push(command);
        await gate.promise;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return view(command);
      },
      getTransfer: () => Promise.resolve(undefined),
      getFulfillment: () => Promise.reject(new Error('unused')),
    },
    quoter: {
      quote: async (request) => {
        quoteAsked.resolve();
        await quoteAnswer.promise;
        return {
          connectorAccount: 'connector-a',
          sourceAmount: request.amount + 1n,
          destinationAmount: request.amount,
          sourceHoldMs: 7_000,
          destinationHoldMs: request.destinationHoldMs,
          connectors: ['private.dfsp-a.connector-a'],
        };
      },
    },
    remote: {
      query: () => Promise.resolve(bob),
      setupPayment: (_endpoint, request) => {
        const pr = createPaymentRequest({
          secret: receiverSecret,
          destinationAccount: bobAddress,
          destinationAmount: request.destinationAmount,
          data: request.data,
          expiresAt: new Date(clockMs + 30_000),
        });
        return Promise.resolve({
          receiver: bob,
          destinationAddress: pr.destinationAddress,
          destinationAmount: pr.destinationAmount,
          ilpPacket: pr.packet,
          executionCondition: pr.condition,
          expiresAt: pr.expiresAt,
          data: pr.data,
        });
      },
    },
    directory: new Directory([{ dfsp: 'dfsp-b', spspEndpoint: '127.0.0.1:1', prefix: 'private.dfsp-b.' }]),
    store: gatedStore,
    notifier: new PaymentNotifier(),
    principal: 'spsp-a',
    follow: () => Promise.resolve(),
    now: () => new Date(clockMs),
    logger: silentLogger,
    timing: { abandonedAfterMs: 1_000, pollIntervalMs: 50 },
  });

  const order = {
    paymentId: randomUUID(),
    senderAccount: 'alice',
    receiver: 'bob@dfsp-b',
    fixedAmount: 'destination' as const,
    amount: 2_500n,
    data: Buffer.from('invoice'),
    maximumSourceAmount: undefined,
  };
  const firstPay = sending.pay(order).catch((error: Error) => error);
  await quoteAsked.promise;
  // The quote is slow (a connector under load): the attempt passes its abandonment time.
  clockMs += 5_000;
  // The reconciler reads the payment (no transfer yet) and goes to fail it ...
  const sweep = sending.reconcileOverdue();
  await markFailedCalled.promise;
  // ... while the attempt goes on: records its transfer and sends it to the ledger.
  quoteAnswer.resolve();
  await waitUntil('the transfer to be sent', async () => (prepared.length === 1 ? true : undefined));
  gate.resolve();
  await sweep;
  // The attempt is not failed: the first Pay goes on waiting for its transfer's outcome.
  gateArmed = false;

  // The transfer executes at the ledger (bob is paid); its notification arrives.
  const transfer = view(prepared[0]);
  await sending.applyNotification({
    kind: 'transfer',
    sequence: 1n,
    type: 'executed',
    transfer: { ...transfer, state: 'executed' },
    fulfillment: deriveFulfillment(receiverSecret, transfer.ilpPacket),
  });
  const recorded = await store.findPayment(order.paymentId.toLowerCase());
  const first = await firstPay;
  // The DFSP's systems repeat the Pay (had it said FAILED, no money moved, they would).
  const secondPay = sending.pay(order).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const transfersSent = prepared.length;
  clockMs += 600_000; // let the second Pay's wait give up, so the test ends cleanly
  await secondPay;

  expect({ state: recorded?.state, transfersSent }).toEqual({ state: 'executed', transfersSent: 1 });
  expect(first).toMatchObject({ state: 'executed' });
});
