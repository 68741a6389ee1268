/**
 * Client-side call coalescing (withCallCoalescing): under concurrency, prepares, fulfils and
 * rejects travel in batch calls, and each caller still sees exactly what the single call would
 * have answered — the transfer, or the same error (code, reason, message, field paths).
 */
import * as grpc from '@grpc/grpc-js';
import { TransferState } from '../../src/gen/interclear/ledger/v1/ledger';
import type { LedgerClient } from '../../src/ledger/client';
import { Registry } from 'prom-client';
import {
  registerCoalescingMetrics,
  withCallCoalescing,
  type CoalescingLedgerClient,
  type CoalescingOptions,
} from '../../src/ledger/coalescing';
import { decodeGrpcError } from '../../src/platform/errors';
import { conservation, newId, preimagePair, prepareRequest, startTestLedger, type TestLedger } from '../support/ledger';

let ledger: TestLedger;
let admin: LedgerClient;
let plainAlice: LedgerClient;

beforeAll(async () => {
  ledger = await startTestLedger({ maxHoldMs: 30_000 });
  admin = ledger.client('admin');
  plainAlice = ledger.client('alice');
  for (const name of ['alice', 'bob', 'carol']) {
    await admin.createAccount({ name, owner: name, minimumBalanceUnlimited: false, disabled: false });
  }
  await admin.deposit({ depositId: newId(), account: 'alice', amount: 1_000_000n, externalReference: 'seed' });
});

afterEach(async () => {
  const totals = await conservation(ledger.ledger);
  expect(totals.total).toBe(totals.netDeposits);
});

afterAll(async () => {
  await ledger?.stop();
});

/** What a caller can see of a call's outcome. */
async function outcomeOf(call: Promise<{ transfer?: { state: TransferState; amount: bigint } }>) {
  try {
    const { transfer } = await call;
    return { state: TransferState[transfer!.state], amount: transfer!.amount };
  } catch (error) {
    const decoded = decodeGrpcError(error as grpc.ServiceError);
    return {
      code: grpc.status[decoded.code],
      reason: decoded.reason,
      // Balances move between the runs compared below; the rest of the message must not.
      message: decoded.message.replace(/balance \d+/, 'balance …'),
      fields: decoded.fieldViolations.map((violation) => violation.field),
    };
  }
}

function coalescing(principal: string, options: CoalescingOptions = { maxCallsInFlight: 1 }): CoalescingLedgerClient {
  return withCallCoalescing(ledger.client(principal), options);
}

test('a call made alone goes out as the single call', async () => {
  const alice = coalescing('alice');
  const { transfer } = await alice.prepareTransfer(prepareRequest({ amount: 5n }));
  expect(transfer?.state).toBe(TransferState.TRANSFER_STATE_PREPARED);
  expect(alice.coalescing).toEqual({ singleCalls: 1, batchCalls: 0, batchedItems: 0 });
});

test('concurrent prepares travel together, each answered as its single call would be', async () => {
  const alice = coalescing('alice');
  const requests = [
    prepareRequest({ amount: 100n }),
    prepareRequest({ amount: 0n }), // invalid
    prepareRequest({ debitAccount: 'carol' }), // not alice's
    prepareRequest({ creditAccount: 'nobody' }), // no such account
    prepareRequest({ amount: 100_000_000n }), // more than alice has
    ...Array.from({ length: 25 }, () => prepareRequest({ amount: 10n })),
  ];
  const coalesced = await Promise.all(requests.map((request) => outcomeOf(alice.prepareTransfer(request))));
  expect(alice.coalescing.batchCalls).toBeGreaterThanOrEqual(1);
  expect(alice.coalescing.singleCalls + alice.coalescing.batchedItems).toBe(requests.length);
  expect(alice.coalescing.batchedItems).toBeGreaterThan(requests.length / 2);

  // The same requests (new ids) one at a time through a plain client give the same answers.
  const single: unknown[] = [];
  for (const request of requests) {
    single.push(await outcomeOf(plainAlice.prepareTransfer({ ...request, transferId: newId() })));
  }
  expect(coalesced).toEqual(single);
  expect(coalesced[1]).toMatchObject({ code: 'INVALID_ARGUMENT', fields: ['amount'] });
  expect(coalesced[1]).toHaveProperty('message', expect.stringMatching(/^amount: /));
  expect(coalesced[2]).toMatchObject({ code: 'PERMISSION_DENIED' });
  expect(coalesced[3]).toMatchObject({ code: 'NOT_FOUND', reason: 'ACCOUNT_NOT_FOUND' });
  expect(coalesced[4]).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_FUNDS' });
  expect(coalesced[5]).toEqual({ state: 'TRANSFER_STATE_PREPARED', amount: 10n });
});

