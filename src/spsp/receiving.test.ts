/**
 * How often the receiving side reads a receiver's ledger account: Query always reads it;
 * SetupPayment, which a sender calls right after its Query, relies on a read at most
 * `receiverAccountFreshMs` old. An injected clock and a ledger that counts its reads.
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

beforeEach(() => {
  clockMs = Date.parse('2030-01-01T00:00:00.000Z');
  reads = [];
  account = { name: 'bob', owner: 'spsp-b', disabled: false };
  receiving = createReceivingService({
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
    ledger: {
      getAccount: (name) => {
        reads.push(name);
        return Promise.resolve(account && { ...account });
      },
    },
    now: () => new Date(clockMs),
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
