/**
 * Batch calls (PrepareTransfers, FulfillTransfers, RejectTransfers): each item is decided exactly
 * as its single-item RPC would decide it, one refusal never fails its neighbours, results come
 * back in request order, and the whole call fails only for an empty or oversized list.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { TransferState, type TransferResult } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import { decodeGrpcError, decodeStatus } from '../../src/platform/errors';
import { conservation, newId, preimagePair, prepareRequest, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
let admin: LedgerClient;
let alice: LedgerClient;
let bob: LedgerClient;

/** Each result as [state] or [error code name, reason, field paths]. */
function summarise(results: TransferResult[]) {
  return results.map((item) => {
    if (item.result?.$case === 'transfer') return [TransferState[item.result.value.state]];
    if (item.result?.$case === 'error') {
      const decoded = decodeStatus(item.result.value);
      expect(decoded.domain).toBe('interclear.ledger.v1.LedgerService');
      return [grpc.status[decoded.code], decoded.reason, decoded.fieldViolations.map((violation) => violation.field)];
    }
    return ['NO RESULT'];
  });
}

function ilpError(code: string) {
  return { code, name: '', message: '', triggeredBy: '', forwardedBy: [], data: Buffer.alloc(0) };
}

async function balance(name: string) {
  const account = (await admin.getAccount({ name })).account!;
  return { balance: account.balance, held: account.heldAmount };
}

async function expectCallError(promise: Promise<unknown>, code: grpc.status, field: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: grpc.ServiceError) => caught,
  );
  if (!error) throw new Error('expected the call to fail');
  const decoded = decodeGrpcError(error);
  expect({
    code: grpc.status[decoded.code],
    fields: decoded.fieldViolations.map((violation) => violation.field),
  }).toEqual({ code: grpc.status[code], fields: [field] });
}

beforeAll(async () => {
  ledger = await startTestLedger({ maxHoldMs: 30_000 });
  admin = ledger.client('admin');
  alice = ledger.client('alice');
  bob = ledger.client('bob');
  for (const name of ['alice', 'bob', 'carol']) {
    await admin.createAccount({ name, owner: name, minimumBalanceUnlimited: false, disabled: false });
  }
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 100_000n, externalReference: 'seed' });
});

afterEach(async () => {
  const totals = await conservation(ledger.ledger);
  expect(totals.total).toBe(totals.netDeposits);
});

afterAll(async () => {
  await ledger?.stop();
});

describe('PrepareTransfers', () => {
  test('decides each item on its own and answers in request order', async () => {
    const before = await balance('alice');
    const { results } = await alice.prepareTransfers({
      transfers: [
        prepareRequest({ amount: 100n }),
        prepareRequest({ amount: 0n }), // invalid
        prepareRequest({ debitAccount: 'carol' }), // not alice's
        prepareRequest({ creditAccount: 'nobody' }), // no such account
        prepareRequest({ amount: 10_000_000n }), // more than alice has
        prepareRequest({ executionCondition: Buffer.alloc(0), expiryTime: undefined, amount: 7n }), // executes at once
        prepareRequest({ amount: 200n }),
      ],
    });
    expect(summarise(results)).toEqual([
      ['TRANSFER_STATE_PREPARED'],
      ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', ['transfers[1].amount']],
      ['PERMISSION_DENIED', 'PERMISSION_DENIED', []],
      ['NOT_FOUND', 'ACCOUNT_NOT_FOUND', []],
      ['FAILED_PRECONDITION', 'INSUFFICIENT_FUNDS', []],
      ['TRANSFER_STATE_EXECUTED'],
      ['TRANSFER_STATE_PREPARED'],
    ]);
    expect(await balance('alice')).toEqual({ balance: before.balance - 307n, held: before.held + 300n });
  });

  test('is idempotent item by item, like PrepareTransfer', async () => {
    const first = prepareRequest();
    await alice.prepareTransfers({ transfers: [first] });
    const before = await balance('alice');
    const { results } = await alice.prepareTransfers({
      transfers: [first, { ...first, amount: 101n }, first],
    });
    expect(summarise(results)).toEqual([
      ['TRANSFER_STATE_PREPARED'],
      ['ALREADY_EXISTS', 'ALREADY_EXISTS', []],
      ['TRANSFER_STATE_PREPARED'],
    ]);
    expect(await balance('alice')).toEqual(before);
  });

  test('an empty list or more than 1,000 items fails the call and changes nothing', async () => {
    const before = await balance('alice');
    await expectCallError(alice.prepareTransfers({ transfers: [] }), grpc.status.INVALID_ARGUMENT, 'transfers');
    await expectCallError(
      alice.prepareTransfers({ transfers: Array.from({ length: 1_001 }, () => prepareRequest({ amount: 1n })) }),
      grpc.status.INVALID_ARGUMENT,
      'transfers',
    );
    expect(await balance('alice')).toEqual(before);
  });
});