test('concurrent fulfils and rejects travel together; every transfer ends as asked', async () => {
  const alice = coalescing('alice');
  const bob = coalescing('bob');
  const pairs = Array.from({ length: 20 }, () => ({ id: newId(), ...preimagePair() }));
  await Promise.all(
    pairs.map((pair) =>
      alice.prepareTransfer(prepareRequest({ transferId: pair.id, amount: 3n, executionCondition: pair.condition })),
    ),
  );
  const ilpError = { code: 'F99', name: '', message: 'no', triggeredBy: '', forwardedBy: [], data: Buffer.alloc(0) };
  const outcomes = await Promise.all(
    pairs.map((pair, index) =>
      index % 2 === 0
        ? outcomeOf(bob.fulfillTransfer({ transferId: pair.id, fulfillment: pair.fulfillment }))
        : outcomeOf(bob.rejectTransfer({ transferId: pair.id, ilpError })),
    ),
  );
  expect(outcomes).toEqual(
    pairs.map((_pair, index) => ({
      state: index % 2 === 0 ? 'TRANSFER_STATE_EXECUTED' : 'TRANSFER_STATE_REJECTED',
      amount: 3n,
    })),
  );
  expect(bob.coalescing.batchCalls).toBeGreaterThanOrEqual(2);

  // A wrong fulfillment among right ones is refused alone, with the single call's reason.
  const wrong = { id: newId(), ...preimagePair() };
  const right = { id: newId(), ...preimagePair() };
  for (const pair of [wrong, right]) {
    await alice.prepareTransfer(prepareRequest({ transferId: pair.id, executionCondition: pair.condition }));
  }
  const [refused, executed] = await Promise.all([
    outcomeOf(bob.fulfillTransfer({ transferId: wrong.id, fulfillment: right.fulfillment })),
    outcomeOf(bob.fulfillTransfer({ transferId: right.id, fulfillment: right.fulfillment })),
  ]);
  expect(refused).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'UNMET_CONDITION' });
  expect(executed).toMatchObject({ state: 'TRANSFER_STATE_EXECUTED' });
  await withCallCoalescing(ledger.client('bob')).rejectTransfer({ transferId: wrong.id, ilpError });
});

test('no batch call carries more than maxItems calls', async () => {
  const alice = withCallCoalescing(ledger.client('alice'), { maxCallsInFlight: 1, maxItems: 3 });
  const results = await Promise.all(
    Array.from({ length: 10 }, () => alice.prepareTransfer(prepareRequest({ amount: 1n }))),
  );
  expect(results.every((result) => result.transfer?.state === TransferState.TRANSFER_STATE_PREPARED)).toBe(true);
  const { singleCalls, batchCalls, batchedItems } = alice.coalescing;
  expect(singleCalls + batchedItems).toBe(10);
  expect(batchedItems).toBeLessThanOrEqual(batchCalls * 3);
});

test('big packets split the batches: no batch call exceeds what the ledger accepts in one request', async () => {
  // 40 prepares of 30,000-byte packets (the ledger allows 32,767) are 1.2 MB together: more
  // than one 1 MiB request, so they must travel in several batch calls.
  const alice = coalescing('alice');
  const packet = Buffer.alloc(30_000, 7);
  const results = await Promise.all(
    Array.from({ length: 40 }, () =>
      outcomeOf(alice.prepareTransfer(prepareRequest({ amount: 1n, ilpPacket: packet }))),
    ),
  );
  expect(results).toEqual(Array.from({ length: 40 }, () => ({ state: 'TRANSFER_STATE_PREPARED', amount: 1n })));
  expect(alice.coalescing.batchCalls).toBeGreaterThanOrEqual(2);
  expect(alice.coalescing.batchedItems).toBeGreaterThan(20);
});

test("each coalesced prepare keeps its own payment's trace; a malformed trace_parent is refused", async () => {
  const alice = coalescing('alice');
  const traceParents = ['a', 'b', 'c'].map((digit) => `00-${digit.repeat(32)}-${digit.repeat(16)}-01`);
  const ids = traceParents.map(() => newId());
  await Promise.all(
    traceParents.map((traceParent, index) => {
      const metadata = new grpc.Metadata();
      metadata.set('traceparent', traceParent);
      return alice.prepareTransfer(prepareRequest({ transferId: ids[index] }), { metadata });
    }),
  );
  expect(alice.coalescing.batchedItems).toBeGreaterThanOrEqual(2);
  for (const [index, id] of ids.entries()) {
    expect((await plainAlice.getTransfer({ transferId: id })).transfer?.traceParent).toBe(traceParents[index]);
  }
  // Given explicitly on a single call, it wins over the call's own context.
  const explicit = `00-${'d'.repeat(32)}-${'e'.repeat(16)}-01`;
  const { transfer } = await plainAlice.prepareTransfer(prepareRequest({ traceParent: explicit }));
  expect(transfer?.traceParent).toBe(explicit);

  for (const malformed of ['nonsense', `00-${'0'.repeat(32)}-${'e'.repeat(16)}-01`, `00-${'A'.repeat(32)}-x-01`]) {
    expect(await outcomeOf(plainAlice.prepareTransfer(prepareRequest({ traceParent: malformed })))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      fields: ['trace_parent'],
    });
  }
});

