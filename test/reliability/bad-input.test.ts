/**
 * Bad input against the real network (seven processes, mTLS): random and malformed requests to
 * every RPC of every service — raw protobuf of the wrong shape, huge and negative numbers,
 * invalid UTF-8, absurd times, oversize fields, malformed ILP packets, invalid addresses — each
 * answered with a documented error (a status with google.rpc.ErrorInfo, never INTERNAL or
 * UNKNOWN), with every process still up and nothing changed in any database. Then floods: a
 * message above the maximum size is refused with RESOURCE_EXHAUSTED, and hundreds of concurrent
 * streams do not take a server down.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { durationFromMs } from '../../src/connector/client';
import {
  EventType,
  TransferState,
  type SubscribeResponse,
  type Transfer,
} from '../../src/gen/interclear/ledger/v1/ledger';
import { createLedgerClient, type LedgerClient } from '../../src/ledger/client';
import type { ClientIdentity } from '../../src/platform/client';
import { maximumMessageBytes } from '../../src/platform/server';
import { startE2eNetwork, type E2eNetwork } from '../e2e/support';
import { NetworkSnapshot, everyRpc, rawServerStream, rawUnary, wire, type CallOutcome, type Rpc } from './support';

jest.setTimeout(120_000);

let net: E2eNetwork;
let snapshot: NetworkSnapshot;
const identities: Record<string, ClientIdentity> = {};

beforeAll(async () => {
  net = await startE2eNetwork();
  snapshot = new NetworkSnapshot(net.network);
  identities.admin = await net.network.identityFor(net.network.manifest.adminPrincipal);
  identities.dfsp = await net.network.identityFor('spsp-a');
}, 180_000);

afterAll(async () => {
  await snapshot?.close();
  await net?.stop();
});

/** Where `rpc` is served: DFSP A's ledger, connector or SPSP service. */
function addressOf(rpc: Rpc): string {
  const dfsp = net.network.manifest.dfsps.find((entry) => entry.name === 'dfsp-a')!;
  if (rpc.served === 'connector') return dfsp.connector;
  if (rpc.served === 'spsp') return dfsp.spsp;
  return net.ledger('dfsp-a').address;
}

function call(rpc: Rpc, request: Buffer): Promise<CallOutcome> {
  const identity = identities[rpc.caller];
  return rpc.streaming
    ? rawServerStream(addressOf(rpc), identity, rpc.path, request)
    : rawUnary(addressOf(rpc), identity, rpc.path, request);
}

/** The codes a refusal may carry (docs/RELIABILITY.md): never INTERNAL, UNKNOWN, UNAVAILABLE… */
const documentedCodes = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.PERMISSION_DENIED,
  grpc.status.ALREADY_EXISTS,
  grpc.status.OUT_OF_RANGE,
]);

/** A refusal is a documented code with an ErrorInfo naming the service (its reason is the contract). */
function expectDocumented(rpc: Rpc, outcome: CallOutcome): void {
  const service = rpc.path.split('/')[1];
  const seen = { code: grpc.status[outcome.code], message: outcome.message };
  expect({ ...seen, documented: documentedCodes.has(outcome.code) }).toEqual({ ...seen, documented: true });
  if (outcome.code !== grpc.status.OK) {
    expect({ path: rpc.path, reason: outcome.reason, domain: outcome.domain }).toEqual({
      path: rpc.path,
      reason: expect.stringMatching(/^[A-Z][A-Z_]*$/),
      domain: service,
    });
  }
}

/** Every process of the network still runs and serves. */
async function expectNetworkUp(): Promise<void> {
  for (const service of net.network.plan.services) {
    const process = net.network.service(service.name);
    expect({ service: service.name, running: process.running }).toEqual({ service: service.name, running: true });
    await process.waitUntilServing(5_000);
  }
}

// ---- Arbitrary protobuf, valid or not -------------------------------------------------------

const extremeIntegers = fc.oneof(
  fc.constantFrom(
    0n,
    1n,
    2n ** 31n,
    2n ** 32n,
    2n ** 53n + 1n,
    2n ** 63n - 1n,
    2n ** 63n,
    2n ** 64n - 1n,
    -1n,
    -(2n ** 63n),
  ),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
);