describe('FulfillTransfers and RejectTransfers', () => {
  test('fulfil what matches, refuse the rest, each with the single-item error', async () => {
    const pairs = Array.from({ length: 4 }, () => preimagePair());
    const requests = pairs.map((pair) => prepareRequest({ executionCondition: pair.condition }));
    await alice.prepareTransfers({ transfers: requests });
    const bobBefore = await balance('bob');
    const { results } = await bob.fulfillTransfers({
      fulfillments: [
        { transferId: requests[0].transferId, fulfillment: pairs[0].fulfillment },
        { transferId: requests[1].transferId, fulfillment: pairs[2].fulfillment }, // another's preimage
        { transferId: requests[2].transferId, fulfillment: Buffer.alloc(5) }, // malformed
        { transferId: newId(), fulfillment: pairs[3].fulfillment }, // unknown transfer
        { transferId: requests[3].transferId, fulfillment: pairs[3].fulfillment },
        { transferId: requests[0].transferId, fulfillment: pairs[0].fulfillment }, // a repeat
      ],
    });
    expect(summarise(results)).toEqual([
      ['TRANSFER_STATE_EXECUTED'],
      ['FAILED_PRECONDITION', 'UNMET_CONDITION', []],
      ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', ['fulfillments[2].fulfillment']],
      ['NOT_FOUND', 'TRANSFER_NOT_FOUND', []],
      ['TRANSFER_STATE_EXECUTED'],
      ['TRANSFER_STATE_EXECUTED'],
    ]);
    expect(await balance('bob')).toEqual({ balance: bobBefore.balance + 200n, held: 0n });

    // Only the credit account's owner may fulfil or reject; alice owns the debit side.
    const refused = await alice.rejectTransfers({
      rejections: [{ transferId: requests[1].transferId, ilpError: ilpError('F99') }],
    });
    expect(summarise(refused.results)).toEqual([['PERMISSION_DENIED', 'PERMISSION_DENIED', []]]);
    const rejected = await bob.rejectTransfers({
      rejections: [
        { transferId: requests[1].transferId, ilpError: ilpError('F99') },
        { transferId: requests[2].transferId, ilpError: ilpError('nope') },
        { transferId: requests[0].transferId, ilpError: ilpError('F99') },
      ],
    });
    expect(summarise(rejected.results)).toEqual([
      ['TRANSFER_STATE_REJECTED'],
      ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', ['rejections[1].ilp_error.code']],
      ['FAILED_PRECONDITION', 'TRANSFER_ALREADY_FINAL', []],
    ]);
  });

  test('random mixes of batch and single calls on shared transfers never create or lose money', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            amount: fc.bigInt({ min: 1n, max: 500n }),
            outcome: fc.constantFrom('fulfil', 'reject', 'wrong', 'leave'),
            repeats: fc.integer({ min: 1, max: 3 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        async (plan) => {
          const pairs = plan.map(() => preimagePair());
          const requests = plan.map((item, index) =>
            prepareRequest({ amount: item.amount, executionCondition: pairs[index].condition }),
          );
          // Every prepare is sent `repeats` times, in batches and alone, concurrently.
          await Promise.all([
            alice.prepareTransfers({
              transfers: requests.flatMap((request, index) => Array(plan[index].repeats).fill(request)),
            }),
            ...requests.map((request) => alice.prepareTransfer(request)),
          ]);
          const fulfilments = plan.flatMap((item, index) =>
            item.outcome === 'fulfil' || item.outcome === 'wrong'
              ? [
                  {
                    transferId: requests[index].transferId,
                    fulfillment: item.outcome === 'wrong' ? randomBytes(32) : pairs[index].fulfillment,
                  },
                ]
              : [],
          );
          const rejections = plan.flatMap((item, index) =>
            item.outcome === 'reject'
              ? [
                  {
                    transferId: requests[index].transferId,
                    ilpError: ilpError('F99'),
                  },
                ]
              : [],
          );
          await Promise.all([
            fulfilments.length > 0 ? bob.fulfillTransfers({ fulfillments: [...fulfilments, ...fulfilments] }) : null,
            rejections.length > 0 ? bob.rejectTransfers({ rejections }) : null,
          ]);
          for (const [index, item] of plan.entries()) {
            const { transfer } = await admin.getTransfer({ transferId: requests[index].transferId });
            const expected =
              item.outcome === 'fulfil'
                ? TransferState.TRANSFER_STATE_EXECUTED
                : item.outcome === 'reject'
                  ? TransferState.TRANSFER_STATE_REJECTED
                  : TransferState.TRANSFER_STATE_PREPARED;
            expect(TransferState[transfer!.state]).toBe(TransferState[expected]);
          }
          const totals = await conservation(ledger.ledger);
          expect(totals.total).toBe(totals.netDeposits);
        },
      ),
      { numRuns: 15 },
    );
  });
});
