/**
 * The sending side's own work per payment, on its real database with stand-ins for the ledger,
 * the connector and the receiver's SPSP server: what it writes and reads, whichever of the
 * prepare's answer and the ledger's notification comes first, and how a prepare the ledger
 * refuses fails the payment (the sender's account is not read beforehand).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createPaymentRequest, deriveFulfillment } from '../../src/ilp';
import { silentLogger } from '../../src/platform/logger';
import { SpspError } from '../../src/spsp/errors';
import type { IncomingPayment, Payment } from '../../src/spsp/model';
import { PaymentNotifier } from '../../src/spsp/notifier';
import { createSendingService, type SendingService } from '../../src/spsp/payments';
import {
  RemoteError,
  type LedgerNotification,
  type LedgerTransferView,
  type PrepareTransferCommand,
} from '../../src/spsp/ports';
import { Directory } from '../../src/spsp/receivers';
import type { SpspStore } from '../../src/spsp/store';
import { openTestSpspStore } from './support';

const receiverSecret = randomBytes(32);
const bobAddress = 'private.dfsp-b.bob';

let closeStore: () => Promise<void>;
let store: SpspStore;
/** Calls of the store's methods by the sending service, by name. */
let calls: Map<string, number>;
/** What the stand-in ledger does with a prepare (it answers with the prepared transfer by default). */
let onPrepare: (transfer: LedgerTransferView) => Promise<LedgerTransferView>;
let sending: SendingService;

beforeAll(async () => {
  const opened = await openTestSpspStore('spsp_sending');
  store = opened.store;
  closeStore = opened.close;
});

afterAll(async () => {
  await closeStore();
});

