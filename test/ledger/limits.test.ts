/**
 * Balances and held amounts live in PostgreSQL int8. The ledger keeps them inside it with domain
 * errors decided per command (INSUFFICIENT_FUNDS, BALANCE_OVERFLOW), never a failed write, and
 * keeps balance + held amount <= 2^63-1 on every account, so that a hold can always return:
 * rejection and expiry never fail, and the sweeper never stalls.
 */
import * as grpc from '@grpc/grpc-js';
import { RejectionReason, TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import type { LedgerCommand } from '../../src/ledger/processor';
import { decodeGrpcError, ServiceError } from '../../src/platform/errors';
import { conservation, newId, preimagePair, prepareRequest, startTestLedger, type TestLedger } from '../support/ledger';

const int8Maximum = 2n ** 63n - 1n;
/** The largest amount of the test ledger (precision 18). */
const amountMaximum = 10n ** 18n - 1n;

let ledger: TestLedger;
let admin: LedgerClient;

async function outcomeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    const decoded = decodeGrpcError(error as grpc.ServiceError);
    return `${grpc.status[decoded.code]} ${decoded.reason}`;
  }
}

async function account(name: string) {
  const found = (await admin.getAccount({ name })).account;
  return { balance: found?.balance, held: found?.heldAmount };
}

async function createAccount(name: string, minimum: { minimumBalance?: bigint; unlimited?: boolean } = {}) {
  await admin.createAccount({
    name,
    owner: name,
    minimumBalance: minimum.minimumBalance,
    minimumBalanceUnlimited: minimum.unlimited ?? false,
    disabled: false,
  });
}

/** Deposits `total` in amounts the ledger's precision allows. */
async function depositAll(name: string, total: bigint) {
  for (let left = total; left > 0n;) {
    const amount = left < amountMaximum ? left : amountMaximum;
    await admin.deposit({ depositId: newId(), account: name, amount, externalReference: 'fill' });
    left -= amount;
  }
}

const ilpError = { code: 'F99', name: 'Test', message: 'no', triggeredBy: '', forwardedBy: [], data: Buffer.alloc(0) };

beforeAll(async () => {
  ledger = await startTestLedger({ maxHoldMs: 30_000 });
  admin = ledger.client('admin');
  await createAccount('payer');
  await depositAll('payer', 1_000n);
});

afterAll(() => ledger.stop());

