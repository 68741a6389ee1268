/**
 * A notification whose handling fails because the SPSP service's own pool could not hand out a
 * connection in time (pg-pool: "timeout exceeded when trying to connect" — every connection busy
 * or hung) is retried like any other "database unavailable" failure. It was taken for a
 * permanent failure and skipped: the cursor moved past it and the incoming transfer was never
 * fulfilled (it expired).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createPaymentRequest } from '../../src/ilp';
import { createPool } from '../../src/platform/database';
import { silentLogger } from '../../src/platform/logger';
import { LedgerFollower } from '../../src/spsp/follower';
import { IncomingPaymentHandler } from '../../src/spsp/incoming';
import { migrateSpspDatabase, openSpspOrm } from '../../src/spsp/persistence';
import type { LedgerNotification, LedgerTransferView } from '../../src/spsp/ports';
import { ReceiverBook } from '../../src/spsp/receivers';
import { SpspStore } from '../../src/spsp/store';
import { createTestDatabase } from '../support/database';

const secret = randomBytes(32);
const prefix = 'private.dfsp-b.';
const receivers = new ReceiverBook('dfsp-b', prefix, [
  { name: 'bob', account: 'bob', displayName: 'Bob', minimumAmount: 1n, maximumAmount: null, disabled: false },
]);

test('a pool checkout timeout while handling a prepared transfer is retried, not skipped', async () => {
  const database = await createTestDatabase('spsp_follower_busy');
  const orm = await openSpspOrm(database.url);
  await migrateSpspDatabase(orm);
  // The SPSP service's hot-path pool (size 8 in production; 1 here so one busy connection fills it).
  const pool = createPool(database.url, { size: 1 });
  const store = new SpspStore(orm, pool);
  await store.saveCursor(0n, new Date()); // a service that has run before
  const busy = await pool.connect(); // e.g. a statement stuck on a hung connection

  const request = createPaymentRequest({
    secret,
    destinationAccount: `${prefix}bob`,
    destinationAmount: 1000n,
    expiresAt: new Date(Date.now() + 120_000),
  });
  const transfer: LedgerTransferView = {
    id: randomUUID(),
    debitAccount: 'connector-b',
    creditAccount: 'bob',
    amount: 1000n,
    executionCondition: request.condition,
    expiresAt: new Date(Date.now() + 120_000),
    state: 'prepared',
    rejectionReason: null,
    ilpError: null,
    ilpPacket: request.packet,
    preparedAt: new Date(),
    traceParent: null,
  };
  const fulfilled: string[] = [];
  const handler = new IncomingPaymentHandler({
    ledger: {
      fulfillTransfer: async (id) => {
        fulfilled.push(id);
        return { ...transfer, state: 'executed' };
      },
      rejectTransfer: () => Promise.reject(new Error('not expected')),
      getTransfer: async () => transfer,
    },
    store,
    receivers,
    secret,
    now: () => new Date(),
    logger: silentLogger,
  });
  const errors: unknown[] = [];
  const logger = { ...silentLogger, error: (object: { err?: unknown }) => errors.push(object.err) } as never;
  const follower = new LedgerFollower({
    ledger: {
      listOwnedAccounts: async () => ['bob'],
      async *subscribe(_after, signal): AsyncIterable<LedgerNotification> {
        yield { kind: 'subscribed', headSequence: 0n };
        yield { kind: 'transfer', sequence: 1n, type: 'prepared', transfer, fulfillment: null };
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      },
    },
    cursor: { read: () => store.readCursor(), save: (sequence) => store.saveCursor(sequence, new Date()) },
    handle: (notification, owned) =>
      notification.type === 'prepared' && owned.has(notification.transfer.creditAccount)
        ? handler.handlePrepared(notification.transfer)
        : Promise.resolve(),
    logger,
    retryMinMs: 100,
    retryMaxMs: 200,
  });
  try {
    await follower.start();
    // The pool's checkout wait (connectionTimeoutMillis, 10 s) runs out while the connection is busy…
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    // …then the database is fine again.
    busy.release();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await follower.stop();
    // Retried once the database answers, and the receiver paid; never skipped.
    expect(errors).toEqual([]);
    expect(fulfilled).toEqual([transfer.id]);
    expect(await store.findIncoming(transfer.id)).toBeDefined();
  } finally {
    await follower.stop().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await orm.close(true);
    await database.drop();
  }
}, 40_000);