/** Bytes that are not UTF-8: lone continuation bytes, overlong forms, surrogates, 0xFF. */
const invalidUtf8 = fc
  .tuple(
    fc.string({ maxLength: 8 }),
    fc.constantFrom(
      Buffer.from([0xff]),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from([0x80, 0x80]),
      Buffer.from([0xe2, 0x82]),
      Buffer.from([0xf4, 0x90, 0x80, 0x80]),
    ),
  )
  .map(([text, bad]) => Buffer.concat([Buffer.from(text, 'utf8'), bad]));

const texts = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('alice', 'bob', 'connector-a', 'bob@dfsp-b', 'private.dfsp-b.bob', randomUUID(), 'g.', '..', ''),
  fc.nat({ max: 40_000 }).map((length) => 'a'.repeat(length)),
);

/** One field of any number and wire type, with any payload (including a wrong one). */
const field = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 12 }), extremeIntegers).map(([number, value]) => wire.integer(number, value)),
  fc.tuple(fc.integer({ min: 1, max: 12 }), texts).map(([number, text]) => wire.bytes(number, text)),
  fc.tuple(fc.integer({ min: 1, max: 12 }), invalidUtf8).map(([number, bytes]) => wire.bytes(number, bytes)),
  fc
    .tuple(fc.integer({ min: 1, max: 12 }), extremeIntegers, fc.integer())
    .map(([number, seconds, nanos]) => wire.time(number, seconds, nanos)),
  fc.tuple(fc.integer({ min: 1, max: 12 }), fc.uint8Array({ maxLength: 64 })).map(([number, bytes]) =>
    // A length prefix longer than what follows: a truncated field.
    Buffer.concat([wire.tag(number, 2), wire.varint(BigInt(bytes.length + 10)), Buffer.from(bytes)]),
  ),
  // Fixed-width and group wire types where none is expected, and wire types that do not exist.
  fc
    .tuple(fc.integer({ min: 1, max: 12 }), fc.constantFrom(1, 3, 4, 5, 6, 7), fc.uint8Array({ maxLength: 8 }))
    .map(([number, wireType, bytes]) => Buffer.concat([wire.tag(number, wireType), Buffer.from(bytes)])),
);

const requestBytes = fc.oneof(
  fc.array(field, { maxLength: 6 }).map((fields) => Buffer.concat(fields)),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
);

describe.each(everyRpc.map((rpc) => [rpc.path, rpc] as const))('%s', (_path, rpc) => {
  test('random and malformed requests get a documented error, change nothing, and the service stays up', async () => {
    let before = await snapshot.take();
    await fc.assert(
      fc.asyncProperty(requestBytes, async (request) => {
        const outcome = await call(rpc, request);
        expectDocumented(rpc, outcome);
        const after = await snapshot.take();
        // A request that happens to be valid (a random CreateAccount, say) may change things;
        // one that was refused must not.
        if (outcome.code !== grpc.status.OK) expect(after).toEqual(before);
        before = after;
      }),
      { numRuns: 40 },
    );
    await expectNetworkUp();
  });
});

// ---- Well-typed requests with bad values -----------------------------------------------------