describe('a hold can always return to its balance', () => {
  test('credits stop where balance + held amount would pass 2^63-1; the rejection then returns the hold', async () => {
    await createAccount('holder');
    await createAccount('payee');
    const holder = ledger.client('holder');
    await depositAll('holder', 100n);
    const held = prepareRequest({ debitAccount: 'holder', creditAccount: 'payee', amount: 100n });
    await holder.prepareTransfer(held);
    await depositAll('holder', int8Maximum - 100n);
    expect(await account('holder')).toEqual({ balance: int8Maximum - 100n, held: 100n });

    const payer = ledger.client('payer');
    const { fulfillment, condition } = preimagePair();
    const toHolder = prepareRequest({
      debitAccount: 'payer',
      creditAccount: 'holder',
      amount: 1n,
      executionCondition: condition,
    });
    await payer.prepareTransfer(toHolder);
    const credits: Array<[string, () => Promise<unknown>]> = [
      ['deposit', () => admin.deposit({ depositId: newId(), account: 'holder', amount: 1n, externalReference: 'x' })],
      [
        'transfer without a condition',
        () =>
          payer.prepareTransfer(
            prepareRequest({
              debitAccount: 'payer',
              creditAccount: 'holder',
              amount: 1n,
              executionCondition: Buffer.alloc(0),
              expiryTime: undefined,
            }),
          ),
      ],
      ['fulfil', () => ledger.client('holder').fulfillTransfer({ transferId: toHolder.transferId, fulfillment })],
    ];
    for (const [label, credit] of credits) {
      expect([label, await outcomeOf(credit())]).toEqual([label, 'FAILED_PRECONDITION BALANCE_OVERFLOW']);
    }
    expect((await admin.getTransfer({ transferId: toHolder.transferId })).transfer?.state).toBe(
      TransferState.TRANSFER_STATE_PREPARED,
    );

    const rejected = await ledger.client('payee').rejectTransfer({ transferId: held.transferId, ilpError });
    expect(rejected.transfer?.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
    expect(await account('holder')).toEqual({ balance: int8Maximum, held: 0n });
    const totals = await conservation(ledger.ledger);
    expect(totals.total).toBe(totals.netDeposits);
  });

  test('an account that broke the invariant before it was enforced does not stall the sweeper', async () => {
    await createAccount('legacy');
    await createAccount('innocent');
    await createAccount('receiver');
    await depositAll('legacy', 100n);
    await depositAll('innocent', 100n);
    const expiryTime = new Date(Date.now() + 2_000);
    const stuck = prepareRequest({ debitAccount: 'legacy', creditAccount: 'receiver', amount: 100n, expiryTime });
    const other = prepareRequest({ debitAccount: 'innocent', creditAccount: 'receiver', amount: 50n, expiryTime });
    await ledger.client('legacy').prepareTransfer(stuck);
    await ledger.client('innocent').prepareTransfer(other);
    // As an older ledger could leave it: a balance the hold no longer fits back into.
    await ledger.ledger.pool.query('update accounts set balance = $1 where name = $2', [
      (int8Maximum - 50n).toString(),
      'legacy',
    ]);

    ledger.advanceClock(2_000);
    try {
      await ledger.ledger.sweeper.sweepUntilDone();
      const state = async (transferId: string) => (await admin.getTransfer({ transferId })).transfer;
      expect((await state(other.transferId))?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
      expect((await state(stuck.transferId))?.state).toBe(TransferState.TRANSFER_STATE_PREPARED);
      expect(await account('innocent')).toEqual({ balance: 100n, held: 0n });
      // Nor can its receiver reject it: refused with a reason, not a failed write.
      const receiver = ledger.client('receiver');
      expect(await outcomeOf(receiver.rejectTransfer({ transferId: stuck.transferId, ilpError }))).toBe(
        'FAILED_PRECONDITION BALANCE_OVERFLOW',
      );

      // Once the operator makes room, the next sweep expires it.
      await admin.withdraw({ withdrawalId: newId(), account: 'legacy', amount: 100n, externalReference: 'room' });
      await ledger.ledger.sweeper.sweepUntilDone();
      expect((await state(stuck.transferId))?.rejectionReason).toBe(RejectionReason.REJECTION_REASON_EXPIRED);
      expect(await account('legacy')).toEqual({ balance: int8Maximum - 50n, held: 0n });
    } finally {
      ledger.advanceClock(-2_000);
    }
  });
});

describe('debits and holds stay within int8', () => {
  test('an account without a minimum stops at -2^63: INSUFFICIENT_FUNDS', async () => {
    await createAccount('settlement', { unlimited: true });
    await createAccount('bank');
    const settlement = ledger.client('settlement');
    const outcomes: string[] = [];
    for (let index = 0; index < 10; index += 1) {
      const request = prepareRequest({ debitAccount: 'settlement', creditAccount: 'bank', amount: amountMaximum });
      outcomes.push(await outcomeOf(settlement.prepareTransfer(request)));
    }
    expect(outcomes).toEqual([...Array(9).fill('OK'), 'FAILED_PRECONDITION INSUFFICIENT_FUNDS']);
    expect(
      await outcomeOf(
        admin.withdraw({ withdrawalId: newId(), account: 'settlement', amount: amountMaximum, externalReference: 'w' }),
      ),
    ).toBe('FAILED_PRECONDITION INSUFFICIENT_FUNDS');
    expect(await account('settlement')).toEqual({ balance: -9n * amountMaximum, held: 9n * amountMaximum });
  });

  test('a credit line down to -2^63 cannot hold 2^63: BALANCE_OVERFLOW', async () => {
    await createAccount('line', { minimumBalance: -(2n ** 63n) });
    const line = ledger.client('line');
    for (let index = 0; index < 9; index += 1) {
      await line.prepareTransfer(
        prepareRequest({ debitAccount: 'line', creditAccount: 'bank', amount: amountMaximum }),
      );
    }
    const rest = 2n ** 63n - 9n * amountMaximum;
    expect(
      await outcomeOf(
        line.prepareTransfer(prepareRequest({ debitAccount: 'line', creditAccount: 'bank', amount: rest })),
      ),
    ).toBe('FAILED_PRECONDITION BALANCE_OVERFLOW');
    // One less reaches the held maximum exactly.
    await line.prepareTransfer(prepareRequest({ debitAccount: 'line', creditAccount: 'bank', amount: rest - 1n }));
    expect(await account('line')).toEqual({ balance: -int8Maximum, held: int8Maximum });
  });

  test('is decided per command: the batch commits once, its other commands unharmed', async () => {
    const { processor } = ledger.ledger;
    const principal = { name: 'admin', isAdmin: true };
    const commands: LedgerCommand[] = [
      {
        kind: 'withdrawal',
        principal,
        movement: { id: newId(), account: 'settlement', amount: amountMaximum, externalReference: 'w' },
      },
      { kind: 'deposit', principal, movement: { id: newId(), account: 'payer', amount: 1n, externalReference: 'd' } },
    ];
    const before = { ...processor.statistics };
    const [refused, deposited] = await processor.submitAll(commands);
    expect(refused.status === 'rejected' && (refused.reason as ServiceError).reason).toBe('INSUFFICIENT_FUNDS');
    expect(deposited.status).toBe('fulfilled');
    expect(processor.statistics.batches - before.batches).toBe(1);
    expect(processor.statistics.retries).toBe(before.retries);
  });
});
