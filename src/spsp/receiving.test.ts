/**
 * How often the receiving side reads a receiver's ledger account: Query always reads it (or
 * joins a read already on its way); SetupPayment, which a sender calls right after its Query,
 * relies on a read at most `receiverAccountFreshMs` old. An injected clock and a ledger that
 * counts its reads.
 */
import { randomBytes } from 'node:crypto';
import { SpspError } from './errors';
import type { LedgerAccountView } from './ports';
import { ReceiverBook } from './receivers';
import { createReceivingService, receiverAccountFreshMs, type ReceivingService } from './receiving';

let clockMs: number;
let reads: string[];
let account: LedgerAccountView | undefined;
let receiving: ReceivingService;
/** While set, the ledger answers reads only when it is called. */
let holdReads: Array<() => void> | undefined;

/** The receiving side of dfsp-b, with bob as its one receiver, over `getAccount`. */
function receivingWith(getAccount: (name: string) => Promise<LedgerAccountView | undefined>): ReceivingService {
  return createReceivingService({
    settings: {
      secret: randomBytes(32),
      paymentRequestExpiryMs: 30_000,
      maxPaymentRequestExpiryMs: 60_000,
      destinationHoldMs: 3_000,
    },
    ledgerInfo: { ilpPrefix: 'private.dfsp-b.', currencyCode: 'XOF', scale: 0, maxHoldMs: 60_000 },
    receivers: new ReceiverBook('dfsp-b', 'private.dfsp-b.', [
      { name: 'bob', account: 'bob', displayName: 'Bob', minimumAmount: 1n, maximumAmount: null, disabled: false },
    ]),
    ledger: { getAccount },
    now: () => new Date(clockMs),
  });
}

beforeEach(() => {
  clockMs = Date.parse('2030-01-01T00:00:00.000Z');
  reads = [];
  holdReads = undefined;
  account = { name: 'bob', owner: 'spsp-b', disabled: false };
  receiving = receivingWith((name) => {
    reads.push(name);
    const answer = () => account && { ...account };
    const held = holdReads;
    if (!held) return Promise.resolve(answer());
    return new Promise((resolve) => held.push(() => resolve(answer())));
  });
});

const setup = () =>
  receiving.setupPayment({
    receiver: 'bob@dfsp-b',
    destinationAmount: 100n,
    data: Buffer.alloc(0),
    expiryMs: undefined,
  });

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SpspError) return error.reason;
    throw error;
  }
  return 'OK';
}

test('a Query followed by SetupPayment reads the receiver’s account once', async () => {
  await receiving.query('bob@dfsp-b');
  clockMs += 500;
  await setup();
  expect(reads).toEqual(['bob']);
});

test('every Query reads the account', async () => {
  await receiving.query('bob@dfsp-b');
  await receiving.query('private.dfsp-b.bob');
  expect(reads).toEqual(['bob', 'bob']);
});

test('Queries arriving while a read is on its way share it; the next Query reads again', async () => {
  holdReads = [];
  const first = receiving.query('bob@dfsp-b');
  const second = receiving.query('private.dfsp-b.bob');
  const setupMeanwhile = setup();
  await Promise.resolve();
  expect(reads).toEqual(['bob']);
  account = { name: 'bob', owner: 'spsp-b', disabled: true };
  for (const answer of holdReads) answer();
  // The shared read answered after the account was disabled: all three see it.
  expect(await reasonOf(first)).toBe('RECEIVER_DISABLED');
  expect(await reasonOf(second)).toBe('RECEIVER_DISABLED');
  expect(await reasonOf(setupMeanwhile)).toBe('RECEIVER_DISABLED');
  holdReads = undefined;
  account = { name: 'bob', owner: 'spsp-b', disabled: false };
  expect(await reasonOf(receiving.query('bob@dfsp-b'))).toBe('OK');
  expect(reads).toEqual(['bob', 'bob']);
});

test('a failed read fails the callers that shared it, and the next Query reads again', async () => {
  let failNext = true;
  receiving = receivingWith((name) => {
    reads.push(name);
    if (failNext) {
      failNext = false;
      return Promise.reject(new Error('connection reset'));
    }
    return Promise.resolve(account && { ...account });
  });
  const both = await Promise.all([reasonOf(receiving.query('bob@dfsp-b')), reasonOf(receiving.query('bob@dfsp-b'))]);
  expect(both).toEqual(['LEDGER_UNAVAILABLE', 'LEDGER_UNAVAILABLE']);
  expect(await reasonOf(receiving.query('bob@dfsp-b'))).toBe('OK');
  expect(reads).toEqual(['bob', 'bob']);
});

test.each([
  ['with no earlier read', undefined, 1],
  ['after a read just as old as allowed', receiverAccountFreshMs, 1],
  ['after a read older than allowed', receiverAccountFreshMs + 1, 2],
])('SetupPayment %s', async (_case, ageMs, expectedReads) => {
  if (ageMs !== undefined) {
    await receiving.query('bob@dfsp-b');
    clockMs += ageMs;
  }
  await setup();
  expect(reads).toHaveLength(expectedReads);
});

test('an account disabled on the ledger refuses SetupPayment once the earlier read is too old', async () => {
  await receiving.query('bob@dfsp-b');
  account = { name: 'bob', owner: 'spsp-b', disabled: true };
  expect(await reasonOf(receiving.query('bob@dfsp-b'))).toBe('RECEIVER_DISABLED');
  // The Query just now read the disabled account: SetupPayment relies on that read.
  expect(await reasonOf(setup())).toBe('RECEIVER_DISABLED');
  account = { name: 'bob', owner: 'spsp-b', disabled: false };
  clockMs += receiverAccountFreshMs + 1;
  expect(await reasonOf(setup())).toBe('OK');
});

test('an account missing from the ledger is RECEIVER_NOT_FOUND for both', async () => {
  account = undefined;
  expect(await reasonOf(receiving.query('bob@dfsp-b'))).toBe('RECEIVER_NOT_FOUND');
  expect(await reasonOf(setup())).toBe('RECEIVER_NOT_FOUND');
  expect(reads).toEqual(['bob']);
});