test('the counters for Prometheus report the calls sent alone, in batches, and the calls inside them', async () => {
  const alice = coalescing('alice');
  await alice.prepareTransfer(prepareRequest({ amount: 1n }));
  await Promise.all(Array.from({ length: 8 }, () => alice.prepareTransfer(prepareRequest({ amount: 1n }))));
  const registry = new Registry();
  registerCoalescingMetrics(registry, () => [{ ledger: 'test.ledger.', statistics: alice.coalescing }]);
  const { singleCalls, batchCalls, batchedItems } = alice.coalescing;
  expect(singleCalls + batchedItems).toBe(9);
  expect(batchCalls).toBeGreaterThanOrEqual(1);
  const text = await registry.metrics();
  expect(text).toContain(`interclear_ledger_client_calls_total{ledger="test.ledger.",sent="alone"} ${singleCalls}`);
  expect(text).toContain(`interclear_ledger_client_calls_total{ledger="test.ledger.",sent="batch"} ${batchCalls}`);
  expect(text).toContain(`interclear_ledger_client_batched_calls_total{ledger="test.ledger."} ${batchedItems}`);
  // Read again after more calls: the counters follow, they do not add up twice.
  await alice.prepareTransfer(prepareRequest({ amount: 1n }));
  expect(await registry.metrics()).toContain(
    `interclear_ledger_client_calls_total{ledger="test.ledger.",sent="alone"} ${singleCalls + 1}`,
  );
});

test('a batch answer over the message limit is sent again in halves: every fulfil executes once', async () => {
  // 150 transfers with 30,000-byte packets: one FulfillTransfers answer echoing them all would be
  // 4.5 MB, over the 4 MiB a gRPC message may carry. The ledger executes them, fails to send the
  // answer (RESOURCE_EXHAUSTED), and the halves, sent again, get the executed transfers back.
  const alice = coalescing('alice', { maxCallsInFlight: 4 });
  const bob = coalescing('bob', { maxCallsInFlight: 1 });
  const packet = Buffer.alloc(30_000, 9);
  const pairs = Array.from({ length: 150 }, () => ({ id: newId(), ...preimagePair() }));
  await Promise.all(
    pairs.map((pair) =>
      alice.prepareTransfer(
        prepareRequest({ transferId: pair.id, amount: 1n, executionCondition: pair.condition, ilpPacket: packet }),
      ),
    ),
  );
  const before = (await admin.getAccount({ name: 'bob' })).account!.balance;
  const outcomes = await Promise.all(
    pairs.map((pair) => outcomeOf(bob.fulfillTransfer({ transferId: pair.id, fulfillment: pair.fulfillment }))),
  );
  expect(outcomes).toEqual(pairs.map(() => ({ state: 'TRANSFER_STATE_EXECUTED', amount: 1n })));
  expect(bob.coalescing.batchCalls).toBeGreaterThanOrEqual(3); // the refused one, then its halves
  expect((await admin.getAccount({ name: 'bob' })).account!.balance).toBe(before + 150n);
});