describe('well-formed requests with bad values', () => {
  const dfspA = () => net.ledger('dfsp-a');
  let spspA: LedgerClient;
  beforeAll(async () => {
    spspA = createLedgerClient(dfspA().address, await net.network.identityFor('spsp-a'));
  });
  afterAll(() => spspA?.close());

  test('PrepareTransfer: absurd amounts, expiries, conditions, memos and packets are INVALID_ARGUMENT', async () => {
    const before = await snapshot.take();
    const ledger = dfspA().address;
    const path = '/interclear.ledger.v1.LedgerService/PrepareTransfer';
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          amount: extremeIntegers,
          seconds: fc.oneof(extremeIntegers, fc.constant(BigInt(Math.floor(Date.now() / 1000) + 5))),
          nanos: fc.oneof(fc.integer(), fc.constant(0)),
          condition: fc.oneof(fc.constant(32), fc.nat({ max: 100 })),
          memo: fc.constantFrom(0, 8_192, 8_193, 200_000),
          packet: fc.constantFrom(0, 32_767, 32_768, 500_000),
          debit: fc.oneof(fc.constant('alice'), texts),
          credit: fc.oneof(fc.constant('connector-a'), texts),
        }),
        async (input) => {
          // At most one field is sane, so that no request is valid.
          const request = Buffer.concat([
            wire.bytes(1, 'not-a-uuid'),
            wire.bytes(2, input.debit),
            wire.bytes(3, input.credit),
            wire.integer(4, input.amount),
            wire.bytes(5, Buffer.alloc(input.condition, 1)),
            wire.time(6, input.seconds, input.nanos),
            wire.bytes(7, Buffer.alloc(input.packet, 2)),
            wire.bytes(8, Buffer.alloc(input.memo, 3)),
          ]);
          const outcome = await rawUnary(ledger, identities.dfsp, path, request);
          expect([grpc.status[outcome.code], outcome.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
        },
      ),
      { numRuns: 40 },
    );
    expect(await snapshot.take()).toEqual(before);
  });

  test('times beyond what a date can hold (expiry, list bounds) are INVALID_ARGUMENT, not INTERNAL', async () => {
    const before = await snapshot.take();
    const ledger = dfspA().address;
    // Year 10000 and later, year 0 and earlier, and beyond what a Date can hold at all.
    const farSeconds = fc.oneof(
      fc.constantFrom(
        2n ** 62n,
        -(2n ** 62n),
        8_640_000_000_001n,
        -8_640_000_000_001n,
        253_402_300_800n,
        -62_135_596_802n,
      ),
      fc.bigInt({ min: 253_402_300_800n, max: 2n ** 63n - 1n }),
      fc.bigInt({ min: -(2n ** 63n), max: -62_135_596_802n }),
    );
    await fc.assert(
      fc.asyncProperty(farSeconds, fc.integer({ min: 0, max: 999_999_999 }), async (seconds, nanos) => {
        const prepare = Buffer.concat([
          wire.bytes(1, randomUUID()),
          wire.bytes(2, 'alice'),
          wire.bytes(3, 'connector-a'),
          wire.integer(4, 1n),
          wire.bytes(5, createHash('sha256').update('x').digest()),
          wire.time(6, seconds, nanos),
        ]);
        const prepared = await rawUnary(
          ledger,
          identities.dfsp,
          '/interclear.ledger.v1.LedgerService/PrepareTransfer',
          prepare,
        );
        expect([grpc.status[prepared.code], prepared.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
        const list = Buffer.concat([
          wire.bytes(1, 'alice'),
          wire.time(3, seconds, nanos),
          wire.time(4, seconds, nanos),
        ]);
        const listed = await rawUnary(
          ledger,
          identities.dfsp,
          '/interclear.ledger.v1.LedgerService/ListTransfers',
          list,
        );
        expect([grpc.status[listed.code], listed.reason]).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
      }),
      { numRuns: 20 },
    );
    expect(await snapshot.take()).toEqual(before);
  });

  test('durations beyond any clock (payment request expiry, hold times) are refused, not INTERNAL', async () => {
    const before = await snapshot.take();
    const durations = fc.tuple(
      fc.oneof(
        fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 8_640_000_000_001n, -1n),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      ),
      fc.oneof(fc.integer(), fc.constantFrom(-1, 999_999_999, 1_000_000_000)),
    );
    const dfspA = net.network.manifest.dfsps.find((entry) => entry.name === 'dfsp-a')!;
    const dfspB = net.network.manifest.dfsps.find((entry) => entry.name === 'dfsp-b')!;
    await fc.assert(
      fc.asyncProperty(durations, async ([seconds, nanos]) => {
        const calls: Array<[string, string, ClientIdentity, Buffer]> = [
          [
            dfspB.spsp,
            '/interclear.spsp.v1.SpspService/SetupPayment',
            identities.dfsp,
            Buffer.concat([wire.bytes(1, 'bob@dfsp-b'), wire.integer(2, 1_000n), wire.time(4, seconds, nanos)]),
          ],
          ...['QuoteBySourceAmount', 'QuoteByDestinationAmount'].map(
            (method): [string, string, ClientIdentity, Buffer] => [
              dfspA.connector,
              `/interclear.quoting.v1.QuotingService/${method}`,
              identities.dfsp,
              Buffer.concat([
                wire.bytes(1, 'private.dfsp-a.'),
                wire.bytes(2, 'private.dfsp-b.bob'),
                wire.integer(3, 1_000n),
                wire.time(4, seconds, nanos),
              ]),
            ],
          ),
        ];
        for (const [address, path, identity, request] of calls) {
          const outcome = await rawUnary(address, identity, path, request);
          const rpc = everyRpc.find((entry) => entry.path === path)!;
          expectDocumented(rpc, outcome);
        }
      }),
      { numRuns: 40 },
    );
    expect(await snapshot.take()).toEqual(before);
  });

  test('quotes for invalid addresses, zero, huge amounts and absurd holds are refused with their documented codes', async () => {
    const quoting = net.quoting['dfsp-a'];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          texts,
          fc.constantFrom('private.dfsp-b.bob', 'private.nowhere.x', 'g', 'private.dfsp-b.', 'x'.repeat(2_000)),
        ),
        fc.oneof(
          extremeIntegers.filter((value) => value >= 0n && value < 2n ** 64n),
          fc.constant(0n),
        ),
        fc.option(fc.integer({ min: -1_000_000, max: 1_000_000_000 }), { nil: undefined }),
        async (destinationAddress, amount, holdMs) => {
          const request = {
            sourceLedgerPrefix: 'private.dfsp-a.',
            destinationAddress,
            destinationHoldDuration:
              holdMs === undefined
                ? undefined
                : { seconds: BigInt(Math.trunc(holdMs / 1000)), nanos: (holdMs % 1000) * 1e6 },
          };
          for (const quote of [
            () => quoting.quoteByDestinationAmount({ ...request, destinationAmount: amount }),
            () => quoting.quoteBySourceAmount({ ...request, sourceAmount: amount }),
          ]) {
            const outcome = await quote().then(
              () => ({ code: grpc.status.OK, reason: undefined }),
              (error: grpc.ServiceError) => error,
            );
            expect([
              grpc.status.OK,
              grpc.status.INVALID_ARGUMENT,
              grpc.status.NOT_FOUND,
              grpc.status.FAILED_PRECONDITION,
            ]).toContain(outcome.code);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  test('SPSP Query and SetupPayment with bad receivers, amounts, data and expiries: documented errors, nothing recorded', async () => {
    const before = await snapshot.take();
    const spsp = net.spsp['dfsp-b'];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(texts, fc.constantFrom('bob@dfsp-b', 'nobody@dfsp-b', 'bob@', '@dfsp-b', 'private.dfsp-b.bob.x')),
        extremeIntegers.filter((value) => value >= 0n),
        fc.constantFrom(0, 1_000, 40_000),
        fc.option(fc.integer({ min: -10_000_000, max: 1_000_000_000 }), { nil: undefined }),
        async (receiver, amount, dataLength, expiryMs) => {
          const query = await spsp.query({ receiver }).then(
            () => grpc.status.OK,
            (error: grpc.ServiceError) => error.code,
          );
          expect([
            grpc.status.OK,
            grpc.status.INVALID_ARGUMENT,
            grpc.status.NOT_FOUND,
            grpc.status.FAILED_PRECONDITION,
          ]).toContain(query);
          const setup = await spsp
            .setupPayment({
              receiver,
              destinationAmount: amount,
              data: Buffer.alloc(dataLength, 7),
              expiryDuration:
                expiryMs === undefined
                  ? undefined
                  : expiryMs < 0
                    ? { seconds: BigInt(Math.trunc(expiryMs / 1000)), nanos: 0 }
                    : durationFromMs(expiryMs),
            })
            .then(
              () => grpc.status.OK,
              (error: grpc.ServiceError) => error.code,
            );
          expect([
            grpc.status.OK,
            grpc.status.INVALID_ARGUMENT,
            grpc.status.NOT_FOUND,
            grpc.status.FAILED_PRECONDITION,
          ]).toContain(setup);
        },
      ),
      { numRuns: 40 },
    );
    // SetupPayment records nothing, valid or not.
    expect(await snapshot.take()).toEqual(before);
  });

  test('Pay with a bad id, sender, receiver, amount or oversize data is INVALID_ARGUMENT and records no payment', async () => {
    const before = await snapshot.take();
    const payments = net.payments['dfsp-a'];
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          paymentId: fc.oneof(fc.constant(randomUUID()), texts),
          senderAccount: fc.oneof(fc.constant('alice'), texts),
          receiver: fc.oneof(fc.constant('bob@dfsp-b'), texts),
          amount: fc.oneof(fc.constant(0n), fc.constant(2n ** 64n - 1n), fc.constant(2n ** 63n)),
          dataLength: fc.constantFrom(0, 40_000),
        }),
        async (input) => {
          const outcome = await payments
            .pay({
              paymentId: input.paymentId,
              senderAccount: input.senderAccount,
              receiver: input.receiver,
              amount: { $case: 'destinationAmount', value: input.amount },
              data: Buffer.alloc(input.dataLength),
            })
            .then(
              () => ({ code: grpc.status.OK }),
              (error: grpc.ServiceError) => error,
            );
          expect(grpc.status[outcome.code]).toBe('INVALID_ARGUMENT');
        },
      ),
      { numRuns: 30 },
    );
    expect(await snapshot.take()).toEqual(before);
  });

  test('a transfer carrying a malformed ILP packet is rejected by the connector (F01) and its hold returns', async () => {
    const before = await net.balances();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
          // An ILP payment header with a length that runs past the end.
          fc
            .uint8Array({ maxLength: 20 })
            .map((bytes) => Buffer.concat([Buffer.from([1, 0x82, 0xff, 0xff]), Buffer.from(bytes)])),
        ),
        async (packet) => {
          const transferId = randomUUID();
          const outcome = waitForFinal(spspA, transferId);
          await spspA.prepareTransfer({
            transferId,
            debitAccount: 'alice',
            creditAccount: 'connector-a',
            amount: 100n,
            executionCondition: createHash('sha256').update(packet).digest(),
            expiryTime: new Date(Date.now() + 3_000),
            ilpPacket: packet,
            memo: Buffer.alloc(0),
            traceParent: '',
          });
          const transfer = await outcome;
          expect(transfer.state).toBe(TransferState.TRANSFER_STATE_REJECTED);
          expect(['F01', 'F02']).toContain(transfer.ilpError?.code);
          expect(transfer.ilpError?.triggeredBy).toBe('private.central.connector-a');
        },
      ),
      { numRuns: 10 },
    );
    expect(await net.balances()).toEqual(before);
    await net.checkConservation({ settled: true });
  });
});

