/**
 * The ledger under concurrency, against real PostgreSQL: limits hold, races end in one final
 * state, and money is conserved under random concurrent workloads (property-based).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import { decodeGrpcError } from '../../src/platform/errors';
import { conservation, newId, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
let admin: LedgerClient;

beforeAll(async () => {
  ledger = await startTestLedger({ maxHoldMs: 60_000 });
  admin = ledger.client('admin');
});
afterAll(() => ledger.stop());

afterEach(async () => {
  const totals = await conservation(ledger.ledger);
  expect(totals.total).toBe(totals.netDeposits);
});

async function createFundedAccount(name: string, owner: string, amount: bigint, minimumBalance = 0n) {
  await admin.createAccount({ name, owner, minimumBalance, minimumBalanceUnlimited: false, disabled: false });
  if (amount > 0n) await admin.deposit({ depositId: newId(), account: name, amount, externalReference: 'seed' });
}

function reasonOf(error: unknown): string | undefined {
  return decodeGrpcError(error as grpc.ServiceError).reason;
}

test('many parallel prepares debiting one account never take it below its minimum', async () => {
  await createFundedAccount('hot', 'hot', 1_000n, -200n);
  await createFundedAccount('sink', 'sink', 0n);
  const hot = ledger.client('hot');
  const attempts = 200;
  const results = await Promise.allSettled(
    Array.from({ length: attempts }, () =>
      hot.prepareTransfer({
        transferId: newId(),
        debitAccount: 'hot',
        creditAccount: 'sink',
        amount: 7n,
        executionCondition: randomBytes(32),
        expiryTime: new Date(Date.now() + 30_000),
        ilpPacket: Buffer.alloc(0),
        memo: Buffer.alloc(0),
        traceParent: '',
      }),
    ),
  );
  const succeeded = results.filter((result) => result.status === 'fulfilled').length;
  const refusals = results.filter((result) => result.status === 'rejected').map((result) => reasonOf(result.reason));
  // 1,200 of room (1,000 plus a 200 credit line) fits 171 transfers of 7.
  expect(succeeded).toBe(171);
  expect(new Set(refusals)).toEqual(new Set(['INSUFFICIENT_FUNDS']));
  const { account } = await admin.getAccount({ name: 'hot' });
  expect(account?.balance).toBe(1_000n - 171n * 7n);
  expect(account?.heldAmount).toBe(171n * 7n);
  expect(account!.balance).toBeGreaterThanOrEqual(-200n);
  // The processor batched them: far fewer transactions than requests.
  expect(ledger.ledger.processor.statistics.batches).toBeLessThan(ledger.ledger.processor.statistics.commands);
});

test('parallel fulfil and expire races end in exactly one final state', async () => {
  await createFundedAccount('racer', 'racer', 100_000n);
  await createFundedAccount('finish', 'finish', 0n);
  const racer = ledger.client('racer');
  const finish = ledger.client('finish');
  const transfers = await Promise.all(
    Array.from({ length: 40 }, async () => {
      const fulfillment = randomBytes(32);
      const transferId = newId();
      await racer.prepareTransfer({
        transferId,
        debitAccount: 'racer',
        creditAccount: 'finish',
        amount: 10n,
        executionCondition: createHash('sha256').update(fulfillment).digest(),
        expiryTime: new Date(Date.now() + 1_000),
        ilpPacket: Buffer.alloc(0),
        memo: Buffer.alloc(0),
        traceParent: '',
      });
      return { transferId, fulfillment };
    }),
  );
  // Jump past the expiry and race every fulfilment against the sweeper.
  ledger.advanceClock(1_000);
  try {
    const outcomes = await Promise.allSettled([
      ...transfers.map((transfer) => finish.fulfillTransfer(transfer)),
      ledger.ledger.sweeper.sweepUntilDone(),
      ledger.ledger.sweeper.sweepUntilDone(),
    ]);
    for (const outcome of outcomes.slice(0, transfers.length)) {
      if (outcome.status === 'rejected') expect(reasonOf(outcome.reason)).toBe('TRANSFER_EXPIRED');
    }
  } finally {
    ledger.advanceClock(-1_000);
  }
  let executed = 0n;
  for (const transfer of transfers) {
    const stored = (await admin.getTransfer({ transferId: transfer.transferId })).transfer!;
    expect([TransferState.TRANSFER_STATE_EXECUTED, TransferState.TRANSFER_STATE_REJECTED]).toContain(stored.state);
    if (stored.state === TransferState.TRANSFER_STATE_EXECUTED) executed += stored.amount;
  }
  const { account } = await admin.getAccount({ name: 'finish' });
  expect(account?.balance).toBe(executed);
  const racerAccount = (await admin.getAccount({ name: 'racer' })).account;
  expect(racerAccount?.heldAmount).toBe(0n);
});

test('fulfilments racing just before and after expiry: each transfer executes or expires, never both', async () => {
  await createFundedAccount('edge', 'edge', 100_000n);
  await createFundedAccount('edge-sink', 'edge-sink', 0n);
  const edge = ledger.client('edge');
  const sink = ledger.client('edge-sink');
  const transfers = await Promise.all(
    Array.from({ length: 30 }, async (_, index) => {
      const fulfillment = randomBytes(32);
      const transferId = newId();
      await edge.prepareTransfer({
        transferId,
        debitAccount: 'edge',
        creditAccount: 'edge-sink',
        amount: 1n,
        executionCondition: createHash('sha256').update(fulfillment).digest(),
        // Expiries spread over the next 300 ms, so fulfilments and the background sweeper meet.
        expiryTime: new Date(Date.now() + 150 + index * 10),
        ilpPacket: Buffer.alloc(0),
        memo: Buffer.alloc(0),
        traceParent: '',
      });
      return { transferId, fulfillment, index };
    }),
  );
  await Promise.allSettled(
    transfers.map((transfer) =>
      new Promise((resolve) => setTimeout(resolve, 140 + transfer.index * 10)).then(() =>
        sink.fulfillTransfer(transfer),
      ),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  await ledger.ledger.sweeper.sweepUntilDone();
  const events = await ledger.ledger.pool.query<{ transfer_id: string; type: string }>(
    "select transfer_id, type from events where transfer_id = any($1::uuid[]) and type <> 'transfer_prepared'",
    [transfers.map((transfer) => transfer.transferId)],
  );
  // Exactly one final event per transfer.
  expect(events.rows.length).toBe(transfers.length);
  expect(new Set(events.rows.map((row) => row.transfer_id)).size).toBe(transfers.length);
});

test('random concurrent workloads conserve money (property-based)', async () => {
  const names = ['p0', 'p1', 'p2', 'p3'];
  for (const name of names) await createFundedAccount(name, name, 1_000n, name === 'p3' ? -500n : 0n);
  const clients = Object.fromEntries(names.map((name) => [name, ledger.client(name)]));
  const operation = fc.record({
    kind: fc.constantFrom(
      'prepare-fulfil',
      'prepare-reject',
      'prepare-wrong',
      'optimistic',
      'deposit',
      'withdraw',
      'replay',
    ),
    from: fc.constantFrom(...names),
    to: fc.constantFrom(...names),
    amount: fc.bigInt({ min: 1n, max: 400n }),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 5, maxLength: 40 }), async (operations) => {
      const before = await conservation(ledger.ledger);
      await Promise.allSettled(
        operations.map(async (op) => {
          const fulfillment = randomBytes(32);
          const condition = createHash('sha256').update(fulfillment).digest();
          const transferId = newId();
          const prepare = {
            transferId,
            debitAccount: op.from,
            creditAccount: op.to,
            amount: op.amount,
            executionCondition: condition,
            expiryTime: new Date(Date.now() + 30_000),
            ilpPacket: Buffer.alloc(0),
            memo: Buffer.alloc(0),
            traceParent: '',
          };
          switch (op.kind) {
            case 'prepare-fulfil':
              await clients[op.from].prepareTransfer(prepare);
              await clients[op.to].fulfillTransfer({ transferId, fulfillment });
              return;
            case 'prepare-reject':
              await clients[op.from].prepareTransfer(prepare);
              await clients[op.to].rejectTransfer({
                transferId,
                ilpError: {
                  code: 'F99',
                  name: 'x',
                  message: '',
                  triggeredBy: '',
                  forwardedBy: [],
                  data: Buffer.alloc(0),
                },
              });
              return;
            case 'prepare-wrong':
              await clients[op.from].prepareTransfer(prepare);
              await clients[op.to].fulfillTransfer({ transferId, fulfillment: randomBytes(32) });
              return;
            case 'optimistic':
              await clients[op.from].prepareTransfer({
                ...prepare,
                executionCondition: Buffer.alloc(0),
                expiryTime: undefined,
              });
              return;
            case 'deposit':
              await admin.deposit({ depositId: transferId, account: op.to, amount: op.amount, externalReference: 'p' });
              return;
            case 'withdraw':
              await admin.withdraw({
                withdrawalId: transferId,
                account: op.from,
                amount: op.amount,
                externalReference: 'p',
              });
              return;
            case 'replay':
              await clients[op.from].prepareTransfer(prepare);
              await Promise.allSettled([
                clients[op.to].fulfillTransfer({ transferId, fulfillment }),
                clients[op.to].fulfillTransfer({ transferId, fulfillment }),
                clients[op.from].prepareTransfer(prepare),
              ]);
              return;
          }
        }),
      );
      const after = await conservation(ledger.ledger);
      expect(after.total).toBe(after.netDeposits);
      expect(after.total - before.total).toBe(after.netDeposits - before.netDeposits);
      const limits = await ledger.ledger.pool.query<{ name: string }>(
        'select name from accounts where minimum_balance is not null and balance < minimum_balance',
      );
      expect(limits.rows).toEqual([]);
    }),
    { numRuns: 15 },
  );
});

test('a deadlock with another transaction is retried inside, never reported as insufficient funds', async () => {
  await createFundedAccount('retry', 'retry', 100n);
  await createFundedAccount('retry-sink', 'retry-sink', 0n);
  const retriesBefore = ledger.ledger.processor.statistics.retries;
  // Another writer takes the accounts in the opposite order: it holds "retry-sink" while the
  // batch holds "retry" and waits for "retry-sink"; then it asks for "retry". PostgreSQL breaks
  // the cycle by failing the transaction that waited longest: the ledger's batch (40P01).
  const intruder = await ledger.ledger.pool.connect();
  await intruder.query('begin');
  await intruder.query("select * from accounts where name = 'retry-sink' for update");
  const pending = ledger.client('retry').prepareTransfer({
    transferId: newId(),
    debitAccount: 'retry',
    creditAccount: 'retry-sink',
    amount: 100n,
    executionCondition: Buffer.alloc(0),
    expiryTime: undefined,
    ilpPacket: Buffer.alloc(0),
    memo: Buffer.alloc(0),
    traceParent: '',
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const intruderDone = intruder
    .query("select * from accounts where name = 'retry' for update")
    .then(() => intruder.query('commit'))
    .catch(() => intruder.query('rollback'))
    .finally(() => intruder.release());
  const { transfer } = await pending;
  await intruderDone;
  expect(transfer?.state).toBe(TransferState.TRANSFER_STATE_EXECUTED);
  expect(ledger.ledger.processor.statistics.retries).toBeGreaterThan(retriesBefore);
  expect((await admin.getAccount({ name: 'retry-sink' })).account?.balance).toBe(100n);
});
