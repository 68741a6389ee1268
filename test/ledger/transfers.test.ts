/**
 * The ledger's state machine and its errors (SPEC.md §4), table by table, through a real gRPC
 * socket and a real PostgreSQL, with an injected clock for expiry.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { RejectionReason, TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import { decodeGrpcError, decodeStatus } from '../../src/platform/errors';
import { conservation, newId, preimagePair, prepareRequest, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
let admin: LedgerClient;
let alice: LedgerClient;
let bob: LedgerClient;
let mallory: LedgerClient;

const empty = Buffer.alloc(0);

async function expectError(promise: Promise<unknown>, code: grpc.status, reason: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    const decoded = decodeGrpcError(error as grpc.ServiceError);
    expect({ code: decoded.code, reason: decoded.reason }).toEqual({ code, reason });
    expect(decoded.domain).toBe('interclear.ledger.v1.LedgerService');
    return;
  }
  throw new Error(`expected ${reason}, but the call succeeded`);
}

async function balances(...names: string[]) {
  const result: Record<string, { balance: bigint; held: bigint }> = {};
  for (const name of names) {
    const account = (await admin.getAccount({ name })).account;
    result[name] = { balance: account?.balance ?? 0n, held: account?.heldAmount ?? 0n };
  }
  return result;
}

beforeAll(async () => {
  ledger = await startTestLedger({ maxHoldMs: 30_000 });
  admin = ledger.client('admin');
  alice = ledger.client('alice');
  bob = ledger.client('bob');
  mallory = ledger.client('mallory');
  for (const [name, owner] of [
    ['alice', 'alice'],
    ['bob', 'bob'],
    ['carol', 'carol'],
    ['closed', 'carol'],
  ]) {
    await admin.createAccount({ name, owner, minimumBalanceUnlimited: false, disabled: name === 'closed' });
  }
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 10_000n, externalReference: 'seed' });
});

afterEach(async () => {
  const totals = await conservation(ledger.ledger);
  expect(totals.total).toBe(totals.netDeposits);
});

afterAll(() => ledger.stop());

describe('prepare', () => {
  test('holds the amount on the debit account and leaves the credit account alone', async () => {
    const before = await balances('alice', 'bob');
    const { transfer } = await alice.prepareTransfer(prepareRequest({ amount: 250n }));
    expect(transfer?.state).toBe(TransferState.TRANSFER_STATE_PREPARED);
    const after = await balances('alice', 'bob');
    expect(after.alice.balance).toBe(before.alice.balance - 250n);
    expect(after.alice.held).toBe(before.alice.held + 250n);
    expect(after.bob).toEqual(before.bob);
  });

  test('without a condition executes at once', async () => {
    const before = await balances('alice', 'bob');
    const { transfer } = await alice.prepareTransfer(
      prepareRequest({ amount: 7n, executionCondition: empty, expiryTime: undefined }),
    );
    expect(transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    expect(transfer?.executeTime).toBeInstanceOf(Date);
    const after = await balances('alice', 'bob');
    expect(after.alice.balance).toBe(before.alice.balance - 7n);
    expect(after.bob.balance).toBe(before.bob.balance + 7n);
  });

  test('is idempotent: the same id and content return the stored transfer, once', async () => {
    const request = prepareRequest({ amount: 40n });
    const before = await balances('alice');
    const first = await alice.prepareTransfer(request);
    const second = await alice.prepareTransfer(request);
    expect(second).toEqual(first);
    expect((await balances('alice')).alice.held).toBe(before.alice.held + 40n);
  });

  test('repeated after its expiry, returns the stored transfer, executed or expired (a retry whose answer was lost)', async () => {
    const executed = preimagePair();
    const executedRequest = prepareRequest({
      amount: 12n,
      executionCondition: executed.condition,
      expiryTime: new Date(Date.now() + 1_000),
    });
    const expiredRequest = prepareRequest({ amount: 13n, expiryTime: new Date(Date.now() + 1_000) });
    const newRequest = prepareRequest({ amount: 14n, expiryTime: new Date(Date.now() + 1_000) });
    await alice.prepareTransfer(executedRequest);
    await alice.prepareTransfer(expiredRequest);
    await bob.fulfillTransfer({ transferId: executedRequest.transferId, fulfillment: executed.fulfillment });
    const before = await balances('alice', 'bob');
    ledger.advanceClock(2_000);
    try {
      const single = await alice.prepareTransfer(executedRequest);
      expect(single.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
      const { results } = await alice.prepareTransfers({ transfers: [newRequest, executedRequest, expiredRequest] });
      const [fresh, repeated, unfulfilled] = results.map((item) => item.result);
      // A new transfer whose expiry has passed is still invalid, named by its place in the list.
      const refusal = fresh?.$case === 'error' ? decodeStatus(fresh.value) : undefined;
      expect(refusal?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(refusal?.fieldViolations).toEqual([
        { field: 'transfers[0].expiry_time', description: 'must be in the future' },
      ]);
      expect(repeated?.$case === 'transfer' && repeated.value.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
      // Past its expiry and not fulfilled: the repeat finds it expired (rejected), not prepared anew.
      expect(unfulfilled?.$case === 'transfer' && unfulfilled.value).toMatchObject({
        state: TransferState.TRANSFER_STATE_REJECTED,
        rejectionReason: RejectionReason.REJECTION_REASON_EXPIRED,
      });
      await expectError(
        alice.getTransfer({ transferId: newRequest.transferId }),
        grpc.status.NOT_FOUND,
        'TRANSFER_NOT_FOUND',
      );
    } finally {
      ledger.advanceClock(-2_000);
    }
    // The expired hold went back to alice; nothing else moved.
    expect(await balances('alice', 'bob')).toEqual({
      ...before,
      alice: { balance: before.alice.balance + 13n, held: before.alice.held - 13n },
    });
  });

  test.each([
    ['amount', { amount: 41n }],
    ['credit account', { creditAccount: 'carol' }],
    ['condition', { executionCondition: preimagePair().condition }],
    ['packet', { ilpPacket: Buffer.from('other') }],
  ])('the same id with a different %s is ALREADY_EXISTS', async (_label, change) => {
    const request = prepareRequest({ amount: 40n });
    await alice.prepareTransfer(request);
    await expectError(alice.prepareTransfer({ ...request, ...change }), grpc.status.ALREADY_EXISTS, 'ALREADY_EXISTS');
  });

  test("another principal's replay of a prepare is PERMISSION_DENIED, as a new one would be; the owner's is not", async () => {
    const request = prepareRequest({ amount: 5n });
    const first = await alice.prepareTransfer(request);
    await expectError(mallory.prepareTransfer(request), grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED');
    await expectError(
      mallory.prepareTransfer({ ...request, amount: 6n }),
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    );
    expect(await alice.prepareTransfer(request)).toEqual(first);
  });

  test.each([
    ['an unknown debit account', 'admin', { debitAccount: 'nobody' }, grpc.status.NOT_FOUND, 'ACCOUNT_NOT_FOUND'],
    ['an unknown credit account', 'alice', { creditAccount: 'nobody' }, grpc.status.NOT_FOUND, 'ACCOUNT_NOT_FOUND'],
    ["another principal's account", 'mallory', {}, grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
    [
      'a disabled credit account',
      'alice',
      { creditAccount: 'closed' },
      grpc.status.FAILED_PRECONDITION,
      'ACCOUNT_DISABLED',
    ],
    ['more than the balance', 'alice', { amount: 1_000_000n }, grpc.status.FAILED_PRECONDITION, 'INSUFFICIENT_FUNDS'],
  ])('from %s is refused and changes nothing', async (_label, caller, change, code, reason) => {
    const before = await balances('alice', 'bob', 'carol');
    await expectError(ledger.client(caller).prepareTransfer(prepareRequest(change)), code, reason);
    expect(await balances('alice', 'bob', 'carol')).toEqual(before);
  });

  test('respects a negative minimum balance (credit line) and an unlimited one', async () => {
    await admin.createAccount({
      name: 'credit-line',
      owner: 'carol',
      minimumBalance: -50n,
      minimumBalanceUnlimited: false,
      disabled: false,
    });
    await admin.createAccount({ name: 'settlement', owner: 'carol', minimumBalanceUnlimited: true, disabled: false });
    const carol = ledger.client('carol');
    await carol.prepareTransfer(prepareRequest({ debitAccount: 'credit-line', amount: 50n }));
    await expectError(
      carol.prepareTransfer(prepareRequest({ debitAccount: 'credit-line', amount: 1n })),
      grpc.status.FAILED_PRECONDITION,
      'INSUFFICIENT_FUNDS',
    );
    await carol.prepareTransfer(prepareRequest({ debitAccount: 'settlement', amount: 1_000_000_000n }));
    expect((await balances('settlement')).settlement.balance).toBe(-1_000_000_000n);
  });
});

describe('fulfil', () => {
  test('executes with the matching fulfillment, credits the amount, and repeats harmlessly', async () => {
    const { fulfillment, condition } = preimagePair();
    const request = prepareRequest({ amount: 60n, executionCondition: condition });
    await alice.prepareTransfer(request);
    const before = await balances('alice', 'bob');
    const executed = await bob.fulfillTransfer({ transferId: request.transferId, fulfillment });
    expect(executed.transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
    const after = await balances('alice', 'bob');
    expect(after.alice.held).toBe(before.alice.held - 60n);
    expect(after.alice.balance).toBe(before.alice.balance);
    expect(after.bob.balance).toBe(before.bob.balance + 60n);
    const again = await bob.fulfillTransfer({ transferId: request.transferId, fulfillment });
    expect(again).toEqual(executed);
    expect(await balances('alice', 'bob')).toEqual(after);
    const stored = await alice.getFulfillment({ transferId: request.transferId });
    expect(Buffer.from(stored.fulfillment)).toEqual(fulfillment);
  });

  test('with a wrong fulfillment is UNMET_CONDITION and the transfer stays prepared', async () => {
    const request = prepareRequest();
    await alice.prepareTransfer(request);
    await expectError(
      bob.fulfillTransfer({ transferId: request.transferId, fulfillment: randomBytes(32) }),
      grpc.status.FAILED_PRECONDITION,
      'UNMET_CONDITION',
    );
    expect((await alice.getTransfer({ transferId: request.transferId })).transfer?.state).toBe(
      TransferState.TRANSFER_STATE_PREPARED,
    );
  });

  test.each([
    ['by the debit side', 'alice', grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
    ['by a stranger', 'mallory', grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED'],
  ])('%s is refused', async (_label, caller, code, reason) => {
    const { fulfillment, condition } = preimagePair();
    const request = prepareRequest({ executionCondition: condition });
    await alice.prepareTransfer(request);
    await expectError(
      ledger.client(caller).fulfillTransfer({ transferId: request.transferId, fulfillment }),
      code,
      reason,
    );
  });

  test('of an unknown transfer is TRANSFER_NOT_FOUND', async () => {
    await expectError(
      bob.fulfillTransfer({ transferId: newId(), fulfillment: randomBytes(32) }),
      grpc.status.NOT_FOUND,
      'TRANSFER_NOT_FOUND',
    );
  });

  test('of a transfer without a condition is TRANSFER_NOT_CONDITIONAL', async () => {
    const request = prepareRequest({ amount: 1n, executionCondition: empty, expiryTime: undefined });
    await alice.prepareTransfer(request);
    await expectError(
      bob.fulfillTransfer({ transferId: request.transferId, fulfillment: randomBytes(32) }),
      grpc.status.FAILED_PRECONDITION,
      'TRANSFER_NOT_CONDITIONAL',
    );
  });

  test('after rejection is TRANSFER_ALREADY_FINAL', async () => {
    const { fulfillment, condition } = preimagePair();
    const request = prepareRequest({ executionCondition: condition });
    await alice.prepareTransfer(request);
    await bob.rejectTransfer({ transferId: request.transferId, ilpError: ilpError('F99') });
    await expectError(
      bob.fulfillTransfer({ transferId: request.transferId, fulfillment }),
      grpc.status.FAILED_PRECONDITION,
      'TRANSFER_ALREADY_FINAL',
    );
  });

  test('after expiry on the database clock is TRANSFER_EXPIRED and returns the hold', async () => {
    const { fulfillment, condition } = preimagePair();
    const request = prepareRequest({
      amount: 33n,
      executionCondition: condition,
      expiryTime: new Date(Date.now() + 1_000),
    });
    const before = await balances('alice', 'bob');
    await alice.prepareTransfer(request);
    ledger.advanceClock(1_000);
    try {
      await expectError(
        bob.fulfillTransfer({ transferId: request.transferId, fulfillment }),
        grpc.status.FAILED_PRECONDITION,
        'TRANSFER_EXPIRED',
      );
    } finally {
      ledger.advanceClock(-1_000);
    }
    const { transfer } = await alice.getTransfer({ transferId: request.transferId });
    expect(transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
    expect(await balances('alice', 'bob')).toEqual(before);
  });
});

function ilpError(code: string) {
  return {
    code,
    name: 'Test',
    message: 'rejected by test',
    triggeredBy: 'test.ledger.bob',
    forwardedBy: [],
    data: empty,
  };
}

describe('reject', () => {
  test('returns the hold and records the ILP error; a repeat returns the rejected transfer', async () => {
    const request = prepareRequest({ amount: 70n });
    const before = await balances('alice');
    await alice.prepareTransfer(request);
    const rejected = await bob.rejectTransfer({ transferId: request.transferId, ilpError: ilpError('F06') });
    expect(rejected.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(rejected.transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_CANCELLED);
    expect(rejected.transfer?.ilpError?.code).toBe('F06');
    expect(await balances('alice')).toEqual(before);
    const again = await bob.rejectTransfer({ transferId: request.transferId, ilpError: ilpError('F06') });
    expect(again.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(await balances('alice')).toEqual(before);
  });

  test('is idempotent by its ILP error: another error is ALREADY_EXISTS, another trigger time is the same rejection', async () => {
    const request = prepareRequest({ amount: 8n });
    await alice.prepareTransfer(request);
    const error = { ...ilpError('F06'), triggerTime: new Date('2030-01-01T00:00:00.000Z') };
    const rejected = await bob.rejectTransfer({ transferId: request.transferId, ilpError: error });
    for (const change of [
      { code: 'F07' },
      { name: 'Other' },
      { message: 'rejected otherwise' },
      { triggeredBy: 'test.ledger.carol' },
      { forwardedBy: ['test.connector'] },
      { data: Buffer.from('x') },
    ]) {
      await expectError(
        bob.rejectTransfer({ transferId: request.transferId, ilpError: { ...error, ...change } }),
        grpc.status.ALREADY_EXISTS,
        'ALREADY_EXISTS',
      );
    }
    // A party repeating its rejection (after a crash, say) stamps the time anew.
    const repeated = { ...error, triggerTime: new Date('2030-01-01T00:00:01.000Z') };
    expect(await bob.rejectTransfer({ transferId: request.transferId, ilpError: repeated })).toEqual(rejected);
    const { triggerTime: _omitted, ...withoutTime } = error;
    expect(await bob.rejectTransfer({ transferId: request.transferId, ilpError: withoutTime })).toEqual(rejected);
  });

  test('after execution is TRANSFER_ALREADY_FINAL', async () => {
    const { fulfillment, condition } = preimagePair();
    const request = prepareRequest({ executionCondition: condition });
    await alice.prepareTransfer(request);
    await bob.fulfillTransfer({ transferId: request.transferId, fulfillment });
    await expectError(
      bob.rejectTransfer({ transferId: request.transferId, ilpError: ilpError('F06') }),
      grpc.status.FAILED_PRECONDITION,
      'TRANSFER_ALREADY_FINAL',
    );
  });

  test('by the debit side is PERMISSION_DENIED', async () => {
    const request = prepareRequest();
    await alice.prepareTransfer(request);
    await expectError(
      alice.rejectTransfer({ transferId: request.transferId, ilpError: ilpError('F06') }),
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    );
  });
});

describe('expiry sweeper', () => {
  test('rejects expired prepared transfers with EXPIRED and returns their holds', async () => {
    const before = await balances('alice', 'bob');
    const requests = [1, 2, 3].map((amount) =>
      prepareRequest({ amount: BigInt(amount), expiryTime: new Date(Date.now() + 2_000) }),
    );
    for (const request of requests) await alice.prepareTransfer(request);
    ledger.advanceClock(2_000);
    try {
      await ledger.ledger.sweeper.sweepUntilDone();
    } finally {
      ledger.advanceClock(-2_000);
    }
    for (const request of requests) {
      const { transfer } = await alice.getTransfer({ transferId: request.transferId });
      expect(transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
      expect(transfer?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
    }
    expect(await balances('alice', 'bob')).toEqual(before);
  });

  test('leaves transfers that have not expired', async () => {
    const request = prepareRequest({ expiryTime: new Date(Date.now() + 20_000) });
    await alice.prepareTransfer(request);
    await ledger.ledger.sweeper.sweepUntilDone();
    expect((await alice.getTransfer({ transferId: request.transferId })).transfer?.state).toBe(
      TransferState.TRANSFER_STATE_PREPARED,
    );
  });
});

describe('deposits and withdrawals', () => {
  test('are admin-only, idempotent, and withdrawals cannot overdraw', async () => {
    const id = newId();
    const request = { depositId: id, account: 'carol', amount: 500n, externalReference: 'settlement-42' };
    const first = await admin.deposit(request);
    expect(first.deposit?.balanceAfter).toBe(500n);
    expect(await admin.deposit(request)).toEqual(first);
    await expectError(admin.deposit({ ...request, amount: 501n }), grpc.status.ALREADY_EXISTS, 'ALREADY_EXISTS');
    await expectError(
      mallory.deposit({ ...request, depositId: newId() }),
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    );
    await expectError(
      admin.withdraw({ withdrawalId: newId(), account: 'carol', amount: 501n, externalReference: 'out' }),
      grpc.status.FAILED_PRECONDITION,
      'INSUFFICIENT_FUNDS',
    );
    const withdrawal = await admin.withdraw({
      withdrawalId: newId(),
      account: 'carol',
      amount: 200n,
      externalReference: 'out',
    });
    expect(withdrawal.withdrawal?.balanceAfter).toBe(300n);
  });

  test("a non-admin's replay of an admin's deposit is PERMISSION_DENIED", async () => {
    const request = { depositId: newId(), account: 'carol', amount: 5n, externalReference: 'replayed' };
    const first = await admin.deposit(request);
    await expectError(mallory.deposit(request), grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED');
    expect(await admin.deposit(request)).toEqual(first);
  });
});

describe('messages', () => {
  test("another principal's replay of a message is PERMISSION_DENIED; the sender's returns the message", async () => {
    const request = { messageId: newId(), fromAccount: 'alice', toAccount: 'bob', data: Buffer.from('secret') };
    const first = await alice.sendMessage(request);
    await expectError(mallory.sendMessage(request), grpc.status.PERMISSION_DENIED, 'PERMISSION_DENIED');
    await expectError(
      mallory.sendMessage({ ...request, data: Buffer.from('other') }),
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    );
    expect(await alice.sendMessage(request)).toEqual(first);
  });
});

describe('accounts', () => {
  test('creation is idempotent and admin-only; a different definition is ALREADY_EXISTS', async () => {
    const request = { name: 'dave', owner: 'dave', minimumBalanceUnlimited: false, disabled: false };
    const first = await admin.createAccount(request);
    expect(first.account?.ilpAddress).toBe('test.ledger.dave');
    expect(await admin.createAccount(request)).toEqual(first);
    await expectError(admin.createAccount({ ...request, owner: 'eve' }), grpc.status.ALREADY_EXISTS, 'ALREADY_EXISTS');
    await expectError(
      mallory.createAccount({ ...request, name: 'eve' }),
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    );
  });

  test('a disabled account cannot be debited; enabling it again allows it', async () => {
    await admin.createAccount({ name: 'frank', owner: 'frank', minimumBalanceUnlimited: false, disabled: false });
    await admin.deposit({ depositId: newId(), account: 'frank', amount: 10n, externalReference: 'seed' });
    await admin.updateAccount({ name: 'frank', disabled: true });
    const frank = ledger.client('frank');
    await expectError(
      frank.prepareTransfer(prepareRequest({ debitAccount: 'frank', amount: 1n })),
      grpc.status.FAILED_PRECONDITION,
      'ACCOUNT_DISABLED',
    );
    await admin.updateAccount({ name: 'frank', disabled: false });
    await frank.prepareTransfer(prepareRequest({ debitAccount: 'frank', amount: 1n }));
  });

  test('lists page by page, and a non-admin sees only their own accounts', async () => {
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await admin.listAccounts({ pageSize: 2, pageToken });
      expect(page.accounts.length).toBeLessThanOrEqual(2);
      seen.push(...page.accounts.map((account) => account.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['alice', 'bob', 'carol']));
    const own = await ledger.client('carol').listAccounts({ pageSize: 100, pageToken: '' });
    expect(own.accounts.every((account) => account.owner === 'carol')).toBe(true);
  });
});

describe('transfers list', () => {
  test('filters by account and state and pages in prepare order', async () => {
    await admin.createAccount({ name: 'gina', owner: 'gina', minimumBalanceUnlimited: false, disabled: false });
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const request = prepareRequest({ creditAccount: 'gina', amount: 1n });
      ids.push(request.transferId);
      await alice.prepareTransfer(request);
    }
    const gina = ledger.client('gina');
    const listed: string[] = [];
    let pageToken = '';
    do {
      const page = await gina.listTransfers({
        account: 'gina',
        state: TransferState.TRANSFER_STATE_PREPARED,
        pageSize: 2,
        pageToken,
      });
      listed.push(...page.transfers.map((transfer) => transfer.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(listed).toEqual(ids);
    const none = await gina.listTransfers({
      account: 'gina',
      state: TransferState.TRANSFER_STATE_EXECUTED,
      pageSize: 10,
      pageToken: '',
    });
    expect(none.transfers).toEqual([]);
    await expectError(
      mallory.listTransfers({ account: 'gina', state: 0, pageSize: 10, pageToken: '' }),
      grpc.status.PERMISSION_DENIED,
      'PERMISSION_DENIED',
    );
  });
});