beforeEach(() => {
  calls = new Map();
  onPrepare = (transfer) => Promise.resolve(transfer);
  const counted = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(property), (calls.get(String(property)) ?? 0) + 1);
        return (value as (...parameters: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  sending = createSendingService({
    dfsp: 'dfsp-a',
    ledgerInfo: { ilpPrefix: 'private.dfsp-a.', currencyCode: 'USD', scale: 2, maxHoldMs: 60_000 },
    ledger: {
      getAccount: () => Promise.resolve(undefined),
      prepareTransfer: (command) => onPrepare(preparedTransfer(command)),
      getTransfer: () => Promise.resolve(undefined),
      getFulfillment: () => Promise.reject(new Error('the notifications carry the fulfillment')),
    },
    quoter: {
      quote: (request) =>
        Promise.resolve({
          connectorAccount: 'connector-a',
          sourceAmount: request.amount + 1n,
          destinationAmount: request.amount,
          sourceHoldMs: 7_000,
          destinationHoldMs: request.destinationHoldMs,
          connectors: ['private.dfsp-a.connector-a'],
        }),
    },
    remote: {
      query: () =>
        Promise.resolve({
          identifier: 'bob@dfsp-b',
          ilpAddress: bobAddress,
          name: 'Bob',
          currencyCode: 'XOF',
          scale: 0,
          minimumAmount: 1n,
          maximumAmount: null,
          destinationHoldMs: 5_000,
        }),
      setupPayment: (_endpoint, request) => {
        const paymentRequest = createPaymentRequest({
          secret: receiverSecret,
          destinationAccount: bobAddress,
          destinationAmount: request.destinationAmount,
          data: request.data,
          expiresAt: new Date(Date.now() + 30_000),
        });
        return Promise.resolve({
          receiver: {
            identifier: 'bob@dfsp-b',
            ilpAddress: bobAddress,
            name: 'Bob',
            currencyCode: 'XOF',
            scale: 0,
            minimumAmount: 1n,
            maximumAmount: null,
            destinationHoldMs: 5_000,
          },
          destinationAddress: paymentRequest.destinationAddress,
          destinationAmount: paymentRequest.destinationAmount,
          ilpPacket: paymentRequest.packet,
          executionCondition: paymentRequest.condition,
          expiresAt: paymentRequest.expiresAt,
          data: paymentRequest.data,
        });
      },
    },
    directory: new Directory([{ dfsp: 'dfsp-b', spspEndpoint: '127.0.0.1:1', prefix: 'private.dfsp-b.' }]),
    store: counted,
    notifier: new PaymentNotifier(),
    principal: 'spsp-a',
    follow: () => Promise.resolve(),
    now: () => new Date(),
    logger: silentLogger,
  });
});

function preparedTransfer(command: PrepareTransferCommand): LedgerTransferView {
  return {
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
    preparedAt: new Date(),
    traceParent: null,
  };
}

let sequence = 0n;
function notification(
  transfer: LedgerTransferView,
  type: 'prepared' | 'executed',
): Extract<LedgerNotification, { kind: 'transfer' }> {
  sequence += 1n;
  return {
    kind: 'transfer',
    sequence,
    type,
    transfer: { ...transfer, state: type },
    fulfillment: type === 'executed' ? deriveFulfillment(receiverSecret, transfer.ilpPacket) : null,
  };
}

function pay(senderAccount = 'alice'): Promise<Payment> {
  return sending.pay({
    paymentId: randomUUID(),
    senderAccount,
    receiver: 'bob@dfsp-b',
    fixedAmount: 'destination',
    amount: 2_500n,
    data: Buffer.from('invoice 7'),
    maximumSourceAmount: undefined,
  });
}

describe('a payment’s records', () => {
  test.each([
    ['the prepare’s answer', 'answer first'],
    ['the ledger’s notification', 'notification first'],
  ])('with %s first, each transition is written once and read back as recorded', async (_case, order) => {
    let notified: Promise<void> = Promise.resolve();
    onPrepare = async (transfer) => {
      if (order === 'notification first') await sending.applyNotification(notification(transfer, 'prepared'));
      // The rest of the stream arrives after the answer, as the follower would hand it over.
      notified = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        if (order === 'answer first') await sending.applyNotification(notification(transfer, 'prepared'));
        await sending.applyNotification(notification(transfer, 'executed'));
      });
      return transfer;
    };
    const payment = await pay();
    await notified;
    expect(payment).toMatchObject({
      state: 'executed',
      attempt: 1,
      senderAccount: 'alice',
      fixedAmount: 'destination',
      amount: 2_500n,
      data: Buffer.from('invoice 7'),
      maximumSourceAmount: null,
      sourceAmount: 2_501n,
      sourceCurrencyCode: 'USD',
      sourceScale: 2,
      destinationAmount: 2_500n,
      destinationCurrencyCode: 'XOF',
      destinationScale: 0,
      connectorAccount: 'connector-a',
      connectors: ['private.dfsp-a.connector-a'],
      ilpError: null,
      failure: null,
    });
    expect(payment.fulfillment).toEqual(deriveFulfillment(receiverSecret, payment.ilpPacket!));
    expect(payment.preparedAt).toBeInstanceOf(Date);
    expect(payment.finishedAt).toBeInstanceOf(Date);
    expect(await store.findPayment(payment.id)).toEqual(payment);
    expect(await store.findPaymentByTransfer(payment.transferId!)).toEqual(payment);
    expect(Object.fromEntries(calls)).toEqual({
      insertPayment: 1,
      recordAttempt: 1,
      markPrepared: 1,
      markExecuted: 1,
      // Pay reads the payment once, when it starts waiting: the wake-up hands over the executed
      // record as the transition returned it (equal to the stored one, checked above).
      findPayment: 1,
    });
  });

  test('a notification about a transfer of no payment changes nothing', async () => {
    const stranger = preparedTransfer({
      transferId: randomUUID(),
      debitAccount: 'alice',
      creditAccount: 'connector-a',
      amount: 5n,
      executionCondition: randomBytes(32),
      expiresAt: new Date(Date.now() + 10_000),
      ilpPacket: Buffer.alloc(0),
    });
    await sending.applyNotification(notification(stranger, 'prepared'));
    await sending.applyNotification(notification(stranger, 'executed'));
    expect(await store.findPaymentByTransfer(stranger.id)).toBeUndefined();
  });

  test('an incoming payment reads back as recorded, and a repeat keeps the first record', async () => {
    const record: IncomingPayment = {
      transferId: randomUUID(),
      receiver: 'bob',
      account: 'bob',
      amount: 9_223_372_036_854_775_807n,
      destinationAddress: `${bobAddress}.token`,
      packetAmount: 9_223_372_036_854_775_807n,
      data: Buffer.from('memo'),
      executionCondition: randomBytes(32),
      state: 'executed',
      ilpErrorCode: null,
      ilpErrorMessage: null,
      receivedAt: new Date('2030-01-01T00:00:00.123Z'),
    };
    await store.recordIncoming(record);
    await store.recordIncoming({ ...record, state: 'rejected', ilpErrorCode: 'F05', ilpErrorMessage: 'late' });
    expect(await store.findIncoming(record.transferId)).toEqual(record);
    expect(await store.findIncoming(randomUUID())).toBeUndefined();
  });
});

describe('a prepare the ledger refuses fails the payment, with no money held', () => {
  test.each([
    ['the sender’s account does not exist', 'ACCOUNT_NOT_FOUND', 'alice', 'SENDER_ACCOUNT_NOT_FOUND'],
    ['the sender’s account is disabled', 'ACCOUNT_DISABLED', 'alice', 'SENDER_ACCOUNT_DISABLED'],
    ['the service does not own the sender’s account', 'PERMISSION_DENIED', 'alice', 'PERMISSION_DENIED'],
    ['the sender cannot cover the amount', 'INSUFFICIENT_FUNDS', 'alice', 'INSUFFICIENT_FUNDS'],
    ['the connector’s account does not exist', 'ACCOUNT_NOT_FOUND', 'connector-a', 'TRANSFER_REFUSED'],
  ])('%s: %s about %s is %s', async (_case, ledgerReason, account, reason) => {
    let transferId: string | undefined;
    onPrepare = (transfer) => {
      transferId = transfer.id;
      return Promise.reject(new RemoteError('refused', ledgerReason, 'ledger: refused', { account }));
    };
    const error = await pay().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(SpspError);
    expect((error as SpspError).reason).toBe(reason);
    const payment = await store.findPaymentByTransfer(transferId!);
    expect(payment).toMatchObject({ state: 'failed', failure: { reason } });
  });
});