/** The first final event of `transferId` on alice's stream (opened before the transfer exists). */
function waitForFinal(client: LedgerClient, transferId: string): Promise<Transfer> {
  return new Promise<Transfer>((resolve, reject) => {
    const stream = client.subscribe({ accounts: ['alice'] });
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`transfer ${transferId} not final within 10 s`));
    }, 10_000);
    stream.on('data', (response: SubscribeResponse) => {
      if (response.kind?.$case !== 'event') return;
      const { type, transfer } = response.kind.value;
      if (transfer?.id !== transferId) return;
      if (type === EventType.EVENT_TYPE_TRANSFER_EXECUTED || type === EventType.EVENT_TYPE_TRANSFER_REJECTED) {
        clearTimeout(timer);
        stream.cancel();
        resolve(transfer);
      }
    });
    stream.on('error', (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) reject(error);
    });
  });
}

// ---- Floods ---------------------------------------------------------------------------------

describe('floods and huge messages', () => {
  test('a request above the maximum message size is refused with RESOURCE_EXHAUSTED by every service, which stays up', async () => {
    const request = wire.bytes(8, Buffer.alloc(maximumMessageBytes + 1024));
    for (const rpc of everyRpc.filter((entry) => !entry.streaming)) {
      const outcome = await call(rpc, request);
      expect({ path: rpc.path, code: grpc.status[outcome.code] }).toEqual({
        path: rpc.path,
        code: 'RESOURCE_EXHAUSTED',
      });
    }
    await expectNetworkUp();
  });

  test('hundreds of concurrent Subscribe streams do not take the ledger down; it answers meanwhile and after', async () => {
    const ledger = createLedgerClient(net.ledger('dfsp-a').address, identities.admin);
    const streams: grpc.ClientReadableStream<SubscribeResponse>[] = [];
    try {
      const opened = Array.from({ length: 500 }, () => {
        const stream = ledger.subscribe({ accounts: [] });
        streams.push(stream);
        return new Promise<grpc.status>((resolve) => {
          stream.on('data', () => resolve(grpc.status.OK));
          stream.on('error', (error: grpc.ServiceError) => resolve(error.code));
        });
      });
      // 500 streams on one connection, within its limit of 1,000 concurrent streams: all served.
      const codes = await Promise.all(opened);
      expect(new Set(codes.map((code) => grpc.status[code]))).toEqual(new Set(['OK']));
      const info = await ledger.getLedgerInfo({}, { timeoutMs: 5_000 });
      expect(info.ledger?.ilpPrefix).toBe('private.dfsp-a.');
    } finally {
      for (const stream of streams) stream.cancel();
      ledger.close();
    }
    await expectNetworkUp();
    await net.checkConservation({ settled: true });
  });
});
