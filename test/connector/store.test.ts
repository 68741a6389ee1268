/**
 * The connector's store on a real PostgreSQL: a batch's payments and the ledger's cursor are
 * written together or not at all, every field survives the set-based write exactly (bigint
 * amounts beyond 2^53 included), and a replayed creation changes nothing and is not reported as
 * written (the connector runs jobs only for what a write inserted).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { IlpError, Payment, PaymentState } from '../../src/connector/model';
import { migrateConnectorDatabase, openConnectorOrm } from '../../src/connector/persistence';
import { createPaymentStore, type PaymentStore } from '../../src/connector/store';
import { createPool } from '../../src/platform/database';
import { createTestDatabase } from '../support/database';

const ledger = 'private.central.';
const now = new Date('2030-01-01T00:00:00.123Z');
const later = new Date('2030-01-01T00:00:01.456Z');
const preimage = randomBytes(32);
const condition = createHash('sha256').update(preimage).digest();

const relayedError: IlpError = {
  code: 'F99',
  name: 'Application Error',
  message: 'bob does not want it "at all" \\ {really}',
  triggeredBy: 'private.dfsp-b.bob',
  forwardedBy: ['private.central.connector-b'],
  triggeredAt: now,
  data: Buffer.from([0, 1, 2, 255]),
};

function payment(state: PaymentState, changes: Partial<Payment> = {}): Payment {
  return {
    id: randomUUID(),
    incomingLedgerPrefix: ledger,
    incomingTransferId: randomUUID(),
    incomingAmount: 2n ** 63n - 1n,
    incomingExpiresAt: new Date(now.getTime() + 5000),
    executionCondition: condition,
    ilpPacket: randomBytes(64),
    traceParent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    outgoing: {
      ledgerPrefix: 'private.dfsp-b.',
      creditAccount: 'bob',
      amount: 2n ** 53n + 1n,
      expiresAt: new Date(now.getTime() + 4000),
    },
    state,
    fulfillment: null,
    ilpError: null,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    updatedAt: now,
    ...changes,
  };
}

let url: string;
let pool: pg.Pool;
let store: PaymentStore;
let drop: () => Promise<void>;

beforeAll(async () => {
  const database = await createTestDatabase('connector_store');
  url = database.url;
  drop = database.drop;
  const orm = await openConnectorOrm(database.url);
  try {
    await migrateConnectorDatabase(orm);
  } finally {
    await orm.close(true);
  }
  pool = createPool(database.url, { size: 2 });
  store = createPaymentStore(pool);
});

afterAll(async () => {
  await pool?.end();
  await drop?.();
});

const cursor = async () => (await store.loadCursors()).get(ledger);

test('created payments keep every field exactly, with the cursor moved in the same statement', async () => {
  const forwarding = payment('forwarding');
  const rejecting = payment('rejecting', {
    outgoing: null,
    traceParent: null,
    ilpError: relayedError,
    lastError: 'refused',
    attempts: 3,
  });
  const created = await store.createPayments(ledger, 10n, [forwarding, rejecting]);
  expect(created).toEqual([forwarding, rejecting]);
  expect(await store.loadPayment(forwarding.id)).toEqual(forwarding);
  expect(await store.loadPayment(rejecting.id)).toEqual(rejecting);
  expect(await cursor()).toBe(10n);
});

test('a replayed creation changes nothing and returns nothing; the cursor never moves back', async () => {
  const original = payment('forwarding');
  await store.createPayments(ledger, 20n, [original]);
  const fulfilled = { ...original, state: 'fulfilled' as const, fulfillment: preimage, updatedAt: later };
  const written = await store.applyBatch(ledger, 21n, [original.id], (locked) => {
    expect(locked.get(original.id)).toEqual(original);
    return { changed: [fulfilled], created: [] };
  });
  expect(written).toEqual([fulfilled]);
  expect(await store.createPayments(ledger, 15n, [original])).toEqual([]);
  expect(await store.loadPayment(original.id)).toEqual(fulfilled);
  expect(await cursor()).toBe(21n);
});

test('a batch writes its created and changed payments and the cursor in one transaction', async () => {
  const existing = [payment('prepared'), payment('forwarding')];
  await store.createPayments(ledger, 30n, existing);
  const fresh = payment('forwarding');
  const changed = [
    { ...existing[0], state: 'fulfilling' as const, fulfillment: preimage, attempts: 0, updatedAt: later },
    { ...existing[1], state: 'rejecting' as const, ilpError: relayedError, lastError: 'no', updatedAt: later },
  ];
  const written = await store.applyBatch(ledger, 31n, [existing[1].id, existing[0].id, fresh.id], (locked) => {
    expect([...locked.keys()].sort()).toEqual(existing.map((each) => each.id).sort());
    return { changed, created: [fresh] };
  });
  expect(written).toEqual([...changed, fresh]);
  for (const each of written) expect(await store.loadPayment(each.id)).toEqual(each);
  expect(await cursor()).toBe(31n);
});

test('a batch that fails writes nothing, neither payments nor the cursor, and the store goes on', async () => {
  const existing = payment('prepared');
  await store.createPayments(ledger, 40n, [existing]);
  const fresh = payment('forwarding');
  // A CHECK constraint refuses a fulfilling payment without its fulfillment.
  const invalid = { ...existing, state: 'fulfilling' as const, updatedAt: later };
  await expect(
    store.applyBatch(ledger, 41n, [existing.id, fresh.id], () => ({ changed: [invalid], created: [fresh] })),
  ).rejects.toThrow(/check constraint/);
  await expect(
    store.applyBatch(ledger, 41n, [existing.id], () => {
      throw new Error('a bug in the state machine');
    }),
  ).rejects.toThrow('a bug in the state machine');
  expect(await store.loadPayment(existing.id)).toEqual(existing);
  expect(await store.loadPayment(fresh.id)).toBeUndefined();
  expect(await cursor()).toBe(40n);
  // The connections are back in the pool, out of any transaction.
  await store.applyBatch(ledger, 42n, [existing.id], () => ({ changed: [], created: [fresh] }));
  expect(await store.loadPayment(fresh.id)).toEqual(fresh);
  expect(await cursor()).toBe(42n);
});

test('a batch without payments only moves the cursor', async () => {
  const written = await store.applyBatch(ledger, 50n, [], (locked) => {
    expect(locked.size).toBe(0);
    return { changed: [], created: [] };
  });
  expect(written).toEqual([]);
  expect(await store.createPayments(ledger, 51n, [])).toEqual([]);
  expect(await cursor()).toBe(51n);
});

/** Resolves once a statement on the test database waits for a lock another transaction holds. */
async function untilSomeoneWaits(observer: pg.Pool): Promise<void> {
  for (let polls = 0; ; polls += 1) {
    const waiting = await observer.query<{ count: bigint }>(
      "select count(*) as count from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
    );
    if (waiting.rows[0].count > 0n) return;
    if (polls >= 1000) throw new Error('no statement ever waited for a lock');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a created payment that another writer inserted meanwhile is left as it is and not returned as written', async () => {
  const ours = payment('forwarding');
  const theirs = { ...ours, nextAttemptAt: later };
  const others = createPool(url, { size: 2 });
  try {
    // Another writer inserts the payment in a transaction still open: the batch's lock does not
    // see the row, so the batch creates the payment too, and its insert waits for that transaction.
    const client = await others.connect();
    try {
      await client.query('begin');
      // createPayments only uses `query`: this store's statements run in the open transaction.
      await createPaymentStore(client as unknown as pg.Pool).createPayments(ledger, 60n, [theirs]);
      const batch = store.applyBatch(ledger, 61n, [ours.id], (locked) => {
        expect(locked.size).toBe(0);
        return { changed: [], created: [ours] };
      });
      await untilSomeoneWaits(others);
      await client.query('commit');
      // The insert met the committed row and did nothing: the payment is not new, and its jobs
      // belong to the writer that inserted it.
      expect(await batch).toEqual([]);
    } finally {
      client.release();
    }
  } finally {
    await others.end();
  }
  expect(await store.loadPayment(ours.id)).toEqual(theirs);
  expect(await cursor()).toBe(61n);
});
