/**
 * The SPSP service over real gRPC, PostgreSQL and ledger streams: the receiver side (Query,
 * SetupPayment, fulfilling incoming transfers) and the sender side (Quote, Pay, GetPayment,
 * WatchPayment), with idempotent Pay and its errors.
 */
import { createHash, randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import {
  FixedAmount,
  PaymentState,
  type PayRequest,
  type WatchPaymentResponse,
} from '../../src/gen/interclear/spsp/v1/spsp';
import { deriveFulfillment, deserializeIlpPayment } from '../../src/ilp';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import { conservation } from '../support/ledger';
import { waitUntil } from '../support/processes';
import { directQuote, failure, startSpspPair, type SpspPair } from './support';

let pair: SpspPair;

beforeAll(async () => {
  pair = await startSpspPair();
}, 60_000);

afterAll(() => pair.stop());

afterEach(async () => {
  // Every test leaves the ledger with no money created or lost.
  const totals = await conservation(pair.ledger.ledger);
  expect(totals.total).toBe(totals.netDeposits);
});

async function balance(account: string) {
  const response = await pair.ledger.client('admin').getAccount({ name: account });
  return { balance: response.account!.balance, held: response.account!.heldAmount };
}

function payRequest(overrides: Partial<PayRequest> = {}): PayRequest {
  return {
    paymentId: randomUUID(),
    senderAccount: 'alice',
    receiver: 'bob@dfsp-b',
    amount: { $case: 'destinationAmount', value: 250n },
    data: Buffer.from('invoice 42'),
    ...overrides,
  };
}

describe('SpspService (receiver side)', () => {
  test('Query describes a receiver by identifier or ILP address', async () => {
    const byIdentifier = await pair.receiverServer.query({ receiver: 'bob@dfsp-b' });
    expect(byIdentifier.receiver).toMatchObject({
      identifier: 'bob@dfsp-b',
      ilpAddress: 'private.local.bob',
      name: 'Bob',
      currencyCode: 'USD',
      scale: 2,
      minimumAmount: 1n,
      maximumAmount: undefined,
      destinationHoldDuration: { seconds: 3n, nanos: 0 },
    });
    const byAddress = await pair.receiverServer.query({ receiver: 'private.local.erin' });
    expect(byAddress.receiver).toMatchObject({ identifier: 'erin@dfsp-b', minimumAmount: 100n, maximumAmount: 500n });
  });

  test.each([
    ['an unknown name', 'nobody@dfsp-b', status.NOT_FOUND, 'RECEIVER_NOT_FOUND'],
    ['another DFSP’s receiver', 'bob@dfsp-x', status.NOT_FOUND, 'RECEIVER_NOT_FOUND'],
    ['an address outside the ledger', 'private.elsewhere.bob', status.NOT_FOUND, 'RECEIVER_NOT_FOUND'],
    ['a receiver disabled in the configuration', 'carol@dfsp-b', status.FAILED_PRECONDITION, 'RECEIVER_DISABLED'],
    ['a receiver whose ledger account is disabled', 'dora@dfsp-b', status.FAILED_PRECONDITION, 'RECEIVER_DISABLED'],
    ['text that names nothing', 'not a receiver', status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
  ])('Query of %s fails with its reason', async (_case, receiver, code, reason) => {
    const error = await failure(pair.receiverServer.query({ receiver }));
    expect(error).toMatchObject({ code, reason, domain: 'interclear.spsp.v1.SpspService' });
    if (code === status.INVALID_ARGUMENT) expect(error.fieldViolations[0].field).toBe('receiver');
  });

  test('SetupPayment returns a packet and a condition only the receiver can fulfil', async () => {
    const before = new Date();
    const { paymentRequest } = await pair.receiverServer.setupPayment({
      receiver: 'bob@dfsp-b',
      destinationAmount: 1234n,
      data: Buffer.from('memo'),
    });
    const packet = deserializeIlpPayment(paymentRequest!.ilpPacket);
    expect(packet).toEqual({ amount: 1234n, account: paymentRequest!.destinationAddress, data: Buffer.from('memo') });
    expect(paymentRequest!.destinationAddress.startsWith('private.local.bob.')).toBe(true);
    const fulfillment = deriveFulfillment(pair.secretB, paymentRequest!.ilpPacket);
    expect(createHash('sha256').update(fulfillment).digest()).toEqual(paymentRequest!.executionCondition);
    expect(paymentRequest!.expiryTime!.getTime()).toBeGreaterThanOrEqual(before.getTime() + 29_000);
    // Two requests for the same amount never share a condition.
    const again = await pair.receiverServer.setupPayment({
      receiver: 'bob@dfsp-b',
      destinationAmount: 1234n,
      data: Buffer.alloc(0),
    });
    expect(again.paymentRequest!.executionCondition).not.toEqual(paymentRequest!.executionCondition);
  });

  test.each([
    ['below the minimum', 99n, 'AMOUNT_BELOW_MINIMUM'],
    ['above the maximum', 501n, 'AMOUNT_ABOVE_MAXIMUM'],
  ])('SetupPayment of an amount %s fails with the limits in ErrorInfo', async (_case, amount, reason) => {
    const error = await failure(
      pair.receiverServer.setupPayment({ receiver: 'erin@dfsp-b', destinationAmount: amount, data: Buffer.alloc(0) }),
    );
    expect(error).toMatchObject({ code: status.FAILED_PRECONDITION, reason });
    expect(error.metadata).toMatchObject({
      minimum_amount: '100',
      maximum_amount: '500',
      currency_code: 'USD',
      scale: '2',
    });
  });

  test.each([
    ['zero', 0n],
    ['more than any ledger carries (2^63)', 2n ** 63n],
    ['the largest uint64', 2n ** 64n - 1n],
  ])('SetupPayment of %s is invalid', async (_case, destinationAmount) => {
    const error = await failure(
      pair.receiverServer.setupPayment({ receiver: 'bob@dfsp-b', destinationAmount, data: Buffer.alloc(0) }),
    );
    expect(error).toMatchObject({
      code: status.INVALID_ARGUMENT,
      fieldViolations: [{ field: 'destination_amount', description: 'must be from 1 to 2^63 - 1 minor units' }],
    });
  });
});

describe('PaymentService (sender side)', () => {
  test('Pay with a fixed destination amount: executed, with the fulfillment as proof', async () => {
    pair.setQuote(directQuote('bob'));
    const [aliceBefore, bobBefore] = [await balance('alice'), await balance('bob')];
    const { payment } = await pair.payments.pay(payRequest());
    expect(payment).toMatchObject({
      state: PaymentState.PAYMENT_STATE_EXECUTED,
      fixedAmount: FixedAmount.FIXED_AMOUNT_DESTINATION,
      sourceAmount: 250n,
      destinationAmount: 250n,
      destinationCurrencyCode: 'USD',
      connectorAccount: 'bob',
    });
    expect(createHash('sha256').update(payment!.fulfillment).digest()).toEqual(payment!.executionCondition);
    expect(await balance('alice')).toEqual({ balance: aliceBefore.balance - 250n, held: 0n });
    expect((await balance('bob')).balance).toBe(bobBefore.balance + 250n);
    // The receiver recorded what it received, with the packet's data.
    // (B records it once the ledger confirmed, which may be just after A heard of it.)
    const received = await waitUntil('B to record the payment', () =>
      pair.spspB.store.findIncoming(payment!.transferId),
    );
    expect(received).toMatchObject({
      receiver: 'bob',
      state: 'executed',
      amount: 250n,
      data: Buffer.from('invoice 42'),
    });
  });

  test('Pay with a fixed source amount', async () => {
    pair.setQuote(directQuote('bob'));
    const { payment } = await pair.payments.pay(payRequest({ amount: { $case: 'sourceAmount', value: 175n } }));
    expect(payment).toMatchObject({
      state: PaymentState.PAYMENT_STATE_EXECUTED,
      fixedAmount: FixedAmount.FIXED_AMOUNT_SOURCE,
      sourceAmount: 175n,
      destinationAmount: 175n,
    });
  });

  test('Pay to a receiver named by its ILP address finds its DFSP by the directory prefix', async () => {
    pair.setQuote(directQuote('bob'));
    const { payment } = await pair.payments.pay(payRequest({ receiver: 'private.local.bob' }));
    expect(payment).toMatchObject({ state: PaymentState.PAYMENT_STATE_EXECUTED, receiver: 'private.local.bob' });
    expect(payment!.destinationAddress.startsWith('private.local.bob.')).toBe(true);
  });

  test('Quote prices a payment without moving money', async () => {
    pair.setQuote(directQuote('bob', 4_000));
    const before = await balance('alice');
    const { quote } = await pair.payments.quote({
      receiver: 'bob@dfsp-b',
      amount: { $case: 'destinationAmount', value: 99n },
    });
    expect(quote).toMatchObject({
      sourceAmount: 99n,
      destinationAmount: 99n,
      sourceCurrencyCode: 'USD',
      connectorAccount: 'bob',
      sourceHoldDuration: { seconds: 4n, nanos: 0 },
      fixedAmount: FixedAmount.FIXED_AMOUNT_DESTINATION,
    });
    expect(quote!.receiver!.identifier).toBe('bob@dfsp-b');
    expect(await balance('alice')).toEqual(before);
  });

  test('Pay is idempotent by payment id: the same content returns the stored payment', async () => {
    pair.setQuote(directQuote('bob'));
    const request = payRequest();
    const first = await pair.payments.pay(request);
    const afterFirst = await balance('alice');
    const [second, third] = await Promise.all([pair.payments.pay(request), pair.payments.pay(request)]);
    expect(second.payment).toEqual(first.payment);
    expect(third.payment).toEqual(first.payment);
    expect(await balance('alice')).toEqual(afterFirst);
    const error = await failure(pair.payments.pay({ ...request, amount: { $case: 'destinationAmount', value: 251n } }));
    expect(error).toMatchObject({
      code: status.ALREADY_EXISTS,
      reason: 'ALREADY_EXISTS',
      domain: 'interclear.spsp.v1.PaymentService',
    });
  });

  test('concurrent Pays of one new id make one payment', async () => {
    pair.setQuote(directQuote('bob'));
    const request = payRequest({ amount: { $case: 'destinationAmount', value: 10n } });
    const before = await balance('alice');
    const results = await Promise.all([1, 2, 3, 4].map(() => pair.payments.pay(request)));
    for (const result of results) expect(result.payment).toEqual(results[0].payment);
    expect((await balance('alice')).balance).toBe(before.balance - 10n);
  });

  test('insufficient funds fail the payment, which the same Pay retries once funded', async () => {
    pair.setQuote(directQuote('bob'));
    const { balance: available } = await balance('alice');
    const request = payRequest({ amount: { $case: 'destinationAmount', value: available + 1n } });
    const error = await failure(pair.payments.pay(request));
    expect(error).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'INSUFFICIENT_FUNDS' });
    expect(error.metadata.payment_id).toBeUndefined();
    const { payment: failed } = await pair.payments.getPayment({ paymentId: request.paymentId });
    expect(failed).toMatchObject({
      state: PaymentState.PAYMENT_STATE_FAILED,
      failure: { reason: 'INSUFFICIENT_FUNDS' },
    });
    // A repeat while still unfunded fails the same way.
    expect(await failure(pair.payments.pay(request))).toMatchObject({ reason: 'INSUFFICIENT_FUNDS' });
    await pair.ledger
      .client('admin')
      .deposit({ depositId: randomUUID(), account: 'alice', amount: 1n, externalReference: 'top-up' });
    const { payment } = await pair.payments.pay(request);
    expect(payment).toMatchObject({ state: PaymentState.PAYMENT_STATE_EXECUTED, destinationAmount: available + 1n });
    expect(await balance('alice')).toEqual({ balance: 0n, held: 0n });
    await pair.ledger
      .client('admin')
      .deposit({ depositId: randomUUID(), account: 'alice', amount: 100_000n, externalReference: 'refill' });
  });

  test.each([
    ['an unknown receiver', { receiver: 'nobody@dfsp-b' }, status.NOT_FOUND, 'RECEIVER_NOT_FOUND'],
    ['a DFSP missing from the directory', { receiver: 'bob@dfsp-x' }, status.NOT_FOUND, 'UNKNOWN_DFSP'],
    ['a receiver of the sender’s own DFSP', { receiver: 'alice@dfsp-a' }, status.NOT_FOUND, 'UNKNOWN_DFSP'],
    ['a disabled receiver', { receiver: 'carol@dfsp-b' }, status.FAILED_PRECONDITION, 'RECEIVER_DISABLED'],
    [
      'an amount above the receiver’s maximum',
      { receiver: 'erin@dfsp-b', amount: { $case: 'destinationAmount', value: 501n } },
      status.FAILED_PRECONDITION,
      'AMOUNT_ABOVE_MAXIMUM',
    ],
    ['an unknown sender account', { senderAccount: 'zed' }, status.NOT_FOUND, 'SENDER_ACCOUNT_NOT_FOUND'],
    ['a disabled sender account', { senderAccount: 'frank' }, status.FAILED_PRECONDITION, 'SENDER_ACCOUNT_DISABLED'],
    [
      'an account the service does not own',
      { senderAccount: 'connector' },
      status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    ],
    [
      'a quote above the maximum source amount',
      { maximumSourceAmount: 249n },
      status.FAILED_PRECONDITION,
      'SOURCE_AMOUNT_ABOVE_MAXIMUM',
    ],
  ] as Array<[string, Partial<PayRequest>, grpc.status, string]>)(
    'Pay to %s fails before any money is held',
    async (_case, overrides, code, reason) => {
      pair.setQuote(directQuote('bob'));
      const before = await balance('alice');
      const request = payRequest(overrides);
      expect(await failure(pair.payments.pay(request))).toMatchObject({ code, reason });
      expect(await balance('alice')).toEqual(before);
      const { payment } = await pair.payments.getPayment({ paymentId: request.paymentId });
      expect(payment).toMatchObject({ state: PaymentState.PAYMENT_STATE_FAILED, failure: { reason } });
    },
  );

  test('a receiver of the sender’s own DFSP: the refusal says so, rather than that no DFSP serves it', async () => {
    const mine = await failure(pair.payments.pay(payRequest({ receiver: 'alice@dfsp-a' })));
    expect(mine.message).toContain('"alice@dfsp-a" is at this DFSP (dfsp-a)');
    expect(mine.message).toContain('a payment within one DFSP is booked on its own ledger');
    const unknown = await failure(pair.payments.pay(payRequest({ receiver: 'bob@dfsp-x' })));
    expect(unknown.message).toBe('no DFSP in the directory serves "bob@dfsp-x"');
  });

  test('a quote the connector refuses fails with its ILP code', async () => {
    pair.setQuote(() => ({ ilpCode: 'F02', message: 'no route' }));
    const error = await failure(pair.payments.pay(payRequest()));
    expect(error).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: 'QUOTE_FAILED',
      metadata: { ilp_code: 'F02' },
    });
  });

  test.each([
    ['no payment id', { paymentId: 'not-a-uuid' }, 'payment_id'],
    ['no amount', { amount: undefined }, 'amount'],
    ['a zero amount', { amount: { $case: 'sourceAmount', value: 0n } }, 'source_amount'],
    [
      'a cap on a fixed source',
      { amount: { $case: 'sourceAmount', value: 5n }, maximumSourceAmount: 5n },
      'maximum_source_amount',
    ],
    ['too much data', { data: Buffer.alloc(4097) }, 'data'],
    ['no receiver', { receiver: '' }, 'receiver'],
    ['a receiver that names nothing', { receiver: 'bob@@dfsp-b' }, 'receiver'],
    ['a NUL byte in the receiver', { receiver: 'bob\u0000@dfsp-b' }, 'receiver'],
    ['a NUL byte in the sender account', { senderAccount: 'alice\u0000' }, 'sender_account'],
  ] as Array<[string, Partial<PayRequest>, string]>)(
    'Pay with %s is invalid and records nothing',
    async (_case, overrides, field) => {
      const request = payRequest(overrides);
      const error = await failure(pair.payments.pay(request));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.fieldViolations.map((violation) => violation.field)).toContain(field);
      if (field === 'payment_id') return;
      expect(await failure(pair.payments.getPayment({ paymentId: request.paymentId }))).toMatchObject({
        code: status.NOT_FOUND,
        reason: 'PAYMENT_NOT_FOUND',
      });
    },
  );

  test('a Pay refused for a malformed receiver leaves its id free: the corrected Pay runs', async () => {
    pair.setQuote(directQuote('bob'));
    const request = payRequest({ receiver: 'bob@@dfsp-b' });
    expect(await failure(pair.payments.pay(request))).toMatchObject({ code: status.INVALID_ARGUMENT });
    const { payment } = await pair.payments.pay({ ...request, receiver: 'bob@dfsp-b' });
    expect(payment).toMatchObject({ state: PaymentState.PAYMENT_STATE_EXECUTED, receiver: 'bob@dfsp-b' });
  });

  test('Quote of a receiver that names nothing is invalid', async () => {
    const error = await failure(
      pair.payments.quote({ receiver: 'bob\u0000@dfsp-b', amount: { $case: 'sourceAmount', value: 5n } }),
    );
    expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, fieldViolations: [{ field: 'receiver' }] });
  });

  test('the receiver rejects a payment that delivers too little: REJECTED with its ILP error', async () => {
    // A stand-in connector that keeps a cut it did not quote: the last transfer carries less than
    // the packet asks for.
    pair.setQuote(
      (request) => ({ ...(directQuote('bob')(request) as object), sourceAmount: request.amount - 1n }) as never,
    );
    const before = await balance('alice');
    const { payment } = await pair.payments.pay(payRequest({ amount: { $case: 'destinationAmount', value: 300n } }));
    expect(payment).toMatchObject({
      state: PaymentState.PAYMENT_STATE_REJECTED,
      ilpError: {
        code: 'F04',
        name: 'Insufficient Destination Amount',
        triggeredBy: 'private.local.bob',
        forwardedBy: [],
      },
    });
    expect(payment!.fulfillment).toHaveLength(0);
    expect(await balance('alice')).toEqual(before);
    const received = await waitUntil('B to record the refusal', () =>
      pair.spspB.store.findIncoming(payment!.transferId),
    );
    expect(received).toMatchObject({ state: 'rejected', ilpErrorCode: 'F04' });
  });

  test('nobody fulfils: the payment expires, the hold returns, and WatchPayment shows each step', async () => {
    pair.setQuote(directQuote('connector', 1_500));
    const before = await balance('alice');
    const request = payRequest();
    const paying = pair.payments.pay(request);
    const states = await new Promise<PaymentState[]>((resolve, reject) => {
      const seen: PaymentState[] = [];
      const open = () => {
        const stream = pair.payments.watchPayment({ paymentId: request.paymentId });
        stream.on('data', (response: WatchPaymentResponse) => seen.push(response.payment!.state));
        // 'status' comes once per stream, after its last message ('end' also follows an error).
        stream.on('status', (result: grpc.StatusObject) => {
          if (result.code === status.OK) resolve(seen);
        });
        stream.on('error', (error: grpc.ServiceError) => {
          // The payment may not be recorded yet when the watch starts.
          if (error.code === status.NOT_FOUND && seen.length === 0) setTimeout(open, 50);
          else reject(error);
        });
      };
      open();
    });
    const { payment } = await paying;
    expect(payment).toMatchObject({ state: PaymentState.PAYMENT_STATE_EXPIRED, ilpError: { code: 'R00' } });
    expect(states).toContain(PaymentState.PAYMENT_STATE_PREPARED);
    expect(states[states.length - 1]).toBe(PaymentState.PAYMENT_STATE_EXPIRED);
    expect(await balance('alice')).toEqual(before);
  });

  test('GetPayment of an unknown id is NOT_FOUND', async () => {
    expect(await failure(pair.payments.getPayment({ paymentId: randomUUID() }))).toMatchObject({
      code: status.NOT_FOUND,
      reason: 'PAYMENT_NOT_FOUND',
    });
  });

  test('the receiver resumes from its cursor: a transfer prepared while it was down is fulfilled', async () => {
    const { paymentRequest } = await pair.receiverServer.setupPayment({
      receiver: 'bob@dfsp-b',
      destinationAmount: 77n,
      data: Buffer.alloc(0),
    });
    const transferId = randomUUID();
    await pair.restartB(async () => {
      // While B is down, DFSP A prepares the transfer to bob: only B's replay can see it.
      await pair.ledger.client('spsp-a').prepareTransfer({
        transferId,
        debitAccount: 'alice',
        creditAccount: 'bob',
        amount: 77n,
        executionCondition: paymentRequest!.executionCondition,
        expiryTime: new Date(Date.now() + 10_000),
        ilpPacket: paymentRequest!.ilpPacket,
        memo: Buffer.alloc(0),
        traceParent: '',
      });
    });
    const executed = await waitUntil('the transfer to execute', async () => {
      const { transfer } = await pair.ledger.client('admin').getTransfer({ transferId });
      return transfer!.state === TransferState.TRANSFER_STATE_EXECUTED ? transfer : undefined;
    });
    expect(executed.amount).toBe(77n);
    const received = await waitUntil('B to record the payment', () => pair.spspB.store.findIncoming(transferId));
    expect(received).toMatchObject({ state: 'executed', receiver: 'bob' });
  });
});