describe('against a stand-in client (failure paths a real ledger cannot be made to take on demand)', () => {
  function standIn(
    batch: (request: { transfers: Array<{ transferId: string }> }) => Promise<unknown>,
    options: { maxCallsInFlight?: number; maxItems?: number; singleDelayMs?: number } = {},
  ) {
    const singles: string[] = [];
    const client = {
      prepareTransfer: async (request: { transferId: string }) => {
        singles.push(request.transferId);
        await new Promise((resolve) => setTimeout(resolve, options.singleDelayMs ?? 5));
        return { transfer: { id: request.transferId } };
      },
      prepareTransfers: batch,
    } as unknown as LedgerClient;
    return {
      client: withCallCoalescing(client, {
        maxCallsInFlight: options.maxCallsInFlight ?? 1,
        maxItems: options.maxItems,
      }),
      singles,
    };
  }
  const later = <T>(milliseconds: number, value: () => T) =>
    new Promise<T>((resolve) => setTimeout(() => resolve(value()), milliseconds));

  test('a ledger without the batch calls (UNIMPLEMENTED) gets every call one by one, none lost, even with several batches in flight', async () => {
    const unimplemented = Object.assign(new Error('12 UNIMPLEMENTED'), { code: grpc.status.UNIMPLEMENTED });
    let batchAttempts = 0;
    const { client, singles } = standIn(
      () => {
        batchAttempts += 1;
        return later(20, () => undefined).then(() => Promise.reject(unimplemented));
      },
      { maxCallsInFlight: 4, maxItems: 5 },
    );
    const ids = Array.from({ length: 30 }, () => newId());
    const responses = await Promise.all(ids.map((id) => client.prepareTransfer(prepareRequest({ transferId: id }))));
    expect(responses.map((response) => response.transfer?.id)).toEqual(ids);
    expect([...singles].sort()).toEqual([...ids].sort());
    expect(batchAttempts).toBeGreaterThanOrEqual(2); // several were in flight when the first failed
    // From then on, calls go straight out, one by one.
    const next = newId();
    expect((await client.prepareTransfer(prepareRequest({ transferId: next }))).transfer?.id).toBe(next);
  });

  test('a batch call that fails as a whole fails each of its calls with that error', async () => {
    const unavailable = Object.assign(new Error('14 UNAVAILABLE: gone'), { code: grpc.status.UNAVAILABLE });
    const { client } = standIn(() => Promise.reject(unavailable));
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () => client.prepareTransfer(prepareRequest())),
    );
    // Made in one turn of the event loop, the five went together, and each failed with the error.
    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array.from({ length: 5 }, () => 'rejected'));
    for (const outcome of outcomes) expect((outcome as PromiseRejectedResult).reason).toBe(unavailable);
  });

  test('each call keeps its own deadline, in the queue and in a batch that outlives it; the others are answered', async () => {
    const sent: string[] = [];
    const { client, singles } = standIn(
      (request) => {
        sent.push(...request.transfers.map((transfer) => transfer.transferId));
        return later(300, () => ({
          results: request.transfers.map((transfer) => ({
            result: { $case: 'transfer', value: { id: transfer.transferId } },
          })),
        }));
      },
      { singleDelayMs: 200 },
    );
    // The first goes alone and holds the only slot for 200 ms; the next three wait. One of them
    // has 50 ms: it fails at its deadline without ever being sent.
    const first = client.prepareTransfer(prepareRequest());
    await later(5, () => undefined);
    const queuedTooLong = prepareRequest();
    const started = Date.now();
    const outcomes = Promise.allSettled([
      client.prepareTransfer(queuedTooLong, { timeoutMs: 50 }),
      client.prepareTransfer(prepareRequest(), { timeoutMs: 5_000 }),
      client.prepareTransfer(prepareRequest()),
      // Sent in the batch (300 ms), but with 350 ms in all it runs out while the batch is out.
      client.prepareTransfer(prepareRequest(), { timeoutMs: 350 }),
    ]);
    const [tooLong, patient, noDeadline, outlived] = await outcomes;
    await first;
    expect(tooLong.status).toBe('rejected');
    expect(((tooLong as PromiseRejectedResult).reason as grpc.ServiceError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(sent).not.toContain(queuedTooLong.transferId);
    expect(singles).not.toContain(queuedTooLong.transferId);
    expect(patient.status).toBe('fulfilled');
    expect(noDeadline.status).toBe('fulfilled');
    expect(outlived.status).toBe('rejected');
    expect(((outlived as PromiseRejectedResult).reason as grpc.ServiceError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450); // the others waited for the batch
  });

  test('an answer that is not about its own request is not passed on as if it were', async () => {
    const { client } = standIn((request) =>
      Promise.resolve({
        results: request.transfers.map((_transfer, index) => ({
          result: {
            $case: 'transfer',
            value: { id: request.transfers[(index + 1) % request.transfers.length].transferId },
          },
        })),
      }),
    );
    const outcomes = await Promise.allSettled([
      client.prepareTransfer(prepareRequest()),
      client.prepareTransfer(prepareRequest()),
    ]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(((outcome as PromiseRejectedResult).reason as grpc.ServiceError).code).toBe(grpc.status.INTERNAL);
    }
  });

  test('options outside what the ledger accepts are refused at once', () => {
    const client = {} as LedgerClient;
    expect(() => withCallCoalescing(client, { maxItems: 0 })).toThrow(RangeError);
    expect(() => withCallCoalescing(client, { maxItems: 1001 })).toThrow(RangeError);
    expect(() => withCallCoalescing(client, { maxCallsInFlight: 0 })).toThrow(RangeError);
  });
});
