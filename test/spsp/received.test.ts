/**
 * The receiving DFSP's view of what its receivers got (PaymentService/GetIncomingPayment and
 * ListIncomingPayments): each transfer the receiver decided, with the sender's data (an invoice
 * reference), the amount and the outcome — paid, or rejected with its ILP error. Real ledger,
 * SPSP services and databases.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { IncomingPaymentState, PaymentState } from '../../src/gen/interclear/spsp/v1/spsp';
import { createPaymentClient, type PaymentClient } from '../../src/spsp/client';
import { waitUntil } from '../support/processes';
import { directQuote, failure, startSpspPair, type SpspPair } from './support';

let pair: SpspPair;
/** DFSP B's PaymentService, as its own back office (admin). */
let backOffice: PaymentClient;
const paid: string[] = [];
let rejected: string;

beforeAll(async () => {
  pair = await startSpspPair();
  backOffice = createPaymentClient(pair.spspB.address, { principal: 'admin' });
  for (const [receiver, invoice, amount] of [
    ['bob@dfsp-b', 'invoice 1', 250n],
    ['erin@dfsp-b', 'invoice 2', 300n],
    ['bob@dfsp-b', 'invoice 3', 120n],
  ] as const) {
    // The stand-in connector quotes straight to the receiver's account (one shared ledger).
    pair.setQuote(directQuote(receiver.split('@')[0]));
    const { payment } = await pair.payments.pay({
      paymentId: randomUUID(),
      senderAccount: 'alice',
      receiver,
      amount: { $case: 'destinationAmount', value: amount },
      data: Buffer.from(invoice),
    });
    expect(payment?.state).toBe(PaymentState.PAYMENT_STATE_EXECUTED);
    paid.push(payment!.transferId);
  }
  // A transfer to bob that does not match its payment request (another condition): rejected F05.
  const { paymentRequest } = await pair.receiverServer.setupPayment({
    receiver: 'bob@dfsp-b',
    destinationAmount: 50n,
    data: Buffer.from('forged'),
  });
  rejected = randomUUID();
  await pair.ledger.client('spsp-a').prepareTransfer({
    transferId: rejected,
    debitAccount: 'alice',
    creditAccount: 'bob',
    amount: 50n,
    executionCondition: createHash('sha256').update(randomBytes(32)).digest(),
    expiryTime: new Date(Date.now() + 10_000),
    ilpPacket: paymentRequest!.ilpPacket,
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  await waitUntil('the forged transfer to be decided', () => pair.spspB.store.findIncoming(rejected));
}, 60_000);

afterAll(async () => {
  backOffice?.close();
  await pair?.stop();
});

test('GetIncomingPayment: the sender data, amount, asset and outcome of a received payment', async () => {
  const { payment } = await backOffice.getIncomingPayment({ transferId: paid[0].toUpperCase() });
  expect(payment).toMatchObject({
    transferId: paid[0],
    receiver: 'bob@dfsp-b',
    account: 'bob',
    amount: 250n,
    currencyCode: 'USD',
    scale: 2,
    // The receiver's address and the payment request's own suffix (IPR).
    destinationAddress: expect.stringMatching(/^private\.local\.bob\.[A-Za-z0-9_~-]+$/),
    packetAmount: 250n,
    data: Buffer.from('invoice 1'),
    state: IncomingPaymentState.INCOMING_PAYMENT_STATE_EXECUTED,
    ilpErrorCode: '',
  });
  expect(payment?.receivedAt).toBeInstanceOf(Date);
});

test('GetIncomingPayment of a rejected transfer carries the ILP error it was rejected with', async () => {
  const { payment } = await backOffice.getIncomingPayment({ transferId: rejected });
  expect(payment).toMatchObject({
    receiver: 'bob@dfsp-b',
    amount: 50n,
    state: IncomingPaymentState.INCOMING_PAYMENT_STATE_REJECTED,
    ilpErrorCode: 'F05',
    data: Buffer.from('forged'),
  });
  expect(payment?.ilpErrorMessage).not.toBe('');
});

test('ListIncomingPayments: in the order decided, by receiver, by state, page by page', async () => {
  const all = await backOffice.listIncomingPayments({ receiver: '', state: 0, pageSize: 0, pageToken: '' });
  expect(all.payments.map((payment) => payment.transferId)).toEqual([...paid, rejected]);
  expect(all.nextPageToken).toBe('');

  const bobs = await backOffice.listIncomingPayments({
    receiver: 'private.local.bob',
    state: IncomingPaymentState.INCOMING_PAYMENT_STATE_EXECUTED,
    pageSize: 0,
    pageToken: '',
  });
  expect(bobs.payments.map((payment) => payment.data.toString())).toEqual(['invoice 1', 'invoice 3']);

  const pages: string[][] = [];
  let pageToken = '';
  do {
    const page = await backOffice.listIncomingPayments({ receiver: 'bob@dfsp-b', state: 0, pageSize: 2, pageToken });
    pages.push(page.payments.map((payment) => payment.transferId));
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  expect(pages).toEqual([[paid[0], paid[2]], [rejected]]);
});

test.each([
  ['a malformed receiver', { receiver: 'bob' }, 'receiver'],
  ["another DFSP's receiver", { receiver: 'bob@dfsp-a' }, 'receiver'],
  ['an address of no receiver', { receiver: 'private.local.nobody' }, 'receiver'],
  ['a page size above 1000', { pageSize: 1001 }, 'page_size'],
  ['a forged page token', { pageToken: Buffer.from('yesterday|x').toString('base64url') }, 'page_token'],
  ['an unknown state', { state: 42 as IncomingPaymentState }, 'state'],
])('ListIncomingPayments with %s is INVALID_ARGUMENT naming the field', async (_case, change, field) => {
  const error = await failure(
    backOffice.listIncomingPayments({ receiver: '', state: 0, pageSize: 0, pageToken: '', ...change }),
  );
  expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
  expect(error.fieldViolations.map((violation) => violation.field)).toEqual([field]);
});

test('GetIncomingPayment of a transfer never received is NOT_FOUND; of a malformed id INVALID_ARGUMENT', async () => {
  expect(await failure(backOffice.getIncomingPayment({ transferId: randomUUID() }))).toMatchObject({
    code: status.NOT_FOUND,
    reason: 'INCOMING_PAYMENT_NOT_FOUND',
  });
  expect(await failure(backOffice.getIncomingPayment({ transferId: 'nope' }))).toMatchObject({
    code: status.INVALID_ARGUMENT,
    fieldViolations: [{ field: 'transfer_id', description: 'must be a UUID' }],
  });
});

test("another DFSP (not this DFSP's admin) may not read what its receivers got", async () => {
  const otherDfsp = createPaymentClient(pair.spspB.address, { principal: 'spsp-a' });
  try {
    expect(await failure(otherDfsp.getIncomingPayment({ transferId: paid[0] }))).toMatchObject({
      code: status.PERMISSION_DENIED,
    });
    expect(
      await failure(otherDfsp.listIncomingPayments({ receiver: '', state: 0, pageSize: 0, pageToken: '' })),
    ).toMatchObject({ code: status.PERMISSION_DENIED });
  } finally {
    otherDfsp.close();
  }
});

test('a transfer to be rejected that expired while the receiver was down is recorded as expired, without an ILP error', async () => {
  const { paymentRequest } = await pair.receiverServer.setupPayment({
    receiver: 'bob@dfsp-b',
    destinationAmount: 50n,
    data: Buffer.from('late'),
  });
  const transferId = randomUUID();
  await pair.restartB(async () => {
    // Another condition than its packet's (F05 when decided), and it expires before B is back.
    await pair.ledger.client('spsp-a').prepareTransfer({
      transferId,
      debitAccount: 'alice',
      creditAccount: 'bob',
      amount: 50n,
      executionCondition: createHash('sha256').update(randomBytes(32)).digest(),
      expiryTime: new Date(Date.now() + 800),
      ilpPacket: paymentRequest!.ilpPacket,
      memo: Buffer.alloc(0),
      traceParent: '',
    });
    await waitUntil('the transfer to expire on the ledger', async () => {
      const { transfer } = await pair.ledger.client('admin').getTransfer({ transferId });
      return transfer?.state === TransferState.TRANSFER_STATE_REJECTED ? true : undefined;
    });
  });
  const { payment } = await waitUntil('the late transfer to be recorded', () =>
    backOffice.getIncomingPayment({ transferId }).catch(() => undefined),
  );
  expect(payment).toMatchObject({
    state: IncomingPaymentState.INCOMING_PAYMENT_STATE_EXPIRED,
    ilpErrorCode: '',
    data: Buffer.from('late'),
  });
});
