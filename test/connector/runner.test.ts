/**
 * The connector's job runner keeps pass-backs (the connector's money at stake) on time — real
 * store on PostgreSQL, stand-in ledger gateways so that the timing is controlled:
 *
 * 1. Pass-backs and rejections have slots of their own: forward calls to a ledger that does not
 *    answer (each waiting for its deadline) once held every slot, and the pass-back of a payment
 *    whose outgoing transfer had just executed waited for one of them — past the incoming
 *    transfer's expiry (the message window, 1 s by default): the connector lost the money.
 * 2. A pass-back whose attempt fails while its retry cannot be recorded (a blip of the
 *    connector's database) is retried from memory, not left to the job's lease (10 s after the
 *    transition), which could end after the incoming transfer's expiry.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { LedgerCallResult, LedgerGateway } from '../../src/connector/ledgers';
import type { Payment } from '../../src/connector/model';
import { migrateConnectorDatabase, openConnectorOrm } from '../../src/connector/persistence';
import { JobRunner } from '../../src/connector/runner';
import { createPaymentStore, type PaymentStore } from '../../src/connector/store';
import { createPool } from '../../src/platform/database';
import { silentLogger } from '../../src/platform/logger';
import { createTestDatabase } from '../support/database';

jest.setTimeout(30_000);

const incomingLedger = 'private.dfsp-a.';
const deadLedger = 'private.dfsp-c.';
const jobLeaseMs = 10_000; // defaultTuning.jobLeaseMs
const messageWindowMs = 1_000; // the connector's default message window

let pool: pg.Pool;
let store: PaymentStore;
let drop: () => Promise<void>;
const runners: JobRunner[] = [];

beforeAll(async () => {
  const database = await createTestDatabase('connector_runner');
  drop = database.drop;
  const orm = await openConnectorOrm(database.url);
  try {
    await migrateConnectorDatabase(orm);
  } finally {
    await orm.close(true);
  }
  pool = createPool(database.url, { size: 4 });
  store = createPaymentStore(pool);
});

afterAll(async () => {
  for (const runner of runners) await runner.stop(100);
  await pool?.end();
  await drop?.();
});

function gateway(prefix: string, calls: Partial<LedgerGateway>): LedgerGateway {
  return {
    endpoint: { prefix, endpoint: 'stand-in', account: 'connector', currency: 'USD', scale: 2 },
    coalescing: { singleCalls: 0, batchCalls: 0, batchedItems: 0 },
    close: () => undefined,
    ...calls,
  } as LedgerGateway;
}

function payment(state: 'forwarding' | 'fulfilling', changes: Partial<Payment> = {}): Payment {
  const now = new Date();
  const fulfillment = randomBytes(32);
  return {
    id: randomUUID(),
    incomingLedgerPrefix: incomingLedger,
    incomingTransferId: randomUUID(),
    incomingAmount: 1000n,
    incomingExpiresAt: new Date(now.getTime() + 20_000),
    executionCondition: createHash('sha256').update(fulfillment).digest(),
    ilpPacket: randomBytes(16),
    traceParent: null,
    outgoing: {
      ledgerPrefix: deadLedger,
      creditAccount: 'carol',
      amount: 990n,
      expiresAt: new Date(now.getTime() + 19_000),
    },
    state,
    fulfillment: state === 'fulfilling' ? fulfillment : null,
    ilpError: null,
    attempts: 0,
    nextAttemptAt: now,
    lastError: null,
    createdAt: now,
    updatedAt: now,
    ...changes,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a pass-back is not starved by forward calls to a ledger that does not answer', async () => {
  const fulfils: Array<{ transferId: string; at: number }> = [];
  const gateways = new Map<string, LedgerGateway>([
    [
      incomingLedger,
      gateway(incomingLedger, {
        fulfillTransfer: async (transferId) => {
          fulfils.push({ transferId, at: Date.now() });
          return { kind: 'ok', value: undefined };
        },
      }),
    ],
    [
      deadLedger,
      gateway(deadLedger, {
        // A ledger that does not answer: every call ends at its deadline (5 s in ledgers.ts; 3 s here).
        prepareTransfer: async (): Promise<LedgerCallResult<void>> => {
          await sleep(3_000);
          return { kind: 'unavailable', message: 'deadline exceeded' };
        },
      }),
    ],
  ]);
  const runner = new JobRunner({
    store,
    gateways,
    connectorAddress: 'private.central.connector',
    logger: silentLogger,
    now: () => new Date(),
    backoff: { initialMs: 50, maximumMs: 2_000 },
    // 256 in production: a burst of 256 payments towards the silent ledger does the same.
    concurrency: 2,
    pollIntervalMs: 50,
    holdPassBacks: false,
    onLostMoney: () => undefined,
  });
  runners.push(runner);
  // Two payments forwarding to the silent ledger (as the incoming ledger's notifications create them).
  const forwards = [payment('forwarding'), payment('forwarding')];
  await store.createPayments(incomingLedger, 1n, forwards);
  await runner.submit(forwards);
  await runner.start();
  await sleep(200);

  // An outgoing transfer (on another, healthy ledger) executes: its notification moves a payment
  // to fulfilling, as payments.ts does (lease as next attempt), and handleBatch submits the job.
  const now = Date.now();
  const passBack = payment('fulfilling', {
    incomingExpiresAt: new Date(now + messageWindowMs),
    outgoing: {
      ledgerPrefix: 'private.central.',
      creditAccount: 'connector-b',
      amount: 990n,
      expiresAt: new Date(now),
    },
    nextAttemptAt: new Date(now + jobLeaseMs),
  });
  await store.createPayments(incomingLedger, 2n, [passBack]);
  void runner.submit([passBack]);

  await sleep(3_500);
  await runner.stop(100);
  const fulfil = fulfils.find((call) => call.transferId === passBack.incomingTransferId);
  expect(fulfil).toBeDefined();
  // The incoming transfer must be fulfilled before it expires.
  expect(fulfil!.at).toBeLessThan(passBack.incomingExpiresAt.getTime());
});

test('a failed pass-back whose retry could not be recorded is retried before the incoming transfer expires', async () => {
  const fulfils: number[] = [];
  // The pass-back's incoming transfer, once the payment is made below.
  const target = { transferId: '' };
  const gateways = new Map<string, LedgerGateway>([
    [
      incomingLedger,
      gateway(incomingLedger, {
        fulfillTransfer: async (transferId) => {
          if (transferId !== target.transferId) return { kind: 'ok', value: undefined };
          fulfils.push(Date.now());
          // The incoming ledger blinks on the first attempt, then answers.
          return fulfils.length === 1
            ? { kind: 'unavailable', message: 'connection reset' }
            : { kind: 'ok', value: undefined };
        },
      }),
    ],
  ]);
  // The connector's database blinks at the same moment (e.g. the PostgreSQL server both use
  // restarts): recording the retry fails for 300 ms.
  const blipUntil = Date.now() + 300;
  const flakyStore: PaymentStore = {
    ...store,
    recordRetry: async (...args: Parameters<PaymentStore['recordRetry']>) => {
      if (Date.now() < blipUntil)
        throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '57P01' });
      return store.recordRetry(...args);
    },
  };
  const runner = new JobRunner({
    store: flakyStore,
    gateways,
    connectorAddress: 'private.central.connector',
    logger: silentLogger,
    now: () => new Date(),
    backoff: { initialMs: 50, maximumMs: 2_000 },
    concurrency: 4,
    pollIntervalMs: 50,
    holdPassBacks: false,
    onLostMoney: () => undefined,
  });
  runners.push(runner);
  await runner.start();
  const now = Date.now();
  const passBack = payment('fulfilling', {
    incomingExpiresAt: new Date(now + 2_000),
    nextAttemptAt: new Date(now + jobLeaseMs),
  });
  target.transferId = passBack.incomingTransferId;
  await store.createPayments(incomingLedger, 3n, [passBack]);
  await runner.submit([passBack]);
  await sleep(2_500);
  await runner.stop(100);
  expect(fulfils.length).toBeGreaterThanOrEqual(2);
  expect(fulfils[1]).toBeLessThan(passBack.incomingExpiresAt.getTime());
});
